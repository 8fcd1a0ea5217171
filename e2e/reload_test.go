package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// Log messages of a reload (cmd/tmcad/run.go, daemon/reload.go) and of a
// skipped series (daemon/stability.go).
const (
	msgReloadPrefix = "configuration reloaded"
	msgReloadBad    = "reload: configuration invalid; keeping the running one"
	msgSkipped      = "series not selected"
)

// strs returns a field of a log line that holds a list of strings.
func (l logLine) strs(k string) []string {
	var out []string
	if v, ok := l[k].([]any); ok {
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// statusText runs `tmcad status` (text) on the test's configuration.
func (e *env) statusText() string {
	e.t.Helper()
	cmd := exec.Command(tmcadBin, "status", "--config", e.cfgPath, "-n", "50")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("tmcad status: %v\n%s", err, out)
	}
	return string(out)
}

// TestReloadSIGHUP: a SIGHUP while the model loads does not kill the
// daemon. With select.modalities = ["CR"] a CT series is skipped, and
// `tmcad status` says why. The configuration file then changes safe keys
// (select.modalities, reports.wait) and unsafe ones (http.listen,
// queue.workers) and the daemon gets SIGHUP: a waiting CR series is parked
// under the shorter wait, a new CT series is processed, the HTTP server
// stays where it was, the CT series skipped before is reconsidered and
// processed, and the log names the keys that need a restart. An
// invalid file on the next SIGHUP is rejected with the file and key named,
// and the daemon goes on with the configuration it had.
func TestReloadSIGHUP(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	e.cfg.LogLevel = "debug"
	e.cfg.Modalities = []string{"CR"}
	e.cfg.ReportsWait = "60s"
	ctOld, ctNew, crWait, crLate := examples[4], examples[5], examples[0], examples[1]
	if ctOld.Modality != "CT" || ctNew.Modality != "CT" || crWait.Modality != "CR" || crLate.Modality != "CR" {
		t.Fatal("examples/cases.json changed: want CR series first and CT series 5 and 6")
	}
	p := e.startProc()
	// A reload sent while the daemon is still starting (the model loads)
	// is applied once it runs, instead of killing it.
	p.waitLog(60*time.Second, "a first log line", func(logLine) bool { return true })
	p.signal(syscall.SIGHUP)
	p.waitLog(90*time.Second, "daemon ready after an early SIGHUP", msgIs("tmcad ready"))

	e.dropReport(ctOld)
	e.dropSeries(ctOld, 0, 0)
	e.dropSeries(crWait, 0, 0)
	skip := p.waitLog(60*time.Second, "CT series skipped", seriesMsg(msgSkipped, ctOld.SeriesUID))
	if !strings.Contains(skip.str("reason"), `modality "CT"`) {
		t.Errorf("skip reason %q does not name the modality", skip.str("reason"))
	}
	p.waitLog(60*time.Second, "CR series stable", seriesMsg(msgStable, crWait.SeriesUID))
	st := e.status()
	if len(st.Skipped) != 1 || st.Skipped[0].SeriesUID != ctOld.SeriesUID || !strings.Contains(st.Skipped[0].Reason, `modality "CT" not in [CR]`) {
		t.Errorf("tmcad status --json skipped = %+v, want the CT series with its reason", st.Skipped)
	}
	if txt := e.statusText(); !strings.Contains(txt, "skipped (1)") || !strings.Contains(txt, ctOld.SeriesUID) || !strings.Contains(txt, `modality "CT" not in [CR]`) {
		t.Errorf("tmcad status does not list the skipped series and why:\n%s", txt)
	}

	// Safe and unsafe changes, then SIGHUP.
	oldHTTP := e.cfg.HTTPListen
	e.cfg.Modalities = []string{"CR", "CT"}
	e.cfg.ReportsWait = "1s"
	e.cfg.HTTPListen = fmt.Sprintf("127.0.0.1:%d", testpeers.FreePort(t))
	e.cfg.Workers = 2
	e.writeConfig()
	mark := p.mark()
	p.signal(syscall.SIGHUP)
	rl := p.waitLogAfter(mark, 30*time.Second, "reload logged", func(l logLine) bool {
		return strings.HasPrefix(l.str("message"), msgReloadPrefix)
	})
	applied, restart := rl.strs("applied"), rl.strs("need_restart")
	for _, k := range []string{"reports.wait", "select.modalities"} {
		if !slices.Contains(applied, k) {
			t.Errorf("reload applied %v, want %s among them", applied, k)
		}
	}
	for _, k := range []string{"http.listen", "queue.workers"} {
		if !slices.Contains(restart, k) || !strings.Contains(rl.str("message"), k) {
			t.Errorf("reload line %q (need_restart %v) does not name %s as needing a restart", rl.str("message"), restart, k)
		}
		if slices.Contains(applied, k) {
			t.Errorf("reload applied %s, which needs a restart", k)
		}
	}
	if rl.str("level") != "warn" {
		t.Errorf("reload with keys needing a restart logged at %q, want warn", rl.str("level"))
	}
	// The CT series skipped under the old rules is judged again under the
	// new ones, and processed.
	p.waitLogAfter(mark, 90*time.Second, "the skipped CT series stored after the reload", seriesMsg(msgStored, ctOld.SeriesUID))
	// The shorter wait parks the CR series that has no report.
	p.waitLogAfter(mark, 30*time.Second, "CR series parked under the new reports.wait", seriesMsg(msgParked, crWait.SeriesUID))
	// A CT series is now selected and processed.
	e.dropReport(ctNew)
	e.dropSeries(ctNew, 0, 0)
	p.waitLogAfter(mark, 90*time.Second, "new CT series stored", seriesMsg(msgStored, ctNew.SeriesUID))
	// http.listen needs a restart: the server is still where it was.
	e.cfg.HTTPListen = oldHTTP
	if code := e.httpStatus("/healthz"); code != 200 {
		t.Errorf("/healthz on the old http.listen = %d after the reload, want 200", code)
	}

	// An invalid file: rejected, the file and the key named, nothing changed.
	bad := strings.Replace(e.cfg.render(), `wait = "1s"`, `wait = "soon"`, 1)
	if err := os.WriteFile(e.cfgPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	mark = p.mark()
	p.signal(syscall.SIGHUP)
	rej := p.waitLogAfter(mark, 30*time.Second, "invalid configuration rejected", msgIs(msgReloadBad))
	if msg := rej.str("error"); !strings.Contains(msg, "tmcad.toml") || !strings.Contains(msg, "reports.wait") {
		t.Errorf("rejection %q does not name the file and the key", msg)
	}
	if rej.str("level") != "error" {
		t.Errorf("rejection logged at %q, want error", rej.str("level"))
	}
	// Still running on the reloaded configuration: a CR series without a
	// report is parked after reports.wait = 1s.
	e.dropSeries(crLate, 0, 0)
	p.waitLogAfter(mark, 30*time.Second, "CR series parked after the rejected reload", seriesMsg(msgParked, crLate.SeriesUID))
	if len(p.matching(func(l logLine) bool { return strings.HasPrefix(l.str("message"), msgReloadPrefix) })) != 2 {
		t.Error("want two reloads applied (the early one and the valid one), not the invalid one")
	}
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), []exampleSeries{ctOld, ctNew})
	p.stop()
	e.checkNoPHI([]exampleSeries{ctOld, ctNew, crWait, crLate})
	t.Logf("SIGHUP reloads checked in %.1fs", time.Since(start).Seconds())
}
