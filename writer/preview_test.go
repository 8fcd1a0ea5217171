package writer

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestReadSEGRoundTrip: our own reader unpacks what the encoder packed, for
// every conformance case (frame sizes not a multiple of 8 included).
func TestReadSEGRoundTrip(t *testing.T) {
	for _, c := range conformanceCases(t) {
		seg, err := EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ReadSEG(seg.Data)
		if err != nil {
			t.Fatalf("%s: ReadSEG: %v", c.name, err)
		}
		idx, want := expectedFrames(c)
		if len(d.Frames) != len(idx) {
			t.Fatalf("%s: %d frames, want %d", c.name, len(d.Frames), len(idx))
		}
		for i, fr := range d.Frames {
			if fr.Segment != idx[i].segment+1 || fr.SourceSOP != c.src.Frames[idx[i].frame].SOPInstanceUID || !bytes.Equal(fr.Pixels, want[i]) {
				t.Errorf("%s: frame %d differs", c.name, i)
			}
		}
	}
}

func TestPreview(t *testing.T) {
	c := conformanceCases(t)[2] // CT, two segments, empty slices omitted
	seg, err := EncodeSEG(c.src, c.input(), c.desc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	segPath := filepath.Join(dir, "seg.dcm")
	if err := os.WriteFile(segPath, seg.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.png")
	if err := WritePreviewFile(segPath, c.src, out); err != nil {
		t.Fatalf("WritePreviewFile: %v", err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding preview: %v", err)
	}
	if b := img.Bounds(); b.Dx() != c.src.Columns || b.Dy() != c.src.Rows {
		t.Fatalf("preview is %v, want %dx%d", b, c.src.Columns, c.src.Rows)
	}
	// Both segments' outline colours appear.
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	for i := 0; i < 2; i++ {
		col := segmentColors[i]
		if !seen[[3]uint32{uint32(col.R), uint32(col.G), uint32(col.B)}] {
			t.Errorf("outline colour of segment %d missing", i+1)
		}
	}
	// A SEG whose frames reference another series is refused.
	other := crSeries(1, c.src.Rows, c.src.Columns)
	if _, err := PreviewPNG(seg.Data, other); err == nil {
		t.Error("preview on the wrong source series succeeded")
	}
}
