package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// withPixelBytes returns a copy of the explicit little-endian file src
// whose Pixel Data (its last element) has extra bytes appended, its
// length updated to match.
func withPixelBytes(t *testing.T, src string, extra int) []byte {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte{0xE0, 0x7F, 0x10, 0x00, 'O'})
	if i < 0 || b[i+6] != 0 || b[i+7] != 0 {
		t.Fatalf("%s: no explicit-VR Pixel Data element", src)
	}
	vl := binary.LittleEndian.Uint32(b[i+8:])
	if int(vl) != len(b)-(i+12) {
		t.Fatalf("%s: Pixel Data is not the last element", src)
	}
	binary.LittleEndian.PutUint32(b[i+8:], vl+uint32(extra))
	return append(b, make([]byte, extra)...)
}

// Native Pixel Data longer than Rows × Columns × frames × bytes is
// rejected, naming the file and both lengths; the exact length loads.
func TestLoadRejectsLongPixelData(t *testing.T) {
	src := td("ts/explicit.dcm")
	whole, err := LoadSeries([]string{src}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(whole.Rows * whole.Columns * 2 * len(whole.Frames))
	dir := t.TempDir()
	for _, extra := range []int{2, int(want)} {
		bad := filepath.Join(dir, "long"+strconv.Itoa(extra)+".dcm")
		if err := os.WriteFile(bad, withPixelBytes(t, src, extra), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSeries([]string{bad}, Limits{})
		if err == nil {
			t.Fatalf("%d bytes too many: loaded, want an error", extra)
		}
		msg := err.Error()
		for _, s := range []string{bad, strconv.FormatInt(want+int64(extra), 10), strconv.FormatInt(want, 10)} {
			if !strings.Contains(msg, s) {
				t.Errorf("%d bytes too many: error %q does not name %s", extra, msg, s)
			}
		}
	}
	ok := filepath.Join(dir, "exact.dcm")
	if err := os.WriteFile(ok, withPixelBytes(t, src, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSeries([]string{ok}, Limits{}); err != nil {
		t.Errorf("exact length: %v", err)
	}
}

// A Part 10 file cut short reads as ErrTruncated (it may still be being
// written); a short file that is not DICOM at all does not.
func TestReadHeaderTruncated(t *testing.T) {
	b, err := os.ReadFile(td("ts/explicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range []int{200, len(b) - 10} {
		p := filepath.Join(dir, "cut"+strconv.Itoa(n))
		if err := os.WriteFile(p, b[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadHeader(p); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), p) {
			t.Errorf("cut at %d bytes: %v, want ErrTruncated naming the file", n, err)
		}
	}
	p := filepath.Join(dir, "text")
	if err := os.WriteFile(p, []byte("not DICOM"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadHeader(p); err == nil || errors.Is(err, ErrTruncated) {
		t.Errorf("a short text file: %v, want an error other than ErrTruncated", err)
	}
}
