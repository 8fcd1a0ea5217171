package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tmcad/daemon/catalog"
	"tmcad/writer/archive"

	"github.com/riverqueue/river"
)

// flakySink fails every store of the SOP UIDs in fail with its error while
// failing is set, and counts the calls.
type flakySink struct {
	mu      sync.Mutex
	fail    map[string]error
	failing bool
	calls   map[string]int
	puts    map[string]int
}

func (s *flakySink) Name() string { return "flaky" }

func (s *flakySink) Put(_ context.Context, study, series, sop string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[sop]++
	if err := s.fail[sop]; err != nil && s.failing {
		return err
	}
	s.puts[sop]++
	return nil
}

func (s *flakySink) count(m map[string]int, sop string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m[sop]
}

// TestExportRetriesWithoutEnd keeps the archive failing transiently for
// many more attempts than queue.max_attempts: the SEG stays in the outbox
// and is tried again at a capped interval without the job using up its
// attempts, /metrics and `tmcad status` show the error meanwhile, and once
// the archive takes objects again the SEG is stored. An archive refusing
// the object fails that export at once.
func TestExportRetriesWithoutEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.Archive.RetryMaxInterval.Duration = 300 * time.Millisecond
	proc := newFakeProcessor()
	const seg, rejected = "1.8.1.1.99.1", "1.8.2.1.99.1"
	sink := &flakySink{
		fail: map[string]error{
			seg:      fmt.Errorf("writer: dicomweb STOW-RS of SOP %s: HTTP 503 Service Unavailable from the archive", seg),
			rejected: fmt.Errorf("writer: dicomweb STOW-RS of SOP %s: HTTP 400 Bad Request: %w", rejected, archive.ErrRejected),
		},
		failing: true, calls: map[string]int{}, puts: map[string]int{},
	}
	d, _ := runDaemon(t, cfg, proc, sink)
	ctx := context.Background()
	for _, s := range []struct{ study, series string }{{"1.8.1", "1.8.1.1"}, {"1.8.2", "1.8.2.1"}} {
		writeReport(t, cfg, s.study, "FINDINGS: left lower lobe opacity.")
		for i, in := range testSeries(s.study, s.series, 2) {
			writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, s.study), fmt.Sprintf("IM%d", i), in)
		}
	}
	const many = 8 // well over queue.max_attempts (2)
	waitFor(t, 60*time.Second, "many failed export attempts", func() bool { return sink.count(sink.calls, seg) >= many })

	// Still waiting, and the job has used up none of its attempts.
	if st := seriesState(t, d, "1.8.1.1"); st != catalog.StateExporting {
		t.Errorf("series state %s while the archive fails, want %s", st, catalog.StateExporting)
	}
	jobs, err := d.client.JobList(ctx, river.NewJobListParams().Kinds(kindExport).First(100))
	if err != nil {
		t.Fatal(err)
	}
	attempt, maxAttempts := -1, 0
	for _, j := range jobs.Jobs {
		if strings.Contains(string(j.EncodedArgs), seg) {
			attempt, maxAttempts = j.Attempt, j.MaxAttempts
		}
	}
	if attempt < 0 {
		t.Fatalf("no export job for %s", seg)
	}
	if attempt > 1 {
		t.Errorf("export job at attempt %d of %d after %d failures: transient archive errors use up its attempts", attempt, maxAttempts, many)
	}
	if got := scrape(t, d.HTTPAddr(), "tmcad_export_retrying"); got != 1 {
		t.Errorf("tmcad_export_retrying = %v while one SEG is retried, want 1", got)
	}
	if got := scrape(t, d.HTTPAddr(), `tmcad_export_failures_total{class="transient"}`); got < many {
		t.Errorf(`tmcad_export_failures_total{class="transient"} = %v, want >= %d`, got, many)
	}
	r, err := ReadStatus(ctx, cfg, 10)
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[string]ExportErrorBrief{}
	for _, e := range r.ExportErrors {
		byUID[e.SOPUID] = e
	}
	if e, ok := byUID[seg]; !ok || e.Class != "transient" || e.Attempts < many || !strings.Contains(e.Error, "HTTP 503") || e.SourceSeriesUID != "1.8.1.1" {
		t.Errorf("status export error of the retried SEG: %+v (present %v), want transient, >= %d attempts, the HTTP 503", e, ok, many)
	}
	// Refused by the archive: failed at once, kept in the outbox.
	waitFor(t, 10*time.Second, "refused SEG's series failed", func() bool { return seriesState(t, d, "1.8.2.1") == catalog.StateFailed })
	if e, ok := byUID[rejected]; !ok || e.Class != "permanent" || e.Attempts != 1 {
		t.Errorf("status export error of the refused SEG: %+v (present %v), want permanent after 1 attempt", e, ok)
	}
	if n := sink.count(sink.calls, rejected); n != 1 {
		t.Errorf("refused SEG sent %d times, want 1", n)
	}
	if s, _ := d.cat.Series(ctx, "1.8.2.1"); s.Reason != "export_rejected" {
		t.Errorf("refused SEG's series reason %q, want export_rejected", s.Reason)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "outbox", rejected+".dcm")); err != nil {
		t.Errorf("refused SEG not kept in the outbox: %v", err)
	}

	// The archive recovers.
	sink.mu.Lock()
	sink.failing = false
	sink.mu.Unlock()
	waitFor(t, 10*time.Second, "SEG stored after the archive recovered", func() bool { return sink.count(sink.puts, seg) == 1 })
	waitFor(t, 5*time.Second, "series done", func() bool { return seriesState(t, d, "1.8.1.1") == catalog.StateDone })
	if got := scrape(t, d.HTTPAddr(), "tmcad_export_retrying"); got != 0 {
		t.Errorf("tmcad_export_retrying = %v after the SEG was stored, want 0", got)
	}
	r, err = ReadStatus(ctx, cfg, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.ExportErrors {
		if e.SOPUID == seg {
			t.Errorf("status still lists the stored SEG's export error: %+v", e)
		}
	}
	if n := sink.count(sink.puts, rejected); n != 0 {
		t.Errorf("refused SEG sent again without a reprocess (%d)", n)
	}
	// `tmcad reprocess --failed` sends the refused SEG again.
	res, err := Reprocess(ctx, d.cat, d.client, "1.0.0", ReprocessFilter{Failed: true}, nil)
	if err != nil || res.Queued != 1 {
		t.Fatalf("reprocess --failed: %+v, %v; want 1 queued", res, err)
	}
	waitFor(t, 10*time.Second, "refused SEG stored after reprocess --failed", func() bool { return sink.count(sink.puts, rejected) == 1 })
	waitFor(t, 5*time.Second, "its series done", func() bool { return seriesState(t, d, "1.8.2.1") == catalog.StateDone })
	if n := proc.count("1.8.2.1"); n != 1 {
		t.Errorf("refused series processed %d times, want 1 (only its export again)", n)
	}
}

// TestSinkErrorClasses: only a refusal of the object or a conflicting
// object is permanent.
func TestSinkErrorClasses(t *testing.T) {
	for _, c := range []struct {
		err  error
		perm bool
	}{
		{fmt.Errorf("x: %w", archive.ErrRejected), true},
		{fmt.Errorf("x: %w", archive.ErrConflict), true},
		{fmt.Errorf("x: %w", archive.ErrArchiveMissing), false},
		{errors.New("connection refused"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := archive.IsPermanent(c.err); got != c.perm {
			t.Errorf("IsPermanent(%v) = %v, want %v", c.err, got, c.perm)
		}
	}
}
