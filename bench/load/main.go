// Command load measures the tmcad daemon as a whole, black-box, through the
// real `tmcad run` binary: N phantom series (a mix of single-image CR and
// multi-slice CT, each with its report) arrive in the drop folders as the
// DICOM receiver delivers them (hard-linked into a staging folder on the
// same filesystem, then renamed in), all at once (burst) or at a given rate
// (steady); the harness reads the daemon's JSON log, samples its memory,
// CPU and /metrics every second, and after the run reads River's job table
// for the queue's own timings. Run from the repository root:
//
//	go run ./bench/load [-n 20] [-ct-fraction 0.5] [-ct-slices 100] [-mode burst|steady] [-rate SERIES_PER_HOUR | -rate-from BURST.json -rate-fraction 0.8] [-db sqlite|postgres] ...
//	go run ./bench/load report [-results-md bench/RESULTS.md] [-png-dir bench] RUN.json...
//
// The first form writes RUN.json (raw per-series timings, samples and a
// summary) and RUN.md (its table row) into -out; the second turns the runs
// into the "load" section of bench/RESULTS.md and a PNG per run. The
// phantom series are generated once into -cache, outside the repository.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"tmcad/internal/pgtemp"
)

// onSignal holds what to undo if the harness is interrupted (the daemon,
// PostgreSQL), latest first.
var onSignal struct {
	sync.Mutex
	undo []func()
}

// atInterrupt registers f to run when SIGINT or SIGTERM ends the harness.
func atInterrupt(f func()) {
	onSignal.Lock()
	defer onSignal.Unlock()
	onSignal.undo = append([]func(){f}, onSignal.undo...)
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("load: ")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		log.Printf("%v: stopping the daemon and PostgreSQL", s)
		onSignal.Lock()
		for _, f := range onSignal.undo {
			f()
		}
		os.Exit(1)
	}()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "report" {
		err = reportMain(os.Args[2:])
	} else {
		err = runMain(os.Args[1:])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runConfig is what a run was asked to do; it is written into the result.
type runConfig struct {
	Name           string  `json:"name"`
	N              int     `json:"n"`
	CTFraction     float64 `json:"ct_fraction"`
	CTSlices       int     `json:"ct_slices"`
	CTSize         int     `json:"ct_size"`
	CRSize         int     `json:"cr_size,omitempty"`
	Mode           string  `json:"mode"`
	Rate           float64 `json:"rate_per_hour,omitempty"`
	RateFrom       string  `json:"rate_from,omitempty"`
	RateFraction   float64 `json:"rate_fraction,omitempty"`
	Reports        string  `json:"reports"`
	DB             string  `json:"db"`
	Workers        int     `json:"workers"`
	BatchSize      int     `json:"batch_size"`
	IntraOpThreads int     `json:"intra_op_threads"`
	ConcurrentRuns int     `json:"concurrent_runs"`
	StableAfter    string  `json:"stable_after"`
	SizeStableFor  string  `json:"size_stable_for"`
	Model          string  `json:"model"`
}

// runOptions are the harness's own settings, beside what a run records.
type runOptions struct {
	cache, work, out string
	bin, python      string
	build, keep      bool
	prepareOnly      bool
	timeout          time.Duration
}

// runMain does `go run ./bench/load [flags]`: one run, its JSON and its
// table row.
func runMain(args []string) error {
	rc, opt := parseRunFlags(args)
	if err := rc.complete(); err != nil {
		return err
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "cmd", "tmcad")); err != nil {
		return errors.New("run from the repository root (cmd/tmcad not found)")
	}
	if _, err := os.Stat(opt.bin); err != nil || opt.build {
		log.Printf("building %s", opt.bin)
		c := exec.Command("go", "build", "-o", opt.bin, "./cmd/tmcad")
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("building tmcad: %w", err)
		}
	}
	if err := os.MkdirAll(opt.out, 0o755); err != nil {
		return err
	}

	t := time.Now()
	log.Printf("preparing %d series (CT fraction %.2f, CT %d×%d²) in %s", rc.N, rc.CTFraction, rc.CTSlices, rc.CTSize, opt.cache)
	corp, err := buildCorpus(opt.cache, repo, opt.python, rc.N, rc.CTFraction, rc.CRSize, rc.CTSlices, rc.CTSize)
	if err != nil {
		return err
	}
	log.Printf("series ready in %.1fs", time.Since(t).Seconds())
	if opt.prepareOnly {
		return nil
	}

	res, err := run(rc, corp, repo, opt)
	if err != nil {
		return err
	}
	return writeRun(res, opt.out)
}

