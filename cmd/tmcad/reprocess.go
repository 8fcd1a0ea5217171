package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"tmcad/config"
	"tmcad/daemon"
	"tmcad/logging"
	"tmcad/segment"
)

func runReprocess(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reprocess", "--series UID | --study UID | --since DATE | --failed | --model-older [--config FILE]",
		"Queues series again for the loaded model version; a running daemon processes them.\nA series already done gets a second SEG.", stderr)
	cfgPath := fs.String("config", "/etc/tmcad/tmcad.toml", "configuration file")
	series := fs.String("series", "", "one series by Series Instance UID")
	study := fs.String("study", "", "every series of one study")
	since := fs.String("since", "", "series first seen on or after this date (YYYY-MM-DD or RFC 3339)")
	failed := fs.Bool("failed", false, "failed series")
	older := fs.Bool("model-older", false, "series processed by another model version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	f := daemon.ReprocessFilter{SeriesUID: *series, StudyUID: *study, Failed: *failed, ModelOlder: *older}
	if *since != "" {
		t, err := time.ParseInLocation(time.DateOnly, *since, time.Local)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, *since); err != nil {
				return fmt.Errorf("--since %q: want YYYY-MM-DD or RFC 3339", *since)
			}
		}
		f.Since = t
	}
	if f.SeriesUID == "" && f.StudyUID == "" && !f.Failed && !f.ModelOlder && f.Since.IsZero() {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	m, err := segment.LoadManifest(cfg.Model.Dir)
	if err != nil {
		return err
	}
	var progress func(done, total int)
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = func(done, total int) {
			const width = 30
			fill := width * done / max(total, 1)
			fmt.Fprintf(stderr, "\r[%s%s] %d/%d", bar(fill, '#'), bar(width-fill, '.'), done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := daemon.EnqueueReprocess(ctx, cfg, m.Version, f, progress)
	if err != nil {
		return err
	}
	if f.StudyUID != "" && r.Queued == 0 && len(r.Skipped) == 0 && cfg.Source.DICOMweb.Enabled {
		// A study the catalogue has never seen may be in the PACS: it is
		// fetched into the drop folder, where the running daemon finds it.
		return fetchStudy(ctx, cfg, f.StudyUID, stdout, stderr)
	}
	fmt.Fprintf(stdout, "%d series queued for model %s %s\n", r.Queued, m.Name, m.Version)
	for _, s := range r.Skipped {
		fmt.Fprintf(stdout, "skipped %s: %s\n", s.SeriesUID, s.Reason)
	}
	return nil
}

// fetchStudy retrieves one study from the PACS over DICOMweb into
// watch.dicom_dir and says what it wrote.
func fetchStudy(ctx context.Context, cfg *config.Config, studyUID string, stdout, stderr io.Writer) error {
	log, err := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	door, err := newPullDoor(ctx, cfg, log)
	if err != nil {
		return err
	}
	res, err := door.FetchStudy(ctx, studyUID)
	if err != nil {
		return fmt.Errorf("reprocess --study %s: not in the catalogue, and fetching it from the PACS failed: %w", studyUID, err)
	}
	fmt.Fprintf(stdout, "study %s fetched from the PACS: %d series, %d instances written into %s (%d already there); the running daemon processes them as they arrive\n",
		studyUID, res.Series, res.Instances, cfg.Watch.DICOMDir, res.Skipped)
	return nil
}

// bar is n copies of c, for the progress bar.
func bar(n int, c byte) string {
	b := make([]byte, max(n, 0))
	for i := range b {
		b[i] = c
	}
	return string(b)
}
