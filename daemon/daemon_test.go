package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"
	"tmcad/daemon/pull"
	"tmcad/writer/archive"
)

// fakeProcessor stands in for the pipeline: it "segments" by returning
// bytes naming the series, and fails for series listed in fail.
type fakeProcessor struct {
	mu     sync.Mutex
	calls  map[string]int
	texts  map[string]bool
	fail   map[string]error
	delay  time.Duration
	called chan string
}

func newFakeProcessor() *fakeProcessor {
	return &fakeProcessor{calls: map[string]int{}, texts: map[string]bool{}, fail: map[string]error{}, called: make(chan string, 100)}
}

func (f *fakeProcessor) Model() pipeline.ModelInfo {
	return pipeline.ModelInfo{Name: "fake", Version: "1.0.0", ExecutionProvider: "cpu", TextRequired: true, Modalities: []string{"CT"}}
}

func (f *fakeProcessor) Process(ctx context.Context, job pipeline.SeriesJob) (pipeline.Result, error) {
	f.mu.Lock()
	f.calls[job.SeriesUID]++
	f.texts[job.SeriesUID] = job.Report != nil && job.Report.Text != ""
	err := f.fail[job.SeriesUID]
	delay := f.delay
	f.mu.Unlock()
	select {
	case f.called <- job.SeriesUID:
	default:
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return pipeline.Result{}, ctx.Err()
		}
	}
	if err != nil {
		return pipeline.Result{}, err
	}
	return pipeline.Result{
		SEG:       []byte(fmt.Sprintf("SEG of %s (%d files)", job.SeriesUID, len(job.Paths))),
		StudyUID:  job.StudyUID,
		SeriesUID: job.SeriesUID + ".99", SOPInstanceUID: job.SeriesUID + ".99.1",
		Summary: pipeline.Summary{Frames: len(job.Paths), Inference: 20 * time.Millisecond, ExecutionProvider: "cpu"},
	}, nil
}

func (f *fakeProcessor) count(series string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[series]
}

// fakeSink is an archive that can be taken down.
type fakeSink struct {
	mu   sync.Mutex
	puts map[string]int
	down bool
}

func (s *fakeSink) Name() string { return "fake" }

func (s *fakeSink) Put(_ context.Context, study, series, sop string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("connection refused")
	}
	s.puts[sop]++
	return nil
}

func (s *fakeSink) stored(sop string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts[sop]
}

// testConfig is a configuration on temporary folders with short timings.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	c := config.Default()
	c.StateDir = filepath.Join(dir, "state")
	c.Watch.DICOMDir = filepath.Join(dir, "dicom")
	c.Watch.ReportsDir = filepath.Join(dir, "reports")
	c.Watch.StableAfter = config.D(700 * time.Millisecond)
	c.Watch.SizeStableFor = config.D(100 * time.Millisecond)
	c.Watch.RescanEvery = config.D(2 * time.Second)
	c.Reports.Wait = config.D(2 * time.Second)
	c.Archive.Dir = filepath.Join(dir, "archive")
	c.HTTP.Listen = "127.0.0.1:0"
	c.Schedule.Reprocess = ""
	c.Queue.MaxAttempts = 2
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// runDaemon starts a daemon in the background; stop cancels and waits.
func runDaemon(t *testing.T, cfg *config.Config, p pipeline.Processor, s archive.Sink) (d *Daemon, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	// The DICOMweb door's counters stand for the collectors the wiring
	// adds to /metrics.
	d, err := New(ctx, Options{Config: cfg, Processor: p, Sink: s, Logger: log, RetryBase: 200 * time.Millisecond, PollInterval: 100 * time.Millisecond, DrainTimeout: 2 * time.Second,
		Collectors: []prometheus.Collector{pull.NewMetrics()}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return within 30s of cancel")
			}
			d.Close()
		})
	}
	t.Cleanup(stop)
	waitFor(t, 20*time.Second, "daemon ready", d.Ready)
	return d, stop
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func seriesState(t *testing.T, d *Daemon, uid string) string {
	t.Helper()
	s, err := d.cat.Series(context.Background(), uid)
	if err != nil {
		return ""
	}
	return s.State
}