// parseRunFlags reads the flags of a run.
func parseRunFlags(args []string) (runConfig, runOptions) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var rc runConfig
	var opt runOptions
	fs.StringVar(&rc.Name, "name", "", "run name (default: <db>-<mode>-n<N>)")
	fs.IntVar(&rc.N, "n", 20, "number of series")
	fs.Float64Var(&rc.CTFraction, "ct-fraction", 0.5, "fraction of the series that are CT (the rest CR)")
	fs.IntVar(&rc.CTSlices, "ct-slices", 100, "slices per CT series")
	fs.IntVar(&rc.CTSize, "ct-size", 512, "CT rows = columns")
	fs.IntVar(&rc.CRSize, "cr-size", 0, "CR rows = columns (0: tmca.dicom_writer's default)")
	fs.StringVar(&rc.Mode, "mode", "burst", "burst (every series at once) or steady (-rate series per hour)")
	fs.Float64Var(&rc.Rate, "rate", 0, "steady arrival rate, series per hour")
	fs.StringVar(&rc.RateFrom, "rate-from", "", "steady: take the rate from this burst run's JSON (its sustained studies/hour × -rate-fraction)")
	fs.Float64Var(&rc.RateFraction, "rate-fraction", 0.8, "fraction of -rate-from's measured capacity")
	fs.StringVar(&rc.Reports, "reports", "before", "each report arrives before or after its series' instances")
	fs.StringVar(&rc.DB, "db", "sqlite", "queue database: sqlite or postgres (a throwaway server)")
	fs.IntVar(&rc.Workers, "workers", 1, "queue.workers")
	fs.IntVar(&rc.BatchSize, "batch-size", 8, "model.batch_size")
	fs.IntVar(&rc.IntraOpThreads, "intra-op-threads", 0, "model.intra_op_threads (0: ONNX Runtime's choice)")
	fs.IntVar(&rc.ConcurrentRuns, "concurrent-runs", 0, "model.concurrent_runs (0: automatic)")
	fs.StringVar(&rc.StableAfter, "stable-after", "1s", "watch.stable_after")
	fs.StringVar(&rc.SizeStableFor, "size-stable-for", "2s", "watch.size_stable_for (the daemon's default)")
	fs.StringVar(&rc.Model, "model", "models/tmca-cxr-compact", "model.dir (relative to the repository root)")
	fs.StringVar(&opt.cache, "cache", "/tmp/tmcad-load-cache", "folder of the generated phantom series (reused across runs)")
	fs.StringVar(&opt.work, "work", "/tmp/tmcad-load-run", "run folder (drop, staging, state, archive); on the cache's filesystem, for hard links")
	fs.StringVar(&opt.bin, "bin", "/tmp/tmcad-load-bin/tmcad", "tmcad binary (built from ./cmd/tmcad when missing)")
	fs.BoolVar(&opt.build, "build", false, "build -bin from ./cmd/tmcad even when it exists")
	fs.StringVar(&opt.out, "out", "/tmp/tmcad-load-out", "folder for RUN.json, RUN.md and the daemon's log")
	fs.StringVar(&opt.python, "python", "/usr/bin/python3", "Python with the repository's tmca package (phantom generator)")
	fs.DurationVar(&opt.timeout, "timeout", 3*time.Hour, "give up waiting for SEGs after this long")
	fs.BoolVar(&opt.keep, "keep", false, "keep the run folder (drop, state, archive) afterwards")
	fs.BoolVar(&opt.prepareOnly, "prepare-only", false, "only generate the series into -cache")
	fs.Parse(args)
	return rc, opt
}

