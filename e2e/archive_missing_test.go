package e2e

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// msgArchiveMissing is the daemon's line when the archive folder is gone.
const msgArchiveMissing = "archive folder missing; the SEG stays in the outbox"

// readyzBody returns /readyz's status code and body.
func (e *env) readyzBody() (int, string) {
	resp, err := http.Get("http://" + e.cfg.HTTPListen + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFilesystemArchiveMissing: tmcad run refuses to start without its
// archive folder; once running, the folder goes away (an unmounted share)
// while studies arrive with retention.inputs = "delete". Nothing is
// written in its place, the SEGs wait in the outbox, the inputs stay,
// /readyz says why; when the folder is back every SEG is delivered once.
func TestFilesystemArchiveMissing(t *testing.T) {
	e := newEnv(t)
	e.cfg.Retention = "delete"
	away := e.cfg.ArchiveDir + ".unmounted"
	if err := os.Rename(e.cfg.ArchiveDir, away); err != nil {
		t.Fatal(err)
	}
	out, err := e.startProc().exited(90 * time.Second)
	if err == nil || !strings.Contains(out, "archive.dir") || !strings.Contains(out, "does not exist") {
		t.Fatalf("tmcad run without its archive folder: %v, want an error naming archive.dir:\n%s", err, out)
	}
	if _, err := os.Stat(e.cfg.ArchiveDir); !os.IsNotExist(err) {
		t.Fatalf("tmcad run created the archive folder at start (%v)", err)
	}
	if err := os.Rename(away, e.cfg.ArchiveDir); err != nil {
		t.Fatal(err)
	}

	p := e.start()
	if err := os.Rename(e.cfg.ArchiveDir, away); err != nil {
		t.Fatal(err)
	}
	for _, s := range examples {
		e.dropReport(s)
		e.dropSeries(s, 0, 0)
	}
	waitFor(t, 90*time.Second, "every SEG made and waiting in the outbox", func() bool { return e.outboxSEGs() == len(examples) })
	waitFor(t, 60*time.Second, "a missing-archive line for every series", func() bool {
		seen := map[string]bool{}
		for _, l := range p.matching(msgIs(msgArchiveMissing)) {
			seen[l.str("series_uid")] = true
		}
		return len(seen) == len(examples)
	})
	code, body := e.readyzBody()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "archive folder is missing") {
		t.Errorf("/readyz while the archive folder is missing: %d %q, want 503 saying why", code, body)
	}
	// Retried for a while, still nothing written anywhere.
	time.Sleep(3 * time.Second)
	if _, err := os.Stat(e.cfg.ArchiveDir); !os.IsNotExist(err) {
		t.Fatalf("the archive folder was re-created while it was missing (%v)", err)
	}
	if n := countFiles(away, ""); n != 0 {
		t.Fatalf("%d file(s) in the unmounted archive folder", n)
	}
	if n := len(p.matching(msgIs(msgStored))); n != 0 {
		t.Fatalf("%d SEG(s) recorded stored while the archive folder was missing", n)
	}
	e.checkInputsKept(examples)

	if err := os.Rename(away, e.cfg.ArchiveDir); err != nil {
		t.Fatal(err)
	}
	e.waitArchive(120*time.Second, len(examples))
	waitFor(t, 60*time.Second, "outbox empty", func() bool { return e.outboxSEGs() == 0 })
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	waitFor(t, 30*time.Second, "/readyz ready again", func() bool {
		code, _ := e.readyzBody()
		return code == http.StatusOK
	})
	p.stop()
}
