package main

import (
	"fmt"
	"io"

	"tmcad/config"
)

func runCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", "FILE", "Validates FILE and prints the resolved configuration with secrets masked.\nExits 1 and names the file and key of every problem when it is invalid.", stderr)
	quiet := fs.Bool("q", false, "print nothing when the file is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	c, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	if *quiet {
		return nil
	}
	fmt.Fprintf(stdout, "# %s: valid\n", fs.Arg(0))
	return c.Dump(stdout)
}