// complete checks the run's settings and fills in its default name and,
// with -rate-from, its steady rate.
func (rc *runConfig) complete() error {
	if rc.Name == "" {
		rc.Name = fmt.Sprintf("%s-%s-n%d", rc.DB, rc.Mode, rc.N)
	}
	if rc.Reports != "before" && rc.Reports != "after" {
		return fmt.Errorf("-reports %q: must be before or after", rc.Reports)
	}
	if rc.DB != "sqlite" && rc.DB != "postgres" {
		return fmt.Errorf("-db %q: must be sqlite or postgres", rc.DB)
	}
	switch rc.Mode {
	case "burst":
	case "steady":
		if rc.RateFrom != "" {
			prev, err := readResult(rc.RateFrom)
			if err != nil {
				return fmt.Errorf("-rate-from: %w", err)
			}
			// The capacity is the sustained rate: SEGs per hour once the
			// first series became stable.
			capacity := summarize(prev).SustainedPerHour
			if capacity <= 0 {
				return fmt.Errorf("-rate-from %s: no measured studies/hour", rc.RateFrom)
			}
			rc.Rate = capacity * rc.RateFraction
		}
		if rc.Rate <= 0 {
			return errors.New("-mode steady needs -rate or -rate-from")
		}
	default:
		return fmt.Errorf("-mode %q: must be burst or steady", rc.Mode)
	}
	return nil
}

