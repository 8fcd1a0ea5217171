package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"tmcad/daemon"
	"tmcad/daemon/pipeline"
	"tmcad/logging"
)

func runProcess(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("process", "--input DIR [--reports DIR] [--archive DIR] [flags]",
		"Segments every selected series under --input once: finds the series and their reports,\n"+
			"runs the model, writes SEGs to the archive, and prints a summary table.\n"+
			"Exits 0 when every selected series produced its output, 1 when any failed.", stderr)
	cfgPath := fs.String("config", "", "configuration file (defaults for every key it leaves out)")
	input := fs.String("input", "", "folder tree of DICOM files (required)")
	reportsDir := fs.String("reports", "", "folder of report files (.txt, .json, .hl7)")
	archive := fs.String("archive", "", "write SEGs to this folder (overrides the configured archive)")
	model := fs.String("model", "", "model folder (overrides model.dir)")
	masks := fs.String("masks-png", "", "also write every frame's mask as PNG, with summary.json, into this folder")
	batch := fs.Int("batch-size", 0, "frames per model run (overrides model.batch_size)")
	provider := fs.String("provider", "", "execution provider cpu or cuda (overrides model.execution_provider)")
	threads := fs.Int("threads", -1, "ONNX Runtime intra-op threads (overrides model.intra_op_threads)")
	segType := fs.String("seg-type", "", "binary or fractional (overrides seg.type)")
	sr := fs.Bool("sr", false, "also write a measurement report (DICOM SR) with each SEG (sets seg.sr)")
	overlay := fs.Bool("overlay", false, "also write an outline overlay (Secondary Capture, NOT FOR DIAGNOSIS) with each SEG (sets seg.overlay)")
	logLevel := fs.String("log-level", "", "trace, debug, info, warn or error (overrides log.level)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *input == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *archive != "" {
		cfg.Archive.Kind, cfg.Archive.Dir = "filesystem", *archive
	}
	cfg.Model.Dir = modelDir(*model, *cfgPath != "", cfg.Model.Dir)
	if *batch > 0 {
		cfg.Model.BatchSize = *batch
	}
	if *provider != "" {
		cfg.Model.ExecutionProvider = *provider
	}
	if *threads >= 0 {
		cfg.Model.IntraOpThreads = *threads
	}
	if *segType != "" {
		cfg.SEG.Type = *segType
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	cfg.SEG.SR = cfg.SEG.SR || *sr
	cfg.SEG.Overlay = cfg.SEG.Overlay || *overlay
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	p, err := pipeline.New(pipelineOptions(cfg), log)
	if err != nil {
		return err
	}
	defer p.Close()
	if *archive != "" {
		// An output folder named on the command line is this run's own:
		// it is made here, unlike a configured archive.dir.
		if err := os.MkdirAll(*archive, 0o750); err != nil {
			return fmt.Errorf("--archive: creating %s: %w", *archive, err)
		}
	}
	sink, fsink, err := newSink(cfg, log)
	if err != nil {
		return err
	}
	opts := pipeline.BatchOptions{Input: *input, Reports: *reportsDir, Sink: sink, Archive: fsink, MasksDir: *masks}
	bar := newProgress(stderr)
	opts.Progress = bar.update
	start := time.Now()
	rows, err := pipeline.RunBatch(ctx, p, daemon.Selector(cfg, p.Manifest().Modalities), opts, log)
	bar.finish()
	if err != nil {
		return err
	}
	failed := printSummary(stdout, rows, p.Manifest().ID(), p.Engine().Provider(), time.Since(start))
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

// modelDir picks the model folder: the flag, else the configured one when a
// config file was given, else the shipped model beside the binary or in
// the working directory (the repository layout), else the default.
func modelDir(flagDir string, fromConfig bool, configured string) string {
	if flagDir != "" {
		return flagDir
	}
	if fromConfig {
		return configured
	}
	var cands []string
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), "..", "models", "tmca-cxr-compact"))
	}
	cands = append(cands, filepath.Join("models", "tmca-cxr-compact"))
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "manifest.json")); err == nil {
			return c
		}
	}
	return configured
}

// printSummary writes the summary table and returns the number of failed
// selected series.
func printSummary(w io.Writer, rows []pipeline.BatchRow, model, provider string, took time.Duration) int {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tMODALITY\tREPORT\tGUIDE\tFRAMES\tSEGMENTED\tOUTPUT")
	failed, ok, skipped, noTarget := 0, 0, 0, 0
	for _, r := range rows {
		amount := "-"
		switch {
		case r.VolumeML > 0:
			amount = fmt.Sprintf("%.1f mL", r.VolumeML)
		case r.AreaMM2 > 0:
			amount = fmt.Sprintf("%.0f mm²", r.AreaMM2)
		case r.Error == "" && !r.Skipped:
			amount = fmt.Sprintf("%d px", r.SegmentedPixels)
		}
		out := relPath(r.Output)
		switch {
		case r.Skipped:
			out = "skipped: " + r.Error
			skipped++
		case r.Error != "":
			out = "FAILED: " + r.Error
			failed++
		case r.NoTarget:
			noTarget++
			amount = "-"
		default:
			ok++
		}
		rule, _, _ := strings.Cut(r.Guide, " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortUID(r.SeriesUID), orDash(r.Modality), orDash(r.Report), orDash(strings.TrimSuffix(rule, ";")), r.Frames, amount, out)
		if r.Error == "" && len(r.Objects) > 1 {
			// The objects written with the SEG, one line each.
			for _, o := range r.Objects[1:] {
				fmt.Fprintf(tw, "\t\t\t\t\t\t+ %s %s\n", o.Kind, relPath(o.Output))
			}
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d series segmented, %d without a target in their report, %d failed, %d skipped in %.1fs (model %s on %s)\n", ok, noTarget, failed, skipped, took.Seconds(), model, provider)
	return failed
}

// relPath shows a path below the working directory relative to it.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil || !filepath.IsAbs(p) {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortUID keeps a UID readable in a table: its last 24 characters.
func shortUID(uid string) string {
	if len(uid) <= 28 {
		return uid
	}
	return "…" + uid[len(uid)-24:]
}

// progress draws a one-line progress bar on a terminal, and nothing
// otherwise.
type progress struct {
	w     io.Writer
	on    bool
	start time.Time
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, on: ok && term.IsTerminal(int(f.Fd())), start: time.Now()}
}

func (p *progress) update(done, total int) {
	if !p.on || total == 0 {
		return
	}
	const width = 30
	n := done * width / total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d series  %.0fs", strings.Repeat("█", n), strings.Repeat(" ", width-n), done, total, time.Since(p.start).Seconds())
}

func (p *progress) finish() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
