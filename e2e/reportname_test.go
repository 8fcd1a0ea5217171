package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportNamesNotLogged: report files are named <AccessionNumber>.txt,
// so their names are PHI. Through a normal series, a series whose report
// file vanished before its job ran, and an unreadable report file named
// after a canary accession number, neither the daemon's log, nor `tmcad
// status` (text and JSON), nor the queue database holds an accession
// number; reports are named sha256:….
func TestReportNamesNotLogged(t *testing.T) {
	const canary = "A9999999917"
	e := newEnv(t)
	e.cfg.Modalities = []string{"CR"}
	var cr []exampleSeries
	for _, s := range examples {
		if s.Modality == "CR" {
			cr = append(cr, s)
		}
	}
	ok, gone := cr[0], cr[1]
	p := e.start()
	if err := os.WriteFile(filepath.Join(e.cfg.ReportsDir, canary+".json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.dropReport(ok)
	e.dropReport(gone)
	waitFor(t, 30*time.Second, "two reports catalogued", func() bool { return len(p.matching(msgIs("report catalogued"))) == 2 })
	if err := os.Remove(filepath.Join(e.cfg.ReportsDir, filepath.Base(gone.reportPath()))); err != nil {
		t.Fatal(err)
	}
	e.dropSeries(ok, 0, 0)
	e.dropSeries(gone, 0, 0)
	e.waitArchive(90*time.Second, 1)
	p.waitLog(60*time.Second, "the job without its report file failed", func(l logLine) bool {
		return l.str("message") == "job failed; it will be retried" && l.str("series_uid") == gone.SeriesUID
	})
	p.waitLog(30*time.Second, "the canary file quarantined", msgIs("file quarantined"))
	for _, l := range p.matching(msgIs("report catalogued")) {
		if r := l.str("report"); !strings.HasPrefix(r, "sha256:") || len(r) != len("sha256:")+16 {
			t.Errorf("report catalogued as %q, want sha256: and 16 hex digits", r)
		}
	}
	text := e.statusText()
	js, err := json.Marshal(e.status())
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
	var db strings.Builder
	for _, name := range []string{"tmcad.db", "tmcad.db-wal"} {
		b, err := os.ReadFile(filepath.Join(e.cfg.StateDir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		db.Write(b)
	}
	for where, s := range map[string]string{"log": e.allLogs(), "status": text, "status --json": string(js), "queue database": db.String()} {
		for _, acc := range []string{canary, ok.Accession, gone.Accession} {
			if strings.Contains(s, acc) {
				t.Errorf("accession number %s in the %s", acc, where)
			}
		}
	}
	// The report file is still found by its key: the first series was
	// segmented with its report's guide text.
	made := p.matching(func(l logLine) bool {
		return l.str("message") == "SEG made; waiting in the outbox for export" && l.str("series_uid") == ok.SeriesUID
	})
	if len(made) != 1 || made[0].str("guide") == "" {
		t.Errorf("series %s: SEG made lines %v, want one guided by its report", ok.SeriesUID, made)
	}
}