// writeRun summarizes a run and writes its JSON and its table row into
// out (the row also to stdout); a series without a SEG is an error.
func writeRun(res *result, out string) error {
	rc := res.Config
	res.Summary = summarize(res)
	path := filepath.Join(out, rc.Name+".json")
	if err := writeJSON(path, res); err != nil {
		return err
	}
	md := tableHeader() + tableRow(res) + "\n"
	if err := os.WriteFile(filepath.Join(out, rc.Name+".md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	fmt.Print(md)
	log.Printf("wrote %s", path)
	if res.Summary.Done < rc.N {
		return fmt.Errorf("%d of %d series got no SEG (see %s)", rc.N-res.Summary.Done, rc.N, res.DaemonLog)
	}
	return nil
}

// result is everything one run measured.
type result struct {
	Config    runConfig      `json:"config"`
	Started   time.Time      `json:"started"`
	Host      hostInfo       `json:"host"`
	Series    []seriesTiming `json:"series"`
	Samples   []sample       `json:"samples"`
	Warnings  []string       `json:"warnings,omitempty"` // the first warning and error lines of the daemon
	WarnCount int            `json:"warn_count"`         // besides LateCount's
	LateCount int            `json:"late_instance_lines"`
	ErrCount  int            `json:"error_count"`
	DaemonLog string         `json:"daemon_log"`
	Summary   summary        `json:"summary"`
}

// hostInfo describes the machine a run ran on.
type hostInfo struct {
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
}

// seriesTiming is one series' timeline, seconds since the first arrival
// (nil: never happened).
type seriesTiming struct {
	derived
	Files         int      `json:"files"`
	ArriveFirst   *float64 `json:"arrive_first_s"`
	ArriveLast    *float64 `json:"arrive_last_s"` // last instance renamed into the drop folder
	ReportAt      *float64 `json:"report_s"`
	Stable        *float64 `json:"stable_s"`   // "series stable" logged
	Enqueued      *float64 `json:"enqueued_s"` // process job created
	Started       *float64 `json:"started_s"`  // process job attempted (last attempt)
	Made          *float64 `json:"made_s"`     // "SEG made" logged
	ProcessDone   *float64 `json:"process_done_s"`
	ExportCreated *float64 `json:"export_created_s"`
	ExportStarted *float64 `json:"export_started_s"`
	ExportDone    *float64 `json:"export_done_s"`
	Stored        *float64 `json:"stored_s"` // "SEG stored" logged
	InferenceS    float64  `json:"inference_s,omitempty"`
	SEGFrames     int      `json:"seg_frames,omitempty"`     // frames the SEG was made from
	StableCount   int      `json:"stable_logged,omitempty"`  // "series stable" lines (more than one: judged stable again)
	LateInstances int      `json:"late_instances,omitempty"` // instances catalogued after the series was queued
	Attempts      int      `json:"attempts,omitempty"`
	Failed        bool     `json:"failed,omitempty"`
	processJobID  int64
	exportJobID   int64
	segSOPUID     string
}

func ptr(v float64) *float64 { return &v }

// run does one run: starts the daemon (and PostgreSQL), delivers the
// series, waits for their SEGs and collects the timings.
func run(rc runConfig, corp *corpus, repo string, opt runOptions) (*result, error) {
	res := &result{Config: rc, Started: time.Now(), Host: hostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadBefore: loadavgLine()}}
	dirs, err := makeRunFolder(opt.work)
	if err != nil {
		return nil, err
	}
	if !opt.keep {
		defer os.RemoveAll(opt.work)
	}
	var pg *pgtemp.Server
	if rc.DB == "postgres" {
		if pg, err = pgtemp.Start("tmcad-load-pg-"); err != nil {
			return nil, err
		}
		defer pg.Stop()
		atInterrupt(pg.Stop)
	}
	port, err := pgtemp.FreePort()
	if err != nil {
		return nil, err
	}
	dc := rc.daemonConf(dirs, repo, port)
	if pg != nil {
		dc.DatabaseURL = pg.URL
	}
	res.DaemonLog = filepath.Join(opt.out, rc.Name+".daemon.log")
	d, err := startDaemon(opt.bin, repo, filepath.Join(opt.work, "tmcad.toml"), res.DaemonLog, dc)
	if err != nil {
		return nil, err
	}
	atInterrupt(func() { _ = d.stop() })
	stopped := false
	defer func() {
		if !stopped {
			_ = d.stop()
		}
	}()
	if !d.wait(2*time.Minute, func(evs []logEvent) bool { return hasMessage(evs, "tmcad ready") }) {
		return nil, fmt.Errorf("the daemon did not log \"tmcad ready\" within 2 minutes (see %s)", res.DaemonLog)
	}

	// Stage every series (hard links: the cache and the run folder share
	// a filesystem), so that arrival costs one rename per file.
	staged, err := stage(corp, dirs["staging"])
	if err != nil {
		return nil, err
	}
	byUID := res.listSeries(corp)

	t0 := time.Now()
	rel := since(t0)
	smp := startSampler(d.Pid(), dc.HTTPListen, outboxDir(dc.StateDir), t0)
	log.Printf("%s: delivering %d series (%s)", rc.Name, len(corp.Series), rc.Mode)
	deliverErr := deliverAll(rc, staged, dirs, res.Series, t0, rel)
	allDone := d.wait(opt.timeout, allFinished(len(corp.Series)))
	if err := <-deliverErr; err != nil {
		return nil, err
	}
	res.Samples = smp.finish()
	if !allDone {
		log.Printf("%s: not every series finished within %s", rc.Name, opt.timeout)
	}
	stopped = true
	if err := d.stop(); err != nil {
		log.Printf("%s: %v", rc.Name, err)
	}
	res.Host.LoadAfter = loadavgLine()

	res.readLog(d.snapshot(), byUID, rel)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	jobs, err := readJobs(ctx, dc.StateDir, dc.DatabaseURL)
	if err != nil {
		log.Printf("%s: queue timings unavailable: %v", rc.Name, err)
	}
	res.readQueue(jobs, byUID, rel)
	return res, nil
}

// makeRunFolder empties work and makes its folders, returned by name
// ("state", "drop/dicom", "drop/reports", "staging", "archive").
func makeRunFolder(work string) (map[string]string, error) {
	if err := os.RemoveAll(work); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", work, err)
	}
	dirs := map[string]string{}
	for _, d := range []string{"state", "drop/dicom", "drop/reports", "staging", "archive"} {
		dirs[d] = filepath.Join(work, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			return nil, fmt.Errorf("run folder: %w", err)
		}
	}
	return dirs, nil
}

