package writer

import (
	"bytes"
	"errors"
	"math/rand"
	"strings"
	"testing"
)

func TestPackBitsMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{1, 7, 8, 9, 63, 64, 65, 37 * 41} {
		for frames := 1; frames <= 4; frames++ {
			masks := make([][]byte, frames)
			for f := range masks {
				if f == 1 {
					continue // nil frame: all zero
				}
				masks[f] = make([]byte, n)
				for i := range masks[f] {
					if rng.Intn(3) == 0 {
						masks[f][i] = byte(1 + rng.Intn(255)) // any nonzero is set
					}
				}
			}
			p := newBitPacker(frames * n)
			for _, m := range masks {
				p.add(m, n)
			}
			got := p.bytes()
			// Naive reference: bit k of the stream is pixel k, LSB first.
			want := make([]byte, (frames*n+7)/8)
			for f, m := range masks {
				for i := 0; i < n; i++ {
					if m != nil && m[i] != 0 {
						k := f*n + i
						want[k/8] |= 1 << (k % 8)
					}
				}
			}
			if len(want)%2 == 1 {
				want = append(want, 0)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d frames=%d: packed bytes differ", n, frames)
			}
			un := UnpackBits(got, frames, n)
			for f, m := range masks {
				for i := 0; i < n; i++ {
					w := byte(0)
					if m != nil && m[i] != 0 {
						w = 1
					}
					if un[f][i] != w {
						t.Fatalf("n=%d frames=%d: unpack frame %d pixel %d = %d", n, frames, f, i, un[f][i])
					}
				}
			}
		}
	}
}

func TestPackParallelMatchesSequential(t *testing.T) {
	masks := discMasks(2, 9, 16, 24, map[int]bool{3: true}, false)
	masks[1][5][7] = 200 // any nonzero value is set
	var frames []segFrame
	for s := range masks {
		for f := range masks[s] {
			frames = append(frames, segFrame{s, f})
		}
	}
	n := 16 * 24
	p := newBitPacker(len(frames) * n)
	for _, sf := range frames {
		p.add(masks[sf.segment][sf.frame], n)
	}
	if got := packFramesParallel(masks, frames, n); !bytes.Equal(got, p.bytes()) {
		t.Fatal("parallel packing differs from sequential")
	}
}

