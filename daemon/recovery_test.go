package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOutboxSweptAtStart: a SEG file that a crash left in the outbox
// without a catalog row, and a temporary file of an interrupted write, are
// removed at start; a file that is not the outbox's own stays.
func TestOutboxSweptAtStart(t *testing.T) {
	cfg := testConfig(t)
	out := filepath.Join(cfg.StateDir, "outbox")
	if err := os.MkdirAll(out, 0o750); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{"1.2.3.4.dcm": false, ".seg-123.part": false, "README.txt": true}
	for name := range files {
		if err := os.WriteFile(filepath.Join(out, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	_, stop := runDaemon(t, cfg, newFakeProcessor(), &fakeSink{puts: map[string]int{}})
	stop()
	for name, keep := range files {
		_, err := os.Stat(filepath.Join(out, name))
		if kept := err == nil; kept != keep {
			t.Errorf("%s: kept = %v, want %v", name, kept, keep)
		}
	}
}
