package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// inputsPresent counts the series' files still in the drop folder.
func (e *env) inputsPresent(s exampleSeries) int {
	n := 0
	for _, f := range s.Files {
		if _, err := os.Stat(filepath.Join(e.cfg.DICOMDir, f[len("dicom/"):])); err == nil {
			n++
		}
	}
	return n
}

// retentionEnv is a daemon whose archive is a fake DICOMweb server, down
// at first, with retention.inputs = inputs; s (with its report) is
// dropped and its SEG made, and the test waits until storing it failed:
// the SEG waits in the outbox, and every input must still be in the drop
// folder. Then the archive comes up; while it answers the store, the
// inputs must still be there (the SEG is not yet confirmed stored).
func retentionEnv(t *testing.T, inputs string, s exampleSeries) (*env, *daemonProc) {
	t.Helper()
	stow := startSTOW(t)
	e := newEnv(t)
	e.cfg.ArchiveKind, e.cfg.ArchiveURL = "dicomweb", stow.url
	e.cfg.Retention = inputs
	if inputs == "move" {
		e.cfg.DoneDir = filepath.Join(e.dir, "done")
	}
	p := e.start()
	e.dropReport(s)
	e.dropSeries(s, 0, 0)
	p.waitLog(90*time.Second, "SEG made", seriesMsg(msgSEGMade, s.SeriesUID))
	p.waitLog(60*time.Second, "store refused by the archive", seriesMsg(msgExportKO, s.SeriesUID))
	if e.outboxSEGs() != 1 {
		t.Errorf("%d SEGs in the outbox while the archive is down, want 1", e.outboxSEGs())
	}
	if n := e.inputsPresent(s); n != len(s.Files) {
		t.Fatalf("%d of %d inputs in the drop folder while the SEG waits in the outbox: retention ran before the SEG was stored", n, len(s.Files))
	}
	if e.cfg.DoneDir != "" && countFiles(e.cfg.DoneDir, "") != 0 {
		t.Fatal("files in done_dir before the SEG was stored")
	}
	var mu sync.Mutex
	early := -1
	stow.mu.Lock()
	stow.onStore = func() {
		mu.Lock()
		defer mu.Unlock()
		if n := e.inputsPresent(s); early < 0 || n < early {
			early = n
		}
	}
	stow.mu.Unlock()
	stow.setUp(true)
	p.waitLog(60*time.Second, "SEG stored", seriesMsg(msgStored, s.SeriesUID))
	mu.Lock()
	if early != len(s.Files) {
		t.Errorf("only %d of %d inputs in the drop folder while the archive was storing the SEG", early, len(s.Files))
	}
	mu.Unlock()
	if refused, stored := stow.counts(); refused == 0 || stored != 1 {
		t.Errorf("archive refused %d and stored %d SEGs, want >0 and 1", refused, stored)
	}
	return e, p
}

// TestRetentionMove: retention.inputs = "move" with a DICOMweb archive
// that is down at first: the CT series' 20 files stay in the drop folder
// while the SEG waits in the outbox, and once it is stored they are in
// done_dir under the relative paths they had in the drop folder, with
// their content.
func TestRetentionMove(t *testing.T) {
	start := time.Now()
	s := examples[4]
	e, p := retentionEnv(t, "move", s)
	waitFor(t, 30*time.Second, "inputs moved out of the drop folder", func() bool { return e.inputsPresent(s) == 0 })
	done := fileDigests(t, e.cfg.DoneDir)
	if len(done) != len(s.Files) {
		t.Errorf("%d files in done_dir, want the series' %d", len(done), len(s.Files))
	}
	for i, src := range s.paths() {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		rel := s.Files[i][len("dicom/"):]
		if done[rel] != hex.EncodeToString(sum[:]) {
			t.Errorf("done_dir/%s missing or changed (done_dir holds %d files)", rel, len(done))
		}
	}
	if st := e.status(); st.Series["done"] != 1 || st.Outbox != 0 {
		t.Errorf("tmcad status: series %v, outbox %d; want 1 done, outbox empty", st.Series, st.Outbox)
	}
	p.stop()
	t.Logf("inputs moved to done_dir after the SEG was stored; %.1fs", time.Since(start).Seconds())
}

// TestRetentionDelete: retention.inputs = "delete": the input stays while
// the SEG waits for the archive and is gone once it is stored; nothing is
// quarantined or kept elsewhere.
func TestRetentionDelete(t *testing.T) {
	start := time.Now()
	s := examples[0]
	e, p := retentionEnv(t, "delete", s)
	waitFor(t, 30*time.Second, "inputs deleted", func() bool { return e.inputsPresent(s) == 0 })
	if n := countFiles(e.cfg.DICOMDir, ""); n != 0 {
		t.Errorf("%d files left in the drop folder, want none", n)
	}
	if n := countFiles(filepath.Join(e.cfg.StateDir, "quarantine"), ""); n != 0 {
		t.Errorf("%d files in quarantine, want none", n)
	}
	// The series cannot be processed again: reprocess says so and queues
	// nothing (it would otherwise fail on the missing file, and the nightly
	// sweep would retry it for ever).
	waitFor(t, 10*time.Second, "the deletion catalogued", func() bool {
		out := e.reprocess("--series", s.SeriesUID)
		return strings.Contains(out, "skipped "+s.SeriesUID) && strings.Contains(out, "retention.inputs = delete")
	})
	wantQueued(t, e.reprocess("--series", s.SeriesUID), 0, shippedVersion)
	if st := e.status(); st.Series["done"] != 1 || st.Jobs["completed"] != 1 {
		t.Errorf("tmcad status after reprocess: series %v, jobs %v; want the series done, one job", st.Series, st.Jobs)
	}
	p.stop()
	t.Logf("input deleted after the SEG was stored; reprocess skips the series; %.1fs", time.Since(start).Seconds())
}
