package writer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKeepSEGs writes the conformance SEGs to $TMCAD_KEEP_SEGS for manual
// inspection (dcmdump, viewers); it does nothing else.
func TestKeepSEGs(t *testing.T) {
	dir := os.Getenv("TMCAD_KEEP_SEGS")
	if dir == "" {
		return
	}
	for _, c := range conformanceCases(t) {
		seg, err := EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.name+".dcm"), seg.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
