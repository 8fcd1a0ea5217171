package e2e

import (
	"fmt"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// TestDICOMwebArchiveOutage: the archive is Orthanc over DICOMweb. It is
// stopped before the studies arrive, so every SEG fails to store and
// waits in the outbox; once Orthanc is started again every SEG arrives,
// exactly once per series.
func TestDICOMwebArchiveOutage(t *testing.T) {
	start := time.Now()
	o := testpeers.StartOrthanc(t)
	e := newEnv(t)
	e.cfg.ArchiveKind = "dicomweb"
	e.cfg.ArchiveURL = o.Base + "/dicom-web"
	e.cfg.ArchiveUser, e.cfg.ArchivePassword = o.User, o.Pass
	e.cfg.Workers = 2
	p := e.start()
	o.Stop()
	for _, s := range examples {
		e.dropReport(s)
		e.dropSeries(s, 0, 0)
	}
	waitFor(t, 90*time.Second, "every SEG made and waiting in the outbox", func() bool { return e.outboxSEGs() == len(examples) })
	// Every SEG has failed to store at least once: the archive was down
	// for all of them.
	waitFor(t, 60*time.Second, "a failed store for every series", func() bool {
		failed := map[string]bool{}
		for _, l := range p.matching(msgIs(msgExportKO)) {
			failed[l.str("series_uid")] = true
		}
		return len(failed) == len(examples)
	})
	// And some SEG was retried while it was still down.
	waitFor(t, 60*time.Second, "a retry while the archive is down", func() bool {
		tries := map[string]int{}
		for _, l := range p.matching(msgIs(msgExportKO)) {
			tries[l.str("series_uid")]++
			if tries[l.str("series_uid")] > 1 {
				return true
			}
		}
		return false
	})
	down := time.Since(start)
	o.Start()
	waitFor(t, 120*time.Second, "every SEG in Orthanc", func() bool {
		for _, s := range examples {
			if len(segSeries(t, o, s.StudyUID)) == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, 60*time.Second, "outbox empty", func() bool { return e.outboxSEGs() == 0 })
	for _, s := range examples {
		segs := segSeries(t, o, s.StudyUID)
		n := 0
		for _, sops := range segs {
			n += len(sops)
		}
		if len(segs) != 1 || n != 1 {
			t.Errorf("study %s: %d SEG series with %d instances in Orthanc, want exactly 1 SEG", s.StudyUID, len(segs), n)
		}
	}
	var all []string
	o.Get("/instances", &all)
	if len(all) != len(examples) {
		t.Errorf("Orthanc holds %d instances, want the %d SEGs", len(all), len(examples))
	}
	m := e.scrape()
	if got := m[`tmcad_segs_stored_total`]; got != float64(len(examples)) {
		t.Errorf("tmcad_segs_stored_total = %v, want %d", got, len(examples))
	}
	if got := m[`tmcad_errors_total{reason="archive"}`]; got < float64(len(examples)) {
		t.Errorf(`tmcad_errors_total{reason="archive"} = %v, want at least %d (one per SEG while Orthanc was down)`, got, len(examples))
	}
	e.checkInputsKept(examples)
	p.stop()
	t.Logf("archive down for the first %.1fs; all SEGs in Orthanc %.1fs after start", down.Seconds(), time.Since(start).Seconds())
}

// nextOpening picks an "@every P" export schedule whose next opening is
// 20–28 s away and whose last window (of length window) has closed: the
// daemon's @every is aligned to multiples of P since the Unix epoch
// (daemon.parseSchedule), so the test knows when the window opens
// without waiting for a wall-clock minute.
func nextOpening(t *testing.T, window time.Duration) (period time.Duration, open time.Time) {
	t.Helper()
	for tries := 0; tries < 30; tries++ {
		now := time.Now()
		for p := 40 * time.Second; p <= 240*time.Second; p += time.Second {
			next := time.Unix(0, (now.UnixNano()/int64(p)+1)*int64(p))
			if lead := next.Sub(now); lead >= 20*time.Second && lead <= 28*time.Second && now.Sub(next.Add(-p)) > window+2*time.Second {
				return p, next
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatal("no @every period found with its next opening 20-28s away")
	return 0, time.Time{}
}

// TestExportWindow: with schedule.export = "@every P" and a short
// export_window, SEGs wait in the outbox and nothing reaches the archive
// before the window opens; once it opens everything is sent within it.
func TestExportWindow(t *testing.T) {
	start := time.Now()
	const window = 8 * time.Second
	e := newEnv(t)
	period, open := nextOpening(t, window)
	e.cfg.Export = fmt.Sprintf("@every %ds", int(period/time.Second))
	e.cfg.ExportWindow = window.String()
	p := e.start()
	for _, s := range examples {
		e.dropReport(s)
		e.dropSeries(s, 0, 0)
	}
	// Until the window opens: SEGs pile up in the outbox, none is stored.
	maxOutbox := 0
	for time.Until(open) > 200*time.Millisecond {
		if n := countFiles(e.cfg.ArchiveDir, ".dcm"); n != 0 {
			t.Fatalf("%d SEG(s) in the archive %.1fs before the export window opens", n, time.Until(open).Seconds())
		}
		maxOutbox = max(maxOutbox, e.outboxSEGs())
		time.Sleep(100 * time.Millisecond)
	}
	if maxOutbox == 0 {
		t.Fatal("no SEG waited in the outbox before the window opened")
	}
	t.Logf("before the window: %d SEG(s) waiting in the outbox, archive empty", maxOutbox)
	// Within the window: everything arrives. The bound is the window's
	// end (plus the polling step), which the daemon must keep, not a
	// speed the test expects.
	closes := open.Add(window)
	for countFiles(e.cfg.ArchiveDir, ".dcm") < len(examples) || e.outboxSEGs() > 0 {
		if time.Now().After(closes.Add(time.Second)) {
			t.Fatalf("window closed with %d of %d SEGs in the archive and %d in the outbox",
				countFiles(e.cfg.ArchiveDir, ".dcm"), len(examples), e.outboxSEGs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(p.matching(msgIs(msgWindow))) == 0 {
		t.Error("the daemon did not log the window opening")
	}
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	for _, l := range p.matching(msgIs(msgStored)) {
		at, err := time.Parse(time.RFC3339, l.str("time"))
		if err != nil {
			t.Fatalf("log time %q: %v", l.str("time"), err)
		}
		// Log times have whole seconds.
		if at.Before(open.Truncate(time.Second)) || at.After(closes) {
			t.Errorf("SEG stored at %s, outside the window %s–%s", at.Format(time.TimeOnly), open.Format(time.TimeOnly), closes.Format(time.TimeOnly))
		}
	}
	p.stop()
	t.Logf("@every %v window %v: all %d SEGs sent in the window, %.1fs in all", period, window, len(examples), time.Since(start).Seconds())
}

// TestNightlyReprocessLateReport: a series whose report does not come
// within reports.wait is parked; the scheduled reprocess (here
// "@every 3s") leaves it parked while the report is missing and queues it
// once the report has arrived; it then gets its one SEG.
func TestNightlyReprocessLateReport(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	e.cfg.ReportsWait = "1s"
	e.cfg.Reprocess = "@every 3s"
	onTime, late := examples[0], examples[1]
	p := e.start()
	e.dropReport(onTime)
	e.dropSeries(onTime, 0, 0)
	e.dropSeries(late, 0, 0)
	p.waitLog(60*time.Second, "late series parked", seriesMsg(msgParked, late.SeriesUID))
	e.waitArchive(60*time.Second, 1)
	// A sweep while the report is still missing leaves it parked.
	mark := p.mark()
	p.waitLogAfter(mark, 30*time.Second, "a reprocess sweep", msgIs(msgSweep))
	if n := countFiles(e.cfg.ArchiveDir, ".dcm"); n != 1 {
		t.Fatalf("%d SEGs in the archive with one report missing, want 1", n)
	}
	if st := e.status(); len(st.AwaitingReport) != 1 || st.AwaitingReport[0].SeriesUID != late.SeriesUID {
		t.Errorf("tmcad status: awaiting report %v, want the late series", st.AwaitingReport)
	}
	mark = p.mark()
	e.dropReport(late)
	p.waitLogAfter(mark, 30*time.Second, "late report catalogued", msgIs(msgReport))
	p.waitLogAfter(mark, 30*time.Second, "a sweep queuing the late series", func(l logLine) bool {
		q, _ := l["queued"].(float64)
		return l.str("message") == msgSweep && q == 1
	})
	e.waitArchive(60*time.Second, 2)
	time.Sleep(2 * time.Second)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), []exampleSeries{onTime, late})
	e.checkMetrics(map[string]float64{
		`tmcad_series_ready_total`:  2,
		`tmcad_series_parked_total`: 1,
		`tmcad_segs_stored_total`:   2,
	})
	p.stop()
	t.Logf("late report picked up by the scheduled reprocess; %.1fs in all", time.Since(start).Seconds())
}
