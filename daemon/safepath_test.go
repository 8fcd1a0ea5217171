package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"
)

// TestHostileUIDsStayInTheirFolders runs the daemon on series whose
// Series Instance UIDs (and so the fake SEGs' SOP Instance UIDs) are
// crafted to climb out of a folder: the failing one is quarantined in a
// folder directly under the quarantine folder, the other's SEG is written
// inside the outbox, and after it is stored retention.inputs = "move"
// puts its inputs under done_dir at their drop-folder relative paths,
// leaving an instance that arrived while the job ran (it is in no SEG)
// in the drop folder. Nothing is written anywhere else.
func TestHostileUIDsStayInTheirFolders(t *testing.T) {
	cfg := testConfig(t)
	root := filepath.Dir(cfg.StateDir)
	cfg.Retention.Inputs = "move"
	cfg.Retention.DoneDir = filepath.Join(root, "done")
	bad := "../../../escaped/" + strings.Repeat("9.", 80) + "1"
	good := "1.2.8/../../../escaped/2"
	proc := newFakeProcessor()
	proc.fail[bad] = pipeline.Permanent("decode", errors.New("pixel data truncated"))
	proc.delay = 1500 * time.Millisecond
	sink := &fakeSink{puts: map[string]int{}}
	d, stop := runDaemon(t, cfg, proc, sink)

	writeReport(t, cfg, "1.2.7", "FINDINGS: opacity.")
	writeReport(t, cfg, "1.2.8", "FINDINGS: effusion.")
	for i, in := range testSeries("1.2.7", bad, 2) {
		writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, "a"), "IM"+itoa(i), in)
	}
	goodSeries := testSeries("1.2.8", good, 3)
	for i, in := range goodSeries[:2] {
		writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, "b", "sub"), "IM"+itoa(i), in)
	}
	// The third instance arrives while the job runs: it is catalogued late
	// and is in no SEG.
	waitFor(t, 20*time.Second, "good series processing", func() bool { return proc.count(good) == 1 })
	late := writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, "b", "sub"), "IM2", goodSeries[2])

	waitFor(t, 20*time.Second, "bad series failed", func() bool { return seriesState(t, d, bad) == catalog.StateFailed })
	waitFor(t, 20*time.Second, "good series stored", func() bool { return sink.stored(good+".99.1") == 1 })
	waitFor(t, 20*time.Second, "inputs moved", func() bool {
		_, err := os.Stat(filepath.Join(cfg.Retention.DoneDir, "b", "sub", "IM1"))
		return err == nil
	})
	stop()

	qroot := cfg.QuarantineDir()
	ents, err := os.ReadDir(qroot)
	if err != nil || len(ents) != 1 {
		t.Fatalf("quarantine holds %d entries (%v), want one folder", len(ents), err)
	}
	if n := len(ents[0].Name()); n > 255 {
		t.Errorf("quarantine folder name is %d bytes long", n)
	}
	for _, name := range []string{"IM0", "IM1"} {
		if _, err := os.Stat(filepath.Join(cfg.Retention.DoneDir, "b", "sub", name)); err != nil {
			t.Errorf("done_dir/b/sub/%s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(cfg.Watch.DICOMDir, "b", "sub", name)); err == nil {
			t.Errorf("drop/b/sub/%s still in the drop folder after its SEG was stored", name)
		}
	}
	if _, err := os.Stat(late); err != nil {
		t.Errorf("the instance that arrived while the job ran was moved or deleted although it is in no SEG: %v", err)
	}
	// Nothing outside the folders the daemon owns.
	allowed := []string{cfg.StateDir, cfg.Watch.DICOMDir, cfg.Watch.ReportsDir, cfg.Retention.DoneDir, cfg.Archive.Dir}
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		for _, a := range allowed {
			if p == a || strings.HasPrefix(p, a+string(filepath.Separator)) || strings.HasPrefix(a, p+string(filepath.Separator)) {
				return nil
			}
		}
		t.Errorf("%s written outside the daemon's folders", p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escaped")); err == nil {
		t.Errorf("a folder escaped above the test's folder")
	}
}
