package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"
)

// companionProcessor is the fake pipeline with seg.sr and seg.overlay on:
// every SEG comes with a measurement report and an overlay.
type companionProcessor struct{ *fakeProcessor }

func (p companionProcessor) Process(ctx context.Context, job pipeline.SeriesJob) (pipeline.Result, error) {
	res, err := p.fakeProcessor.Process(ctx, job)
	if err != nil {
		return res, err
	}
	res.Companions = []pipeline.Companion{
		{Kind: pipeline.CompanionSR, StudyUID: job.StudyUID, SeriesUID: job.SeriesUID + ".98", SOPInstanceUID: job.SeriesUID + ".98.1", Data: []byte("SR of " + job.SeriesUID)},
		{Kind: pipeline.CompanionOverlay, StudyUID: job.StudyUID, SeriesUID: job.SeriesUID + ".97", SOPInstanceUID: job.SeriesUID + ".97.1", Data: []byte("overlay of " + job.SeriesUID)},
	}
	return res, nil
}

// pickySink refuses one SOP Instance UID while refuse is set, and counts
// the refusals.
type pickySink struct {
	fakeSink
	refuse  string
	refused int
}

func (s *pickySink) Put(ctx context.Context, study, series, sop string, data []byte) error {
	s.mu.Lock()
	refused := sop == s.refuse
	if refused {
		s.refused++
	}
	s.mu.Unlock()
	if refused {
		return errors.New("HTTP 500 from the archive")
	}
	return s.fakeSink.Put(ctx, study, series, sop, data)
}

// TestCompanionsExportedWithSEG: the measurement report and the overlay of
// a series wait in the outbox with its SEG and are stored by its export
// job; while one of them cannot be stored the SEG is not stored either and
// the series is not done; afterwards every object is stored once and the
// outbox is empty.
func TestCompanionsExportedWithSEG(t *testing.T) {
	cfg := testConfig(t)
	// Retries stay frequent however many refusals a loaded machine lets
	// pass before the archive recovers.
	cfg.Archive.RetryMaxInterval.Duration = 2 * time.Second
	proc := companionProcessor{newFakeProcessor()}
	sink := &pickySink{fakeSink: fakeSink{puts: map[string]int{}}, refuse: "1.2.7.1.97.1"}
	d, _ := runDaemon(t, cfg, proc, sink)

	writeReport(t, cfg, "1.2.7", "FINDINGS: right upper lobe opacity.")
	for i, in := range testSeries("1.2.7", "1.2.7.1", 2) {
		writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, "s"), "IM"+itoa(i), in)
	}
	waitFor(t, 20*time.Second, "the overlay refused twice", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.refused >= 2
	})
	if n := sink.stored("1.2.7.1.99.1"); n != 0 {
		t.Fatal("the SEG was stored while its overlay could not be")
	}
	if st := seriesState(t, d, "1.2.7.1"); st != catalog.StateExporting {
		t.Fatalf("series state %s while its overlay waits, want %s", st, catalog.StateExporting)
	}
	sink.mu.Lock()
	sink.refuse = ""
	sink.mu.Unlock()
	waitFor(t, 30*time.Second, "the SEG stored", func() bool { return sink.stored("1.2.7.1.99.1") == 1 })
	waitFor(t, 10*time.Second, "series done", func() bool { return seriesState(t, d, "1.2.7.1") == catalog.StateDone })
	for _, sop := range []string{"1.2.7.1.97.1", "1.2.7.1.98.1", "1.2.7.1.99.1"} {
		if n := sink.stored(sop); n != 1 {
			t.Errorf("%s stored %d times, want 1", sop, n)
		}
	}
	// The SEG leaves the outbox once it is recorded as stored (a crash in
	// between leaves it to the start-up sweep): wait for that last step.
	waitFor(t, 10*time.Second, "the outbox empty", func() bool {
		left, _ := filepath.Glob(filepath.Join(cfg.StateDir, "outbox", "*.dcm"))
		return len(left) == 0
	})
	if n := proc.count("1.2.7.1"); n != 1 {
		t.Errorf("series processed %d times, want 1", n)
	}
}

// TestCompanionsSweptWithTheirSEG: at start, an object whose SEG is still
// waiting for export stays in the outbox; one recorded by a job that died
// before recording its SEG is removed (the job makes it again).
func TestCompanionsSweptWithTheirSEG(t *testing.T) {
	cfg := testConfig(t)
	out := filepath.Join(cfg.StateDir, "outbox")
	if err := os.MkdirAll(out, 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(st, time.Now)
	ctx := t.Context()
	files := map[string]bool{"9.1.dcm": true, "9.1.5.dcm": true, "9.2.5.dcm": false}
	for name := range files {
		if err := os.WriteFile(filepath.Join(out, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := cat.AddSEG(ctx, catalog.SEG{SOPUID: "9.1", StudyUID: "9", SegSeriesUID: "9.1s", SourceSeriesUID: "9.0", ModelVersion: "1.0.0", OutboxPath: filepath.Join(out, "9.1.dcm")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []catalog.Companion{
		{SOPUID: "9.1.5", SEGSOPUID: "9.1", Kind: pipeline.CompanionSR, StudyUID: "9", SeriesUID: "9.1.5s", OutboxPath: filepath.Join(out, "9.1.5.dcm")},
		{SOPUID: "9.2.5", SEGSOPUID: "9.2", Kind: pipeline.CompanionOverlay, StudyUID: "9", SeriesUID: "9.2.5s", OutboxPath: filepath.Join(out, "9.2.5.dcm")},
	} {
		if err := cat.AddCompanion(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	// A sink that is down keeps the recorded SEG in the outbox.
	_, stop := runDaemon(t, cfg, newFakeProcessor(), &fakeSink{puts: map[string]int{}, down: true})
	stop()
	for name, keep := range files {
		_, err := os.Stat(filepath.Join(out, name))
		if kept := err == nil; kept != keep {
			t.Errorf("%s: kept = %v, want %v", name, kept, keep)
		}
	}
}