// scrape returns the value of one sample of /metrics.
func scrape(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics has no sample %s", sample)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeReport(t *testing.T, cfg *config.Config, study, text string) {
	t.Helper()
	if err := os.MkdirAll(cfg.Watch.ReportsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(cfg.Watch.ReportsDir, study+".txt")
	if err := os.WriteFile(p+".tmp", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonFlow drives the whole daemon with a fake processor: reports
// before and after their series, a parked series picked up by the
// scheduled reprocess, a permanent failure quarantined, a SOP Instance UID
// conflict quarantined, an archive outage, and /metrics matching all that.
func TestDaemonFlow(t *testing.T) {
	cfg := testConfig(t)
	cfg.Schedule.Reprocess = "@every 2s"
	proc := newFakeProcessor()
	proc.fail["1.2.4.1"] = pipeline.Permanent("decode", errors.New("pixel data truncated"))
	sink := &fakeSink{puts: map[string]int{}}
	d, stop := runDaemon(t, cfg, proc, sink)
	addr := d.HTTPAddr()

	// A: report before. B: report after. C: no report (parked, then late).
	// D: fails permanently. E: MR, not selected.
	writeReport(t, cfg, "1.2.1", "FINDINGS: left lower lobe opacity.")
	files := 0
	for _, s := range []struct{ study, series string }{{"1.2.1", "1.2.1.1"}, {"1.2.2", "1.2.2.1"}, {"1.2.3", "1.2.3.1"}, {"1.2.4", "1.2.4.1"}} {
		for i, in := range testSeries(s.study, s.series, 3) {
			writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, s.study, "sub"), fmt.Sprintf("IM%d", i), in)
			files++
			time.Sleep(50 * time.Millisecond)
		}
	}
	writeReport(t, cfg, "1.2.4", "IMPRESSION: nodule.")
	mr := testSeries("1.2.5", "1.2.5.1", 1)[0]
	mr.Modality = "MR"
	writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, "mr"), "MR1", mr)
	files++
	// A conflicting copy of A's first instance.
	conflict := testSeries("1.2.1", "1.2.1.1", 1)[0]
	conflict.Fill = 9999
	time.Sleep(300 * time.Millisecond)
	writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, "other"), "dup", conflict)

	waitFor(t, 20*time.Second, "A stored", func() bool { return sink.stored("1.2.1.1.99.1") == 1 })
	writeReport(t, cfg, "1.2.2", "FINDINGS: small effusion.")
	waitFor(t, 20*time.Second, "B stored", func() bool { return sink.stored("1.2.2.1.99.1") == 1 })
	waitFor(t, 20*time.Second, "C parked", func() bool { return seriesState(t, d, "1.2.3.1") == catalog.StateAwaitingReport })
	waitFor(t, 20*time.Second, "D failed", func() bool { return seriesState(t, d, "1.2.4.1") == catalog.StateFailed })
	waitFor(t, 20*time.Second, "E skipped", func() bool { return seriesState(t, d, "1.2.5.1") == catalog.StateSkipped })

	// The archive goes down; C's report arrives; the reprocess queues C; the
	// SEG waits until the archive is back.
	sink.mu.Lock()
	sink.down = true
	sink.mu.Unlock()
	writeReport(t, cfg, "1.2.3", "FINDINGS: consolidation.")
	waitFor(t, 20*time.Second, "C processed", func() bool { return proc.count("1.2.3.1") == 1 })
	time.Sleep(1500 * time.Millisecond)
	if n := sink.stored("1.2.3.1.99.1"); n != 0 {
		t.Fatalf("stored while the archive was down")
	}
	if st := seriesState(t, d, "1.2.3.1"); st != catalog.StateExporting {
		t.Fatalf("C state %s, want %s", st, catalog.StateExporting)
	}
	sink.mu.Lock()
	sink.down = false
	sink.mu.Unlock()
	waitFor(t, 30*time.Second, "C stored after the outage", func() bool { return sink.stored("1.2.3.1.99.1") == 1 })

	for _, s := range []string{"1.2.1.1", "1.2.2.1", "1.2.3.1"} {
		if n := proc.count(s); n != 1 {
			t.Errorf("series %s processed %d times, want 1", s, n)
		}
		if !proc.texts[s] {
			t.Errorf("series %s processed without its report", s)
		}
	}
	if n := proc.count("1.2.4.1"); n != 1 {
		t.Errorf("permanently failing series processed %d times, want 1 (no retry)", n)
	}
	// Quarantine: D's inputs + reason, and the conflicting file.
	q, _ := filepath.Glob(filepath.Join(cfg.QuarantineDir(), "*"))
	var sawSeries, sawConflict bool
	for _, dir := range q {
		reason, err := os.ReadFile(filepath.Join(dir, "reason.txt"))
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if strings.Contains(dir, "series-1.2.4.1") {
			sawSeries = true
			ents, _ := os.ReadDir(dir)
			if len(ents) != 3+1+1 { // 3 instances, the report, reason.txt
				t.Errorf("quarantine of D has %d entries, want 5", len(ents))
			}
			if !strings.Contains(string(reason), "decode") {
				t.Errorf("reason.txt lacks the reason: %s", reason)
			}
		}
		if strings.Contains(dir, "conflict") {
			sawConflict = true
		}
		if strings.Contains(string(reason), "DOE") || strings.Contains(string(reason), "PID-SECRET") {
			t.Errorf("PHI in %s", dir)
		}
	}
	if !sawSeries || !sawConflict {
		t.Errorf("quarantine: series %v, conflict %v (%v)", sawSeries, sawConflict, q)
	}
	// Inputs kept (retention keep).
	if _, err := os.Stat(filepath.Join(cfg.Watch.DICOMDir, "1.2.1", "sub", "IM0")); err != nil {
		t.Errorf("input gone with retention.inputs = keep: %v", err)
	}

	// /metrics matches what happened.
	want := map[string]float64{
		`tmcad_files_seen_total{kind="dicom"}`:                                  float64(files),
		`tmcad_files_seen_total{kind="conflict"}`:                               1,
		`tmcad_files_seen_total{kind="report"}`:                                 4,
		`tmcad_series_ready_total`:                                              4,
		`tmcad_series_parked_total`:                                             1,
		`tmcad_segs_stored_total`:                                               3,
		`tmcad_errors_total{reason="decode"}`:                                   1,
		`tmcad_errors_total{reason="conflict"}`:                                 1,
		`tmcad_inference_seconds_count`:                                         3,
		`tmcad_jobs{state="completed"}`:                                         3,
		`tmcad_jobs{state="cancelled"}`:                                         1,
		`tmcad_execution_provider{model="fake",provider="cpu",version="1.0.0"}`: 1,
		`tmcad_hl7_messages_total{ack="AA"}`:                                    0,
		`tmcad_hl7_connections`:                                                 0,
		`tmcad_pull_series_fetched_total`:                                       0,
	}
	for k, v := range want {
		if got := scrape(t, addr, k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if got := scrape(t, addr, `tmcad_errors_total{reason="archive"}`); got < 1 {
		t.Errorf("archive errors %v, want >= 1", got)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	stop()
}

// TestNotifySocket sees READY=1, WATCHDOG=1 and STOPPING=1 in that order.
func TestNotifySocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "300000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cfg := testConfig(t)
	_, stop := runDaemon(t, cfg, newFakeProcessor(), &fakeSink{puts: map[string]int{}})
	var seen []string
	next := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				for _, line := range strings.Split(m, "\n") {
					seen = append(seen, line)
					if line == want {
						return
					}
				}
			case <-deadline:
				t.Fatalf("no %s; saw %q", want, seen)
			}
		}
	}
	next("READY=1")
	next("WATCHDOG=1")
	next("WATCHDOG=1")
	go stop()
	next("STOPPING=1")
	for i, l := range seen {
		if l == "WATCHDOG=1" {
			for _, r := range seen[:i] {
				if r == "READY=1" {
					return
				}
			}
			t.Fatalf("WATCHDOG=1 before READY=1: %q", seen)
		}
	}
}
