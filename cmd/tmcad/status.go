package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"tmcad/config"
	"tmcad/daemon"
)

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "[--config FILE] [--json]",
		"Prints queue counts by state, series awaiting reports, skipped series and why,\nthe last errors, SEGs whose export failed, and the last SEGs, read from the queue database (the daemon need not run).", stderr)
	cfgPath := fs.String("config", "/etc/tmcad/tmcad.toml", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON")
	n := fs.Int("n", 10, "entries per list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := daemon.ReadStatus(ctx, cfg, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return printStatus(stdout, r)
}

// printStatus writes the report as text. Every value read from the
// database (UIDs come from DICOM files, reasons and errors from anywhere)
// goes through printable, so that a crafted UID cannot drive the terminal
// or forge lines.
func printStatus(stdout io.Writer, r *daemon.StatusReport) error {
	counts := func(m map[string]int) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", printable(k), m[k]))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, " ")
	}
	fmt.Fprintf(stdout, "queue (%s)\n  jobs:    %s\n  exports: %s\n  outbox:  %d SEG(s) waiting\nseries:    %s\n", printable(r.Queue), counts(r.Jobs), counts(r.Exports), r.Outbox, counts(r.Series))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nawaiting report (%d):\n", len(r.AwaitingReport))
	for _, s := range r.AwaitingReport {
		fmt.Fprintf(tw, "  %s\t%s\tsince %s\n", printable(s.StudyUID), printable(s.SeriesUID), s.Updated.Format(time.DateTime))
	}
	fmt.Fprintf(tw, "\nskipped (%d):\n", len(r.Skipped))
	for _, s := range r.Skipped {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", printable(s.SeriesUID), s.Updated.Format(time.DateTime), printable(s.Reason))
	}
	fmt.Fprintf(tw, "\nlast errors (%d):\n", len(r.LastErrors))
	for _, s := range r.LastErrors {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", printable(s.SeriesUID), s.Updated.Format(time.DateTime), printable(s.Reason), printable(s.Error))
	}
	fmt.Fprintf(tw, "\nexport errors (%d):\n", len(r.ExportErrors))
	for _, e := range r.ExportErrors {
		fmt.Fprintf(tw, "  %s\t%s\t%d attempt(s)\t%s\t%s\n", printable(e.SOPUID), e.Last.Format(time.DateTime), e.Attempts, printable(e.Class), printable(e.Error))
	}
	fmt.Fprintf(tw, "\nlast done (%d):\n", len(r.LastDone))
	for _, s := range r.LastDone {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", printable(s.SeriesUID), s.Updated.Format(time.DateTime), printable(s.State), printable(s.Reason))
	}
	fmt.Fprintf(tw, "\nlast SEGs (%d):\n", len(r.LastSEGs))
	for _, s := range r.LastSEGs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tmodel %s\t%s\n", printable(s.SOPUID), printable(s.SourceSeriesUID), s.Stored.Format(time.DateTime), printable(s.ModelVersion), printable(s.Sink))
	}
	return tw.Flush()
}

// printable escapes what a terminal would act on: control characters
// (tabs and newlines included, which would break the columns and lines)
// and the Unicode line separators as \xNN or \uNNNN, invalid UTF-8 as
// \xNN.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r < 0x100 && unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}
