package dicomio

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

type expectedPixels struct {
	Rows    int       `json:"rows"`
	Columns int       `json:"columns"`
	Frames  int       `json:"frames"`
	Values  []float64 `json:"values"`
	Z       []float64 `json:"z"`
}

func loadExpected(t *testing.T) map[string]expectedPixels {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]expectedPixels
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func td(rel string) string { return filepath.Join("testdata", filepath.FromSlash(rel)) }

func seriesFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join("testdata", "series", dir, "*.dcm"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no files in %s: %v", dir, err)
	}
	sort.Strings(m)
	return m
}

func assertClose(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > tol {
			t.Fatalf("%s: value %d = %v, want %v (±%v)", name, i, got[i], want[i], tol)
		}
	}
}

// voxels concatenates the frames' pixels in series order.
func voxels(s *Series) []float32 {
	var v []float32
	for _, f := range s.Frames {
		v = append(v, f.Pixels...)
	}
	return v
}
