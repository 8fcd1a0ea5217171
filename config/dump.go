package config

import (
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
)

// Dump writes the resolved configuration as TOML, secrets masked.
func (c *Config) Dump(w io.Writer) error {
	if err := toml.NewEncoder(w).Encode(c); err != nil {
		return fmt.Errorf("config: encoding: %w", err)
	}
	return nil
}
