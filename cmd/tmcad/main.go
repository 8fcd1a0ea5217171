// Command tmcad is the tmcad daemon and its tools: it watches DICOM drop
// folders, runs the TMCA language-guided segmentation model and writes DICOM
// Segmentation objects to an archive. This package only parses flags and
// wires the packages below it together.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"tmcad/config"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// command is one subcommand of tmcad.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// errUsage marks an error whose usage text has already been printed.
var errUsage = errors.New("usage")

// exitError carries a specific exit status out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func commands() map[string]command {
	cs := []command{
		{"check-config", "validate a configuration file and print it resolved, secrets masked", runCheckConfig},
		{"version", "print the tmcad version, commit and the ONNX Runtime version loaded", runVersion},
		{"process", "segment every series of a folder once and write SEGs (one-shot batch)", runProcess},
		{"preview", "render a SEG over its source series as PNG", runPreview},
		{"explain-report", "show how a report becomes the model's guide text, sentence by sentence", runExplainReport},
		{"run", "run the daemon (watch, queue, process, export, schedules, HTTP, systemd notify)", runRun},
		{"status", "print queue counts, series awaiting reports, last errors and SEGs", runStatus},
		{"reprocess", "queue series again (--series, --study, --since, --failed, --model-older)", runReprocess},
		{"dicom-gate", "front a DICOM receiver: only allowed addresses and calling AE titles get through", runGate},
	}
	m := make(map[string]command, len(cs))
	for _, c := range cs {
		m[c.name] = c
	}
	return m
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "tmcad %s — language-guided DICOM segmentation (TMCA) daemon\n\n", version)
	fmt.Fprintf(w, "Usage: tmcad <command> [flags]\n\nCommands:\n")
	cs := commands()
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cs[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'tmcad <command> --help' for a command's flags.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tmcad: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "tmcad %s: %s\n", c.name, strings.TrimSpace(err.Error()))
		return 1
	}
}

// newFlagSet returns a flag set for a subcommand whose --help prints the
// summary and the flags.
func newFlagSet(name, argsUsage, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tmcad "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tmcad %s %s\n\n%s\n\nFlags:\n", name, argsUsage, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and maps a parse failure to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// loadConfig loads the configuration file at path, or the defaults when
// path is empty (the one-shot commands work without a file).
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}