// daemonConf is the daemon's configuration for this run, in the run
// folder's dirs, its HTTP server on port; no database URL (SQLite).
func (rc runConfig) daemonConf(dirs map[string]string, repo string, port int) daemonConf {
	return daemonConf{
		StateDir: dirs["state"], DICOMDir: dirs["drop/dicom"], ReportsDir: dirs["drop/reports"], ArchiveDir: dirs["archive"],
		ModelDir: filepath.Join(repo, rc.Model), HTTPListen: fmt.Sprintf("127.0.0.1:%d", port),
		StableAfter: rc.StableAfter, SizeStableFor: rc.SizeStableFor,
		Workers: rc.Workers, BatchSize: rc.BatchSize, IntraOpThreads: rc.IntraOpThreads, ConcurrentRuns: rc.ConcurrentRuns,
	}
}

// listSeries makes res.Series, one timeline per series of corp, and
// returns them by series UID.
func (res *result) listSeries(corp *corpus) map[string]*seriesTiming {
	res.Series = make([]seriesTiming, len(corp.Series))
	byUID := map[string]*seriesTiming{}
	for i, s := range corp.Series {
		res.Series[i] = seriesTiming{derived: *s, Files: len(s.Files)}
		byUID[s.SeriesUID] = &res.Series[i]
	}
	return byUID
}

// since returns the seconds from t0 to a time, nil for the zero time.
func since(t0 time.Time) func(time.Time) *float64 {
	return func(t time.Time) *float64 {
		if t.IsZero() {
			return nil
		}
		return ptr(t.Sub(t0).Seconds())
	}
}

// deliverAll delivers the staged series in the background, all at once
// (burst) or series i at t0 + i/rate (steady), and records when each
// arrived in series; the channel gets the first error, or nil once every
// series is in.
func deliverAll(rc runConfig, staged []stagedSeries, dirs map[string]string, series []seriesTiming, t0 time.Time, rel func(time.Time) *float64) <-chan error {
	interval := time.Duration(0)
	if rc.Mode == "steady" {
		interval = time.Duration(float64(time.Hour) / rc.Rate)
	}
	deliverErr := make(chan error, 1)
	go func() {
		for i := range staged {
			if interval > 0 {
				time.Sleep(time.Until(t0.Add(time.Duration(i) * interval)))
			}
			first, last, rep, err := deliver(staged[i], dirs["drop/dicom"], dirs["drop/reports"], rc.Reports == "before")
			if err != nil {
				deliverErr <- err
				return
			}
			st := &series[i]
			// Written before the daemon can act on the series' last file
			// event, read only after the run: no lock needed beyond the
			// channel.
			st.ArriveFirst, st.ArriveLast, st.ReportAt = rel(first), rel(last), rel(rep)
		}
		deliverErr <- nil
	}()
	return deliverErr
}

// allFinished is the condition that n series have their SEG stored or
// their job failed for good.
func allFinished(n int) func([]logEvent) bool {
	return func(evs []logEvent) bool {
		done := map[string]bool{}
		for _, e := range evs {
			if e.Message == "SEG stored" || strings.HasPrefix(e.Message, "job failed for good") {
				done[e.SeriesUID] = true
			}
		}
		return len(done) >= n
	}
}

// readLog takes from the daemon's log events the warning and error
// counts, the first such lines, and each series' stable, SEG made and SEG
// stored times.
func (res *result) readLog(evs []logEvent, byUID map[string]*seriesTiming, rel func(time.Time) *float64) {
	for _, e := range evs {
		st := byUID[e.SeriesUID]
		switch {
		case e.Message == lateInstance:
			res.LateCount++
			if st != nil {
				st.LateInstances++
			}
		case e.Level == "warn" || e.Level == "error" || e.Level == "fatal":
			if e.Level == "warn" {
				res.WarnCount++
			} else {
				res.ErrCount++
			}
			if len(res.Warnings) < 20 {
				res.Warnings = append(res.Warnings, e.Raw)
			}
			if st != nil && strings.HasPrefix(e.Message, "job failed for good") {
				st.Failed = true
			}
		case st == nil:
		case e.Message == "series stable":
			st.StableCount++
			if st.Stable == nil {
				st.Stable = rel(e.At)
			}
		case e.Message == "SEG made; waiting in the outbox for export":
			st.Made, st.InferenceS, st.processJobID, st.segSOPUID, st.SEGFrames = rel(e.At), e.Inference, e.JobID, e.SEGSOPUID, e.Frames
		case e.Message == "SEG stored":
			st.Stored, st.exportJobID = rel(e.At), e.JobID
		}
	}
}

