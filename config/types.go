package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Duration is a time.Duration written in TOML as a Go duration string
// ("30s", "5m", "24h"). Decoding keeps the text; Validate parses it, so a
// malformed value is reported with its key.
type Duration struct {
	time.Duration
	raw   string
	valid bool
}

// D returns a Duration of d.
func D(d time.Duration) Duration { return Duration{Duration: d, raw: d.String(), valid: true} }

// UnmarshalText keeps the text; parsing happens in validation.
func (d *Duration) UnmarshalText(b []byte) error {
	d.raw = string(b)
	v, err := time.ParseDuration(strings.TrimSpace(d.raw))
	d.valid = err == nil
	if err == nil {
		d.Duration = v
	}
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// check reports a malformed duration, or one not above min.
func (d Duration) check(key string, allowZero bool) error {
	if !d.valid {
		return fmt.Errorf("%s: not a duration, got %q (use a number with a unit, e.g. \"30s\", \"5m\", \"24h\")", key, d.raw)
	}
	if d.Duration < 0 || (!allowZero && d.Duration == 0) {
		op := "> 0"
		if allowZero {
			op = ">= 0"
		}
		return fmt.Errorf("%s: must be %s, got %q", key, op, d.raw)
	}
	return nil
}

// Secret is a value that must not be printed: a password, a token, a
// database URL with credentials. In TOML it is either a literal string or a
// table naming where it comes from: {env = "NAME"} or {file = "/path"}.
type Secret struct {
	// Value is the resolved secret.
	Value string
	// Env names the environment variable the value came from, if any.
	Env string
	// File names the file the value came from, if any.
	File string
}

// UnmarshalTOML accepts a string or a table {env = "...", file = "..."}.
func (s *Secret) UnmarshalTOML(v any) error {
	switch t := v.(type) {
	case string:
		s.Value = t
		return nil
	case map[string]any:
		for k, val := range t {
			str, ok := val.(string)
			if !ok {
				return fmt.Errorf("secret key %q must be a string", k)
			}
			switch k {
			case "env":
				s.Env = str
			case "file":
				s.File = str
			default:
				return fmt.Errorf("unknown secret source %q (use env or file)", k)
			}
		}
		if s.Env != "" && s.File != "" {
			return fmt.Errorf("secret: give env or file, not both")
		}
		return nil
	default:
		return fmt.Errorf("secret must be a string or a table {env = \"NAME\"} / {file = \"/path\"}, got %T", v)
	}
}

// Masked is how a secret prints: where it came from, never its value.
func (s Secret) Masked() string {
	switch {
	case s.Env != "":
		return fmt.Sprintf("{env = %q} (****)", s.Env)
	case s.File != "":
		return fmt.Sprintf("{file = %q} (****)", s.File)
	case s.Value != "":
		return "****"
	}
	return ""
}

// String masks the secret so that it cannot leak through %v.
func (s Secret) String() string { return s.Masked() }

// resolve reads the secret from its environment variable or file.
func (s *Secret) resolve(label, key, base string) error {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return fmt.Errorf("%s: %s: environment variable %s is not set", label, key, s.Env)
		}
		s.Value = v
	case s.File != "":
		p := s.File
		if !filepath.IsAbs(p) && base != "" {
			p = filepath.Join(base, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %s: reading secret file: %w", label, key, err)
		}
		s.Value = strings.TrimRight(string(b), "\r\n")
	}
	return nil
}

func (c *Config) resolveSecrets(label string) error {
	base := ""
	if c.path != "" {
		base = filepath.Dir(c.path)
	}
	for key, s := range map[string]*Secret{
		"archive.password":         &c.Archive.Password,
		"archive.token":            &c.Archive.Token,
		"queue.database_url":       &c.Queue.DatabaseURL,
		"source.dicomweb.password": &c.Source.DICOMweb.Password,
		"source.dicomweb.token":    &c.Source.DICOMweb.Token,
	} {
		if err := s.resolve(label, key, base); err != nil {
			return err
		}
	}
	return nil
}

// MarshalText prints the masked form, so that encoding a Config for display
// never reveals a secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Masked()), nil }
