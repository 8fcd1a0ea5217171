package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// Log messages the tests wait for (daemon/*.go).
const (
	msgStable   = "series stable"
	msgSEGMade  = "SEG made; waiting in the outbox for export"
	msgStored   = "SEG stored"
	msgParked   = "no report within reports.wait; series parked as awaiting_report"
	msgSweep    = "scheduled reprocessing done"
	msgRescued  = "jobs left running by an earlier crash are queued again"
	msgExportKO = "storing in the archive failed; the SEG stays in the outbox and is tried again"
	msgReport   = "report catalogued"
	msgWindow   = "export window open"
)

// seriesMsg matches a line with this message about this series.
func seriesMsg(msg, seriesUID string) func(logLine) bool {
	return func(l logLine) bool { return l.str("message") == msg && l.str("series_uid") == seriesUID }
}

// reportFirst says which example series get their report before their
// images (the others get it once the series is stable and waiting).
func reportFirst(i int) bool { return i%2 == 0 }

// dropAllWithReports sends every example series with send, the reports of
// half of them before the images and of the other half after the daemon
// said the series is stable (so that it waits for its report).
func dropAllWithReports(e *env, p *daemonProc, send func(exampleSeries)) {
	e.t.Helper()
	for i, s := range examples {
		if reportFirst(i) {
			e.dropReport(s)
		}
		send(s)
		time.Sleep(300 * time.Millisecond)
	}
	for i, s := range examples {
		if !reportFirst(i) {
			p.waitLog(90*time.Second, "series "+s.SeriesUID+" stable", seriesMsg(msgStable, s.SeriesUID))
			e.dropReport(s)
		}
	}
}

// statusJSON runs `tmcad status --json` on the test's configuration.
type statusJSON struct {
	Queue          string
	Jobs, Exports  map[string]int
	Series         map[string]int
	Outbox         int
	AwaitingReport []struct{ SeriesUID string }
	Skipped        []struct{ SeriesUID, Reason string }
	LastErrors     []struct{ SeriesUID, Reason, Error string }
	LastSEGs       []struct{ SOPUID, SourceSeriesUID, ModelVersion string }
	LastDone       []struct{ SeriesUID, State, Reason string }
}

func (e *env) status() statusJSON {
	e.t.Helper()
	cmd := exec.Command(tmcadBin, "status", "--config", e.cfgPath, "--json", "-n", "50")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("tmcad status: %v\n%s", err, out)
	}
	var s statusJSON
	if err := json.Unmarshal(out, &s); err != nil {
		e.t.Fatalf("tmcad status --json: %v\n%s", err, out)
	}
	return s
}

// checkMetrics compares /metrics samples with what the test did.
func (e *env) checkMetrics(want map[string]float64) {
	e.t.Helper()
	got := e.scrape()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			e.t.Errorf("/metrics has no sample %s", k)
			continue
		}
		if g != v {
			e.t.Errorf("/metrics %s = %v, want %v", k, g, v)
		}
	}
	for k, v := range got {
		if strings.HasPrefix(k, "tmcad_errors_total") && v != 0 && want[k] == 0 {
			e.t.Errorf("/metrics %s = %v, want no errors", k, v)
		}
	}
}