// readQueue takes from River's job rows each series' process job times
// (by series UID) and export job times (by the SEG's SOP instance UID).
func (res *result) readQueue(jobs []riverJob, byUID map[string]*seriesTiming, rel func(time.Time) *float64) {
	bySOP := map[string]*seriesTiming{}
	for i := range res.Series {
		if s := &res.Series[i]; s.segSOPUID != "" {
			bySOP[s.segSOPUID] = s
		}
	}
	for _, j := range jobs {
		switch {
		case j.SeriesUID != "" && byUID[j.SeriesUID] != nil:
			st := byUID[j.SeriesUID]
			st.Enqueued, st.Started, st.ProcessDone, st.Attempts = rel(j.Created), rel(j.Attempted), rel(j.Finalized), j.Attempt
		case j.SOPUID != "" && bySOP[j.SOPUID] != nil:
			st := bySOP[j.SOPUID]
			st.ExportCreated, st.ExportStarted, st.ExportDone = rel(j.Created), rel(j.Attempted), rel(j.Finalized)
		}
	}
}

// stagedSeries is one series' files and report in the staging folder.
type stagedSeries struct {
	dir, rel string // staging folder; its path under the drop folder
	files    []string
	report   string
}

// stage hard-links every series' files and report into the staging folder.
func stage(corp *corpus, staging string) ([]stagedSeries, error) {
	out := make([]stagedSeries, len(corp.Series))
	for i, s := range corp.Series {
		st := stagedSeries{rel: filepath.Join(s.Accession, "series-1")}
		st.dir = filepath.Join(staging, st.rel)
		if err := os.MkdirAll(st.dir, 0o755); err != nil {
			return nil, fmt.Errorf("staging: %w", err)
		}
		for _, f := range s.Files {
			dst := filepath.Join(st.dir, filepath.Base(f))
			if err := os.Link(f, dst); err != nil {
				return nil, fmt.Errorf("staging (the cache and -work must share a filesystem): %w", err)
			}
			st.files = append(st.files, dst)
		}
		st.report = filepath.Join(staging, filepath.Base(s.Report))
		if err := os.Link(s.Report, st.report); err != nil {
			return nil, fmt.Errorf("staging: %w", err)
		}
		out[i] = st
	}
	return out, nil
}

// deliver renames one staged series into the drop folders, its report
// first or last, and returns when its first and last instances and its
// report were renamed.
func deliver(s stagedSeries, dicomDir, reportsDir string, reportFirst bool) (first, last, rep time.Time, err error) {
	moveReport := func() error {
		if err := os.Rename(s.report, filepath.Join(reportsDir, filepath.Base(s.report))); err != nil {
			return fmt.Errorf("delivering a report: %w", err)
		}
		rep = time.Now()
		return nil
	}
	if reportFirst {
		if err = moveReport(); err != nil {
			return
		}
	}
	dst := filepath.Join(dicomDir, s.rel)
	if err = os.MkdirAll(dst, 0o755); err != nil {
		return first, last, rep, fmt.Errorf("delivering: %w", err)
	}
	for i, f := range s.files {
		if err = os.Rename(f, filepath.Join(dst, filepath.Base(f))); err != nil {
			return first, last, rep, fmt.Errorf("delivering: %w", err)
		}
		if i == 0 {
			first = time.Now()
		}
	}
	last = time.Now()
	if !reportFirst {
		err = moveReport()
	}
	return
}

// hasMessage reports whether any event has this message.
func hasMessage(evs []logEvent, msg string) bool {
	for _, e := range evs {
		if e.Message == msg {
			return true
		}
	}
	return false
}

// loadavgLine is /proc/loadavg's three load averages.
func loadavgLine() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// writeJSON writes v indented to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// readResult reads a run's JSON.
func readResult(path string) (*result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading a run: %w", err)
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading a run: %s: %w", path, err)
	}
	return &r, nil
}
