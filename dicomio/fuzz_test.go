package dicomio

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadHeader feeds arbitrary bytes to the header path (scan, library
// parse, extraction). It must never panic and every error must name the file.
// The seed corpus is in testdata/fuzz/FuzzReadHeader (regenerate with
// testdata/gen/dicomio/fuzzseed).
func FuzzReadHeader(f *testing.F) {
	for _, p := range []string{"ts/explicit.dcm", "ts/implicit.dcm", "ts/deflated.dcm", "enhanced/ct_enhanced.dcm"} {
		b, err := os.ReadFile(td(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseInstance("fuzz.dcm", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.dcm") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		_ = in.Header.Frames()
	})
}

// TestReadHeaderCorpus runs ReadHeader (through a real file) on every
// committed fuzz seed.
func TestReadHeaderCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzReadHeader", "*"))
	if len(files) == 0 {
		t.Fatal("no committed seed corpus in testdata/fuzz/FuzzReadHeader")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data, ok := decodeCorpusEntry(b)
		if !ok {
			t.Fatalf("%s: not a go fuzz v1 []byte entry", f)
		}
		p := filepath.Join(t.TempDir(), "seed.dcm")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadHeader(p); err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not name the file: %v", f, err)
		}
	}
}

// FuzzDecodePixels runs the whole single-file load path (header, checks,
// limits, pixel decoding) on arbitrary bytes, with small limits.
func FuzzDecodePixels(f *testing.F) {
	for _, p := range []string{"ts/explicit.dcm", "ts/bigendian.dcm", "ts/jpeg_baseline.dcm", "pixel/padding_signed.dcm", "enhanced/ct_enhanced.dcm"} {
		b, err := os.ReadFile(td(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := Limits{MaxRows: 64, MaxColumns: 64, MaxFrames: 16, MaxBytes: 1 << 20}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseInstance("fuzz.dcm", bytes.NewReader(data), int64(len(data)))
		if err != nil || checkDecodable(in) != nil || lim.checkImage(in.Header) != nil {
			return
		}
		npix := in.Rows * in.Columns
		dst := make([][]float32, in.Frames())
		for i := range dst {
			dst[i] = make([]float32, npix)
		}
		_, err = decodeFrom(in, bytes.NewReader(data), int64(len(data)), dst, nil)
		if err != nil && !strings.Contains(err.Error(), "fuzz.dcm") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
