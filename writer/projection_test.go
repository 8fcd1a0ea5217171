package writer

import (
	"bytes"
	"slices"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// parseSEG parses an encoded SEG without its pixel data.
func parseSEG(t *testing.T, seg *SEG) []*dicom.Element {
	t.Helper()
	ds, err := dicom.Parse(bytes.NewReader(seg.Data), int64(len(seg.Data)), nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		t.Fatal(err)
	}
	return ds.Elements
}

// findElem returns the element with tag t among elems, or nil.
func findElem(elems []*dicom.Element, t tag.Tag) *dicom.Element {
	for _, e := range elems {
		if e.Tag == t {
			return e
		}
	}
	return nil
}

// seqItems returns the items of the sequence t among elems (nil when the
// sequence is absent).
func seqItems(elems []*dicom.Element, t tag.Tag) [][]*dicom.Element {
	e := findElem(elems, t)
	if e == nil {
		return nil
	}
	var out [][]*dicom.Element
	for _, it := range e.Value.GetValue().([]*dicom.SequenceItemValue) {
		out = append(out, it.GetValue().([]*dicom.Element))
	}
	return out
}

// strValues returns the string values of the element t among elems.
func strValues(elems []*dicom.Element, t tag.Tag) []string {
	e := findElem(elems, t)
	if e == nil {
		return nil
	}
	return e.Value.GetValue().([]string)
}

// A SEG of a projection image (no frame of reference) carries exactly one
// geometric statement, a shared Plane Orientation (OHIF's SEG loader cannot
// place a frame without one): the source's own orientation when it states
// one, 1\0\0\0\1\0 (what OHIF assumes for such a source) otherwise. No frame
// of reference, no plane position and no pixel measures are invented, and
// every frame keeps its Derivation Image reference to the source pixels.
func TestProjectionSEGOrientation(t *testing.T) {
	stated := crSeries(1, 24, 24)
	stated.Orientation = [6]float64{0, 1, 0, 0, 0, -1}
	for _, tc := range []struct {
		name string
		src  func() *SEG
		want []string
	}{
		{"no orientation stated", func() *SEG {
			seg, err := EncodeSEG(crSeries(2, 24, 24), discMasks(2, 2, 24, 24, nil, false), testDescription(2))
			if err != nil {
				t.Fatal(err)
			}
			return seg
		}, []string{"1", "0", "0", "0", "1", "0"}},
		{"orientation stated", func() *SEG {
			seg, err := EncodeSEG(stated, discMasks(1, 1, 24, 24, nil, false), testDescription(1))
			if err != nil {
				t.Fatal(err)
			}
			return seg
		}, []string{"0", "1", "0", "0", "0", "-1"}},
	} {
		ds := parseSEG(t, tc.src())
		shared := seqItems(ds, tag.SharedFunctionalGroupsSequence)
		if len(shared) != 1 {
			t.Fatalf("%s: %d shared functional group items, want 1", tc.name, len(shared))
		}
		orient := seqItems(shared[0], tag.PlaneOrientationSequence)
		if len(orient) != 1 {
			t.Fatalf("%s: shared Plane Orientation Sequence has %d items, want 1", tc.name, len(orient))
		}
		if got := strValues(orient[0], tag.ImageOrientationPatient); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ImageOrientationPatient %q, want %q", tc.name, got, tc.want)
		}
		if e := findElem(shared[0], tag.PixelMeasuresSequence); e != nil {
			t.Errorf("%s: shared Pixel Measures written for a projection image", tc.name)
		}
		for _, absent := range []tag.Tag{tag.FrameOfReferenceUID, tag.PositionReferenceIndicator} {
			if findElem(ds, absent) != nil {
				t.Errorf("%s: %v written for a source without a frame of reference", tc.name, absent)
			}
		}
		frames := seqItems(ds, tag.PerFrameFunctionalGroupsSequence)
		if len(frames) == 0 {
			t.Fatalf("%s: no per-frame functional groups", tc.name)
		}
		for i, f := range frames {
			if findElem(f, tag.PlanePositionSequence) != nil || findElem(f, tag.PlaneOrientationSequence) != nil {
				t.Errorf("%s: frame %d has a per-frame plane position or orientation", tc.name, i+1)
			}
			if len(seqItems(f, tag.DerivationImageSequence)) != 1 {
				t.Errorf("%s: frame %d lacks its Derivation Image reference", tc.name, i+1)
			}
		}
		dims := seqItems(ds, tag.DimensionIndexSequence)
		if len(dims) != 1 {
			t.Errorf("%s: %d dimensions, want the segment number only", tc.name, len(dims))
		}
	}

	// A cross-sectional source keeps its own geometry.
	c := conformanceCases(t)[2]
	ds := parseSEG(t, func() *SEG {
		seg, err := EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		return seg
	}())
	shared := seqItems(ds, tag.SharedFunctionalGroupsSequence)
	orient := seqItems(shared[0], tag.PlaneOrientationSequence)
	if got := strValues(orient[0], tag.ImageOrientationPatient); !slices.Equal(got, []string{"1", "0", "0", "0", "1", "0"}) || findElem(shared[0], tag.PixelMeasuresSequence) == nil {
		t.Errorf("CT: shared orientation %q, pixel measures present %v", got, findElem(shared[0], tag.PixelMeasuresSequence) != nil)
	}
	if got := strValues(ds, tag.FrameOfReferenceUID); !slices.Equal(got, []string{c.src.FrameOfReferenceUID}) {
		t.Errorf("CT: FrameOfReferenceUID %q", got)
	}
}

func TestValidOrientation(t *testing.T) {
	for _, tc := range []struct {
		o    [6]float64
		want bool
	}{
		{[6]float64{1, 0, 0, 0, 1, 0}, true},
		{[6]float64{0, 1, 0, 0, 0, -1}, true},
		{[6]float64{0.70710678, 0.70710678, 0, 0, 0, -1}, true},
		{[6]float64{}, false},
		{[6]float64{1, 0, 0, 1, 0, 0}, false},
		{[6]float64{2, 0, 0, 0, 1, 0}, false},
	} {
		if got := validOrientation(tc.o); got != tc.want {
			t.Errorf("validOrientation(%v) = %v, want %v", tc.o, got, tc.want)
		}
	}
}
