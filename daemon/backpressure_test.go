package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tmcad/config"
	"tmcad/daemon/pipeline"
)

// blockingProcessor is a fakeProcessor whose jobs wait until release is
// closed.
type blockingProcessor struct {
	*fakeProcessor
	release chan struct{}
}

func (b blockingProcessor) Process(ctx context.Context, job pipeline.SeriesJob) (pipeline.Result, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return pipeline.Result{}, ctx.Err()
	}
	return b.fakeProcessor.Process(ctx, job)
}

// dropSeries writes a report and a 2-instance series for each study
// "<prefix>.<i>" (series "<prefix>.<i>.1") and returns the series UIDs.
func dropSeries(t *testing.T, cfg *config.Config, prefix string, from, to int) []string {
	t.Helper()
	var out []string
	for i := from; i <= to; i++ {
		study := fmt.Sprintf("%s.%d", prefix, i)
		series := study + ".1"
		writeReport(t, cfg, study, "FINDINGS: right upper lobe opacity.")
		for j, in := range testSeries(study, series, 2) {
			writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, study), fmt.Sprintf("IM%d", j), in)
		}
		out = append(out, series)
	}
	return out
}

// assertHeldBack checks that the series dropped while ingestion is
// paused stay uncatalogued with their files in the drop folder, after
// the watcher has had several size checks and a rescan to send them.
func assertHeldBack(t *testing.T, d *Daemon, cfg *config.Config, held []string) {
	t.Helper()
	time.Sleep(cfg.Watch.RescanEvery.Duration + 4*cfg.Watch.SizeStableFor.Duration)
	for _, s := range held {
		if st := seriesState(t, d, s); st != "" {
			t.Errorf("series %s catalogued (%s) while ingestion is paused", s, st)
		}
		study := strings.TrimSuffix(s, ".1")
		if _, err := os.Stat(filepath.Join(cfg.Watch.DICOMDir, study, "IM0")); err != nil {
			t.Errorf("file of %s gone from the drop folder: %v", s, err)
		}
	}
}

// With limits.max_queued_jobs = 2 and jobs that do not finish, ingestion
// pauses once the queue holds 2 jobs: series dropped then stay in the
// drop folder, uncatalogued, and /readyz and /metrics say why. Once the
// jobs finish, ingestion resumes and every series is processed.
func TestIngestPausesOnQueuedJobs(t *testing.T) {
	cfg := testConfig(t)
	cfg.Watch.RescanEvery.Duration = 500 * time.Millisecond
	cfg.Limits.MaxQueuedJobs = 2
	proc := blockingProcessor{newFakeProcessor(), make(chan struct{})}
	sink := &fakeSink{puts: map[string]int{}}
	d, stop := runDaemon(t, cfg, proc, sink)
	addr := d.HTTPAddr()

	if got := scrape(t, addr, `tmcad_ingest_paused{reason="queued_jobs"}`); got != 0 {
		t.Fatalf("paused before anything was queued: %v", got)
	}
	first := dropSeries(t, cfg, "1.7", 1, 3)
	waitFor(t, 20*time.Second, "ingest paused", func() bool {
		return scrape(t, addr, `tmcad_ingest_paused{reason="queued_jobs"}`) == 1
	})
	code, body := readyz(t, addr)
	if code != 503 || !strings.Contains(body, "ingest paused:") || !strings.Contains(body, "jobs queued, limit 2") {
		t.Errorf("/readyz while paused: %d %q", code, body)
	}
	if got := scrape(t, addr, `tmcad_ingest_paused{reason="outbox"}`); got != 0 {
		t.Errorf("paused for the outbox: %v", got)
	}

	held := dropSeries(t, cfg, "1.8", 1, 2)
	assertHeldBack(t, d, cfg, held)

	close(proc.release)
	for _, s := range append(first, held...) {
		waitFor(t, 30*time.Second, "series "+s+" stored", func() bool { return sink.stored(s+".99.1") == 1 })
	}
	waitFor(t, 10*time.Second, "ingest resumed", func() bool {
		return scrape(t, addr, `tmcad_ingest_paused{reason="queued_jobs"}`) == 0
	})
	waitFor(t, 10*time.Second, "/readyz 200", func() bool {
		code, _ := readyz(t, addr)
		return code == 200
	})
	stop()
}

// With limits.max_outbox = 2 and the archive down, ingestion pauses once
// 2 SEGs wait in the outbox, and resumes once the archive takes them.
func TestIngestPausesOnOutbox(t *testing.T) {
	cfg := testConfig(t)
	cfg.Watch.RescanEvery.Duration = 500 * time.Millisecond
	cfg.Archive.RetryMaxInterval.Duration = 300 * time.Millisecond
	cfg.Limits.MaxOutbox = 2
	proc := newFakeProcessor()
	sink := &fakeSink{puts: map[string]int{}, down: true}
	d, stop := runDaemon(t, cfg, proc, sink)
	addr := d.HTTPAddr()

	first := dropSeries(t, cfg, "1.7", 1, 3)
	waitFor(t, 20*time.Second, "ingest paused", func() bool {
		return scrape(t, addr, `tmcad_ingest_paused{reason="outbox"}`) == 1
	})
	code, body := readyz(t, addr)
	if code != 503 || !strings.Contains(body, "ingest paused:") || !strings.Contains(body, "SEGs in the outbox, limit 2") {
		t.Errorf("/readyz while paused: %d %q", code, body)
	}

	held := dropSeries(t, cfg, "1.8", 1, 2)
	assertHeldBack(t, d, cfg, held)

	sink.mu.Lock()
	sink.down = false
	sink.mu.Unlock()
	for _, s := range append(first, held...) {
		waitFor(t, 30*time.Second, "series "+s+" stored", func() bool { return sink.stored(s+".99.1") == 1 })
	}
	waitFor(t, 10*time.Second, "ingest resumed", func() bool {
		return scrape(t, addr, `tmcad_ingest_paused{reason="outbox"}`) == 0
	})
	waitFor(t, 10*time.Second, "/readyz 200", func() bool {
		code, _ := readyz(t, addr)
		return code == 200
	})
	stop()
}

// A limit raised on reload (or set to 0) ends a pause at the next count.
func TestPressureLimitChangeResumes(t *testing.T) {
	cfg := testConfig(t)
	d := &Daemon{metrics: newMetrics()}
	d.cfg.Store(cfg)
	d.applyPressure(pauseQueuedJobs, "jobs queued", 10, 10)
	if open, _ := d.gate.state(); open {
		t.Fatal("not paused at the limit")
	}
	d.applyPressure(pauseQueuedJobs, "jobs queued", 10, 11)
	if open, _ := d.gate.state(); open {
		t.Fatal("resumed above 90 % of the limit")
	}
	d.applyPressure(pauseQueuedJobs, "jobs queued", 10, 0)
	if open, _ := d.gate.state(); !open {
		t.Fatal("still paused with no limit")
	}
	if len(d.faults) != 0 {
		t.Fatalf("faults left after resuming: %v", d.faults)
	}
}
