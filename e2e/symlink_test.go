package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSymlinksNotFollowed: symbolic links in the drop folder — one to a
// DICOM series outside it, one to a private file outside it (mode 0600) —
// are never followed by `tmcad run`: no instance is catalogued from them,
// no SEG made, and nothing of the private file reaches quarantine. A real
// series dropped beside them is processed as usual.
func TestSymlinksNotFollowed(t *testing.T) {
	var cr, other exampleSeries
	for _, s := range examples {
		switch {
		case s.Modality == "CR" && cr.SeriesUID == "":
			cr = s
		case s.Modality == "CR" && other.SeriesUID == "":
			other = s
		}
	}
	e := newEnv(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.dcm")
	secretBytes := []byte("private file outside the drop folder, not for tmcad")
	if err := os.WriteFile(secret, secretBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(outside, "foreign.dcm")
	copyFile(t, other.paths()[0], foreign)
	if err := os.MkdirAll(e.cfg.DICOMDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(e.cfg.DICOMDir, "link-secret.dcm")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(foreign, filepath.Join(e.cfg.DICOMDir, "link-foreign.dcm")); err != nil {
		t.Fatal(err)
	}
	e.dropReport(other)
	p := e.start()
	e.dropReport(cr)
	e.dropSeries(cr, 0, 0)
	e.waitArchive(90*time.Second, 1)
	time.Sleep(3 * time.Second) // a rescan passes over the links again
	p.stop()

	for _, s := range archiveSEGs(t, e.cfg.ArchiveDir) {
		if s.ReferencedSeries[0] != cr.SeriesUID {
			t.Errorf("a SEG for series %s, reached only through a symbolic link", s.ReferencedSeries[0])
		}
	}
	st := e.status()
	if n := st.Series["done"]; n != 1 || len(st.Series) != 1 {
		t.Errorf("catalogued series by state %v; want only the real series, done", st.Series)
	}
	_ = filepath.WalkDir(e.cfg.StateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, secretBytes) {
			t.Errorf("%s holds the private file's content", path)
		}
		return nil
	})
}