func TestDeterministicUIDs(t *testing.T) {
	c := conformanceCases(t)[2]
	a, err := EncodeSEG(c.src, c.input(), c.desc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeSEG(c.src, c.input(), c.desc)
	if err != nil {
		t.Fatal(err)
	}
	if a.SOPInstanceUID != b.SOPInstanceUID || a.SeriesInstanceUID != b.SeriesInstanceUID || !bytes.Equal(a.Data, b.Data) {
		t.Fatal("same input gave different UIDs or bytes")
	}
	if !strings.HasPrefix(a.SOPInstanceUID, "2.25.") || len(a.SOPInstanceUID) > 64 || a.SOPInstanceUID == a.SeriesInstanceUID {
		t.Fatalf("bad UIDs %s / %s", a.SOPInstanceUID, a.SeriesInstanceUID)
	}
	for name, mutate := range map[string]func(*Description){
		"model version": func(d *Description) { d.ModelVersion = "1.0.1" },
		"model name":    func(d *Description) { d.ModelName = "other" },
		"report hash":   func(d *Description) { d.ReportHash = "sha256:ffff" },
	} {
		d := c.desc
		mutate(&d)
		x, err := EncodeSEG(c.src, c.masks, d)
		if err != nil {
			t.Fatal(err)
		}
		if x.SOPInstanceUID == a.SOPInstanceUID || x.SeriesInstanceUID == a.SeriesInstanceUID {
			t.Errorf("changing the %s kept the UIDs", name)
		}
	}
	d := c.desc
	d.UIDRoot = "1.2.826.0.1.3680043.10.999"
	x, err := EncodeSEG(c.src, c.masks, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(x.SOPInstanceUID, d.UIDRoot+".") || len(x.SOPInstanceUID) > 64 || !uidPattern.MatchString(x.SOPInstanceUID) {
		t.Errorf("org-root UID %q", x.SOPInstanceUID)
	}
	if u1, _ := DeriveUID("", "ab", "c"); u1 == func() string { u, _ := DeriveUID("", "a", "bc"); return u }() {
		t.Error("DeriveUID parts are not separated")
	}
}

func TestReportTextNeverCopied(t *testing.T) {
	c := conformanceCases(t)[0]
	d := c.desc
	d.ReportHash = "sha256:abc"
	seg, err := EncodeSEG(c.src, c.masks, d)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(seg.Data, []byte("sha256:abc")) {
		t.Error("the report hash is not meant to be written (only used for UIDs)")
	}
}

func TestValidationNamesTheField(t *testing.T) {
	base := testDescription(2)
	cases := map[string]func(*Description){
		"Segments[1].Number":          func(d *Description) { d.Segments[1].Number = 3 },
		"Segments[0].Category.Scheme": func(d *Description) { d.Segments[0].Category.Scheme = "SRT" },
		"Segments[0].Type.Value":      func(d *Description) { d.Segments[0].Type.Value = "" },
		"Segments[1].Label":           func(d *Description) { d.Segments[1].Label = "" },
		"Manufacturer":                func(d *Description) { d.Manufacturer = "" },
		"ModelVersion":                func(d *Description) { d.ModelVersion = "" },
		"ContentLabel":                func(d *Description) { d.ContentLabel = "lower case" },
		"Type":                        func(d *Description) { d.Type = "LABELMAP" },
		"UIDRoot":                     func(d *Description) { d.UIDRoot = "1.02.3" },
		"Segments":                    func(d *Description) { d.Segments = nil },
	}
	for field, mutate := range cases {
		d := base
		d.Segments = append([]Segment(nil), base.Segments...)
		mutate(&d)
		err := d.Validate()
		if err == nil || !strings.Contains(err.Error(), "Description."+field+":") {
			t.Errorf("%s: err = %v, want one naming Description.%s", field, err, field)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("valid description rejected: %v", err)
	}
}

func TestMaskShapeErrors(t *testing.T) {
	c := conformanceCases(t)[2]
	if _, err := EncodeSEG(c.src, c.masks[:1], c.desc); err == nil || !strings.Contains(err.Error(), "segments") {
		t.Errorf("segment count mismatch: %v", err)
	}
	bad := Masks{c.masks[0], append([][]byte(nil), c.masks[1]...)}
	bad[1][3] = make([]byte, 5)
	if _, err := EncodeSEG(c.src, bad, c.desc); err == nil || !strings.Contains(err.Error(), "segment 2 frame 3") {
		t.Errorf("frame size mismatch: %v", err)
	}
	src := *c.src
	src.FrameOfReferenceUID = ""
	if _, err := EncodeSEG(&src, c.masks, c.desc); err == nil || !strings.Contains(err.Error(), "FrameOfReferenceUID") {
		t.Errorf("missing FoR: %v", err)
	}
}

func TestEmptyHandling(t *testing.T) {
	c := conformanceCases(t)[len(conformanceCases(t))-1] // all empty
	seg, err := EncodeSEG(c.src, c.input(), c.desc)
	if err != nil || seg.NumberOfFrames != 1 || !seg.Empty {
		t.Fatalf("all-empty default: %+v, %v; want one empty frame", seg, err)
	}
	d := c.desc
	d.SkipIfEmpty = true
	if _, err := EncodeSEG(c.src, c.masks, d); !errors.Is(err, ErrEmpty) {
		t.Fatalf("SkipIfEmpty: err = %v, want ErrEmpty", err)
	}
	ct := conformanceCases(t)[2]
	d = ct.desc
	d.KeepEmptyFrames = true
	seg, err = EncodeSEG(ct.src, ct.masks, d)
	if err != nil || seg.NumberOfFrames != len(ct.src.Frames)*len(d.Segments) {
		t.Fatalf("KeepEmptyFrames: %d frames, %v", seg.NumberOfFrames, err)
	}
}

func TestFormatDS(t *testing.T) {
	for _, v := range []float64{0, 0.1, -123.45678901234568, 1e-20, 512, -0.703125, 123456789012345678} {
		s := formatDS(v)
		if len(s) > 16 || s == "" {
			t.Errorf("formatDS(%v) = %q", v, s)
		}
	}
}