// fileByFile is the basic flow: the example studies copied into the drop
// folder file by file with pauses (each file written in two halves),
// reports before for some and after for others; every series gets exactly
// one SEG, inputs are kept, /metrics and `tmcad status` agree with what
// happened, SIGTERM stops the daemon cleanly and its log has no PHI.
func fileByFile(t *testing.T, e *env) {
	start := time.Now()
	p := e.start()
	if code := e.httpStatus("/readyz"); code != 200 {
		t.Errorf("/readyz = %d once ready, want 200", code)
	}
	if code := e.httpStatus("/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	dropAllWithReports(e, p, func(s exampleSeries) { e.dropSeries(s, 30*time.Millisecond, 60*time.Millisecond) })
	e.waitArchive(90*time.Second, len(examples))
	// Two rescans later nothing more has arrived: no second SEG, no
	// second job from a file seen again.
	time.Sleep(2500 * time.Millisecond)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	e.checkInputsKept(examples)
	if n := countFiles(e.cfg.StateDir+"/quarantine", ""); n != 0 {
		t.Errorf("%d files in quarantine, want none", n)
	}
	files := 0
	for _, s := range examples {
		files += len(s.Files)
	}
	n := float64(len(examples))
	e.checkMetrics(map[string]float64{
		`tmcad_files_seen_total{kind="dicom"}`:      float64(files),
		`tmcad_files_seen_total{kind="report"}`:     n,
		`tmcad_files_seen_total{kind="duplicate"}`:  0,
		`tmcad_files_seen_total{kind="conflict"}`:   0,
		`tmcad_files_seen_total{kind="unreadable"}`: 0,
		`tmcad_series_ready_total`:                  n,
		`tmcad_series_parked_total`:                 0,
		`tmcad_segs_stored_total`:                   n,
		`tmcad_inference_seconds_count`:             n,
		`tmcad_jobs{state="completed"}`:             n,
		`tmcad_jobs{state="running"}`:               0,
		`tmcad_jobs{state="retryable"}`:             0,
		`tmcad_jobs{state="discarded"}`:             0,
	})
	st := e.status()
	if st.Series["done"] != len(examples) || len(st.Series) != 1 || st.Outbox != 0 || st.Jobs["completed"] != len(examples) || len(st.LastSEGs) != len(examples) {
		t.Errorf("tmcad status: series %v, jobs %v, outbox %d, %d last SEGs; want %d done, %d completed, outbox 0",
			st.Series, st.Jobs, st.Outbox, len(st.LastSEGs), len(examples), len(examples))
	}
	p.stop()
	e.checkNoPHI(examples)
	t.Logf("%d series, %d files: all SEGs stored, daemon stopped %.1fs after start", len(examples), files, time.Since(start).Seconds())
}

// TestFileByFile: the file-by-file flow on the embedded SQLite queue.
func TestFileByFile(t *testing.T) {
	fileByFile(t, newEnv(t))
}

// TestFileByFilePostgres: the same flow with the queue and catalog in a
// throwaway PostgreSQL 15 server (queue.database_url).
func TestFileByFilePostgres(t *testing.T) {
	url := startPostgres(t)
	e := newEnv(t)
	e.cfg.DatabaseURL = url
	fileByFile(t, e)
	if st := e.status(); st.Queue != "postgres" {
		t.Errorf("tmcad status says queue %q, want postgres", st.Queue)
	}
	// The state folder holds no queue database: it is in PostgreSQL.
	if _, err := os.Stat(filepath.Join(e.cfg.StateDir, "tmcad.db")); err == nil {
		t.Error("state_dir/tmcad.db exists although queue.database_url is set")
	}
}

// TestStoreSCP: a PACS sends the studies with dcmtk's storescu to a
// storescp that writes into the drop folder (files appear under names of
// storescp's choosing, written in place and then closed).
func TestStoreSCP(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	p := e.start()
	port := startStoreSCP(t, e.cfg.DICOMDir)
	dropAllWithReports(e, p, func(s exampleSeries) { storeSCU(t, port, s.paths()...) })
	e.waitArchive(90*time.Second, len(examples))
	time.Sleep(2500 * time.Millisecond)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	files := 0
	for _, s := range examples {
		files += len(s.Files)
	}
	if got := countFiles(e.cfg.DICOMDir, ".dcm"); got != files {
		t.Errorf("%d files in the drop folder, want the %d storescp received", got, files)
	}
	e.checkMetrics(map[string]float64{
		`tmcad_files_seen_total{kind="dicom"}`:      float64(files),
		`tmcad_files_seen_total{kind="unreadable"}`: 0,
		`tmcad_segs_stored_total`:                   float64(len(examples)),
	})
	p.stop()
	t.Logf("storescp flow done in %.1fs", time.Since(start).Seconds())
}

// TestKilledWhileRunning: the daemon is killed with SIGKILL while jobs
// run (right after its first SEG is made, with one worker and the other
// series still queued), started again, killed again at its first SEG,
// and started a third time: every series still gets exactly one SEG and
// no input is lost.
func TestKilledWhileRunning(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	p1 := e.start()
	for _, s := range examples {
		e.dropReport(s)
		e.dropSeries(s, 0, 0)
	}
	p1.waitLog(90*time.Second, "first SEG made", msgIs(msgSEGMade))
	p1.kill()
	stored1, outbox1 := countFiles(e.cfg.ArchiveDir, ".dcm"), e.outboxSEGs()
	t.Logf("killed #1: %d SEG(s) stored, %d in the outbox", stored1, outbox1)
	if stored1 >= len(examples) {
		t.Fatalf("all %d SEGs were stored before the kill: the crash did not hit running jobs", stored1)
	}

	p2 := e.start()
	p2.waitLog(90*time.Second, "a SEG made or stored after the restart", func(l logLine) bool {
		m := l.str("message")
		return m == msgSEGMade || m == msgStored
	})
	p2.kill()
	t.Logf("killed #2: %d SEG(s) stored, %d in the outbox; restart #1 rescued running jobs: %v",
		countFiles(e.cfg.ArchiveDir, ".dcm"), e.outboxSEGs(), len(p2.matching(msgIs(msgRescued))) > 0)

	p3 := e.start()
	e.waitArchive(90*time.Second, len(examples))
	waitFor(t, 60*time.Second, "outbox empty", func() bool { return e.outboxSEGs() == 0 })
	time.Sleep(2500 * time.Millisecond)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	e.checkInputsKept(examples)
	if n := countFiles(filepath.Join(e.cfg.StateDir, "quarantine"), ""); n != 0 {
		t.Errorf("%d files in quarantine after the crashes, want none", n)
	}
	st := e.status()
	if st.Series["done"] != len(examples) || st.Outbox != 0 {
		t.Errorf("tmcad status after the crashes: series %v, outbox %d; want all %d done", st.Series, st.Outbox, len(examples))
	}
	p3.stop()
	t.Logf("two SIGKILLs survived in %.1fs", time.Since(start).Seconds())
}

// TestSecondDaemonRefused: a second `tmcad run` on the same state_dir
// exits with an error naming the lock and the first daemon's pid; the
// first keeps running; once it stops, a new one starts on the folder.
func TestSecondDaemonRefused(t *testing.T) {
	e := newEnv(t)
	p := e.start()
	first := e.cfg.HTTPListen
	e.cfg.HTTPListen = fmt.Sprintf("127.0.0.1:%d", testpeers.FreePort(t)) // so that only the lock can stop it
	q := e.startProc()
	out, err := q.exited(60 * time.Second)
	if err == nil {
		t.Fatalf("second tmcad run on the same state_dir exited 0:\n%s", out)
	}
	pid := fmt.Sprintf("pid %d", p.cmd.Process.Pid)
	if !strings.Contains(out, "state_dir is in use by another tmcad run") || !strings.Contains(out, "tmcad.lock") || !strings.Contains(out, pid) {
		t.Errorf("second daemon's error does not say the state_dir is locked by %s:\n%s", pid, out)
	}
	e.cfg.HTTPListen = first
	if code := e.httpStatus("/readyz"); code != 200 {
		t.Errorf("first daemon /readyz = %d after the second was refused, want 200", code)
	}
	p.stop()
	e.start().stop()
}

// TestStoppedWhileRunning: SIGTERM while jobs run (right after the first
// SEG is made) drains and exits 0; started again on the same state_dir the
// daemon finishes the rest, every series with exactly one SEG.
func TestStoppedWhileRunning(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	p1 := e.start()
	for _, s := range examples {
		e.dropReport(s)
		e.dropSeries(s, 0, 0)
	}
	p1.waitLog(90*time.Second, "first SEG made", msgIs(msgSEGMade))
	p1.stop()
	if code := e.httpStatus("/readyz"); code != 0 {
		t.Errorf("/readyz answered %d after the daemon stopped", code)
	}
	t.Logf("stopped: %d SEG(s) stored, %d in the outbox", countFiles(e.cfg.ArchiveDir, ".dcm"), e.outboxSEGs())
	p2 := e.start()
	e.waitArchive(90*time.Second, len(examples))
	waitFor(t, 60*time.Second, "outbox empty", func() bool { return e.outboxSEGs() == 0 })
	time.Sleep(2500 * time.Millisecond)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	e.checkInputsKept(examples)
	if len(p2.matching(msgIs(msgRescued))) != 0 {
		t.Error("after a clean stop the restart found jobs left running")
	}
	p2.stop()
	t.Logf("stop and restart in %.1fs", time.Since(start).Seconds())
}
