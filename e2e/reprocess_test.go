package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// msgFailed is the log line of a job that failed for good (daemon/worker.go).
const msgFailed = "job failed for good; inputs copied to quarantine"

// reprocess runs `tmcad reprocess` with args on the test's configuration
// and returns its output.
func (e *env) reprocess(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(tmcadBin, append([]string{"reprocess", "--config", e.cfgPath}, args...)...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("tmcad reprocess %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wantQueued checks the "N series queued" line of `tmcad reprocess`.
func wantQueued(t *testing.T, out string, n int, version string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(\d+) series queued for model \S+ (\S+)$`).FindStringSubmatch(out)
	if m == nil || m[1] != strconv.Itoa(n) || m[2] != version {
		t.Errorf("tmcad reprocess said %q, want %d series queued for model version %s", strings.TrimSpace(out), n, version)
	}
}

// storedCount counts the "SEG stored" lines of one series.
func storedCount(p *daemonProc, series string) int {
	return len(p.matching(seriesMsg(msgStored, series)))
}

// TestReprocessRunning: `tmcad reprocess` against a running daemon.
// --series of a series already done with the same model and report runs it
// again and leaves exactly one SEG (deterministic UIDs, identical content);
// --since selects only the series first seen after the time; --study of a
// parked series queues nothing until its report has arrived, then queues
// it. `tmcad status` (text and JSON) shows the counts, the parked series
// and the last SEGs along the way.
func TestReprocessRunning(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	e.cfg.ReportsWait = "1s"
	a, b, c := examples[0], examples[1], examples[2]
	p := e.start()
	e.dropReport(a)
	e.dropSeries(a, 0, 0)
	p.waitLog(60*time.Second, "first series stored", seriesMsg(msgStored, a.SeriesUID))
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	e.dropReport(b)
	e.dropSeries(b, 0, 0)
	e.dropSeries(c, 0, 0)
	p.waitLog(60*time.Second, "second series stored", seriesMsg(msgStored, b.SeriesUID))
	p.waitLog(60*time.Second, "third series parked", seriesMsg(msgParked, c.SeriesUID))

	st := e.status()
	if st.Series["done"] != 2 || st.Series["awaiting_report"] != 1 || st.Jobs["completed"] != 2 || len(st.LastSEGs) != 2 ||
		len(st.AwaitingReport) != 1 || st.AwaitingReport[0].SeriesUID != c.SeriesUID {
		t.Errorf("tmcad status --json: series %v, jobs %v, %d last SEGs, awaiting %v; want 2 done, 1 awaiting (the third), 2 completed, 2 SEGs",
			st.Series, st.Jobs, len(st.LastSEGs), st.AwaitingReport)
	}
	txt := e.statusText()
	for _, want := range []string{"awaiting report (1)", c.SeriesUID, "last SEGs (2)", a.SeriesUID, b.SeriesUID, "done=2", "awaiting_report=1", "completed=2"} {
		if !strings.Contains(txt, want) {
			t.Errorf("tmcad status does not show %q:\n%s", want, txt)
		}
	}

	// --series: a done series again, same model and report.
	wantQueued(t, e.reprocess("--series", a.SeriesUID), 1, shippedVersion)
	waitFor(t, 60*time.Second, "the series stored a second time", func() bool { return storedCount(p, a.SeriesUID) == 2 })
	// --since: only the series first seen after the time (the parked one
	// has no report yet and is left alone).
	wantQueued(t, e.reprocess("--since", since.Format(time.RFC3339Nano)), 1, shippedVersion)
	waitFor(t, 60*time.Second, "the later series stored a second time", func() bool { return storedCount(p, b.SeriesUID) == 2 })
	if storedCount(p, a.SeriesUID) != 2 {
		t.Errorf("--since %s ran the earlier series again", since.Format(time.RFC3339Nano))
	}
	// --study of the parked series: nothing without its report.
	wantQueued(t, e.reprocess("--study", c.StudyUID), 0, shippedVersion)
	mark := p.mark()
	e.dropReport(c)
	p.waitLogAfter(mark, 30*time.Second, "the late report catalogued", msgIs(msgReport))
	wantQueued(t, e.reprocess("--study", c.StudyUID), 1, shippedVersion)
	p.waitLog(60*time.Second, "parked series stored", seriesMsg(msgStored, c.SeriesUID))
	time.Sleep(1500 * time.Millisecond) // a rescan later: nothing more
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), []exampleSeries{a, b, c})
	st = e.status()
	if st.Series["done"] != 3 || len(st.Series) != 1 || st.Jobs["completed"] != 5 || st.Outbox != 0 || len(st.LastSEGs) != 3 || len(st.AwaitingReport) != 0 {
		t.Errorf("tmcad status --json at the end: series %v, jobs %v, outbox %d, %d last SEGs, awaiting %v; want 3 done, 5 completed jobs, 3 SEGs",
			st.Series, st.Jobs, st.Outbox, len(st.LastSEGs), st.AwaitingReport)
	}
	p.stop()
	t.Logf("reprocess against a running daemon checked in %.1fs", time.Since(start).Seconds())
}

// newerModel makes a copy of the shipped model with another version in
// its manifest (the files themselves are linked, not copied).
func newerModel(t *testing.T, version string) string {
	t.Helper()
	src := filepath.Join(repoRoot, "models", "tmca-cxr-compact")
	dst := filepath.Join(t.TempDir(), "tmca-cxr-compact-"+version)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if d.Name() == "manifest.json" {
			continue
		}
		if err := os.Symlink(filepath.Join(src, d.Name()), filepath.Join(dst, d.Name())); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["version"] = version
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestReprocessStopped: `tmcad reprocess --failed` and `--model-older`
// while the daemon is stopped. With limits.max_frames = 10 the CT series
// (20 frames) fails for good: its inputs are quarantined under a safe
// folder name with reason.txt, and `tmcad status` lists the error. With
// the daemon stopped the limit is raised and a newer model version
// configured; --failed queues the CT series and --model-older the CR
// series done with the shipped version. Started again, the daemon processes both: one
// SEG for the CT series, a second (new model, new UIDs) for the CR one.
func TestReprocessStopped(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	e.cfg.MaxFrames = 10
	ct, cr := examples[4], examples[0]
	p := e.start()
	for _, s := range []exampleSeries{ct, cr} {
		e.dropReport(s)
		e.dropSeries(s, 0, 0)
	}
	p.waitLog(90*time.Second, "CT series failed for good", seriesMsg(msgFailed, ct.SeriesUID))
	p.waitLog(90*time.Second, "CR series stored", seriesMsg(msgStored, cr.SeriesUID))
	p.stop()

	// Quarantine: one folder with a safe name, the 20 inputs, the report
	// and reason.txt naming the reason.
	qdir := filepath.Join(e.cfg.StateDir, "quarantine")
	ents, err := os.ReadDir(qdir)
	if err != nil || len(ents) != 1 || !ents[0].IsDir() {
		t.Fatalf("quarantine holds %d entries (%v), want one folder", len(ents), err)
	}
	if name := ents[0].Name(); !regexp.MustCompile(`^[0-9A-Za-z._-]+$`).MatchString(name) || !strings.Contains(name, ct.SeriesUID) {
		t.Errorf("quarantine folder %q: want a safe name with the series UID", name)
	}
	reason, err := os.ReadFile(filepath.Join(qdir, ents[0].Name(), "reason.txt"))
	if err != nil || !strings.Contains(string(reason), "reason: limits") {
		t.Errorf("reason.txt (%v) does not give the reason:\n%s", err, reason)
	}
	if n := countFiles(filepath.Join(qdir, ents[0].Name()), ".dcm"); n != len(ct.Files) {
		t.Errorf("%d DICOM files quarantined, want the series' %d", n, len(ct.Files))
	}
	st := e.status()
	if len(st.LastErrors) != 1 || st.LastErrors[0].SeriesUID != ct.SeriesUID || st.LastErrors[0].Reason != "limits" || !strings.Contains(st.LastErrors[0].Error, "frames") {
		t.Errorf("tmcad status --json last errors = %+v, want the CT series, reason limits", st.LastErrors)
	}
	if txt := e.statusText(); !strings.Contains(txt, "last errors (1)") || !strings.Contains(txt, ct.SeriesUID) || !strings.Contains(txt, "limits") {
		t.Errorf("tmcad status does not show the failed series:\n%s", txt)
	}

	// The operator raises the limit and installs a newer model, then
	// re-queues with the daemon stopped.
	e.cfg.MaxFrames = 0
	newer := shippedVersion + ".1"
	e.cfg.ModelDir = newerModel(t, newer)
	e.writeConfig()
	wantQueued(t, e.reprocess("--failed"), 1, newer)
	wantQueued(t, e.reprocess("--model-older"), 1, newer)
	if st := e.status(); st.Jobs["available"] != 2 {
		t.Errorf("tmcad status --json jobs %v after reprocess with the daemon stopped, want 2 available", st.Jobs)
	}
	p2 := e.start()
	p2.waitLog(90*time.Second, "CT series stored", seriesMsg(msgStored, ct.SeriesUID))
	p2.waitLog(90*time.Second, "CR series stored again", seriesMsg(msgStored, cr.SeriesUID))
	time.Sleep(1500 * time.Millisecond)
	segs := archiveSEGs(t, e.cfg.ArchiveDir)
	per := map[string]int{}
	for _, s := range segs {
		if len(s.ReferencedSeries) == 1 {
			per[s.ReferencedSeries[0]]++
		}
	}
	if len(segs) != 3 || per[ct.SeriesUID] != 1 || per[cr.SeriesUID] != 2 {
		t.Errorf("archive: %d SEGs, %d for the CT series and %d for the CR series; want 1 and 2 (one per model version)", len(segs), per[ct.SeriesUID], per[cr.SeriesUID])
	}
	st = e.status()
	versions := map[string]int{}
	for _, s := range st.LastSEGs {
		versions[s.ModelVersion]++
	}
	if st.Series["done"] != 2 || len(st.Series) != 1 || len(st.LastErrors) != 0 || versions[newer] != 2 || versions[shippedVersion] != 1 {
		t.Errorf("tmcad status --json: series %v, last errors %+v, SEG model versions %v; want 2 done, no errors, 2 SEGs of the newer model and 1 of the shipped one",
			st.Series, st.LastErrors, versions)
	}
	p2.stop()
	t.Logf("reprocess --failed and --model-older with the daemon stopped checked in %.1fs", time.Since(start).Seconds())
}
