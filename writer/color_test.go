package writer

import (
	"testing"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// The sRGB → DICOM CIELab conversion against reference values: the exact
// white and black points, and the values dcmjs (Colors.rgb82DICOMLAB, the
// conversion OHIF inverts to colour a segment) gives for the primaries and
// for some other colours.
func TestRGBToCIELab(t *testing.T) {
	for _, tc := range []struct {
		rgb  RGB
		want [3]uint16
	}{
		{RGB{255, 255, 255}, [3]uint16{65535, 32896, 32896}},
		{RGB{0, 0, 0}, [3]uint16{0, 32896, 32896}},
		{RGB{255, 0, 0}, [3]uint16{35579, 53663, 50858}},
		{RGB{0, 255, 0}, [3]uint16{57552, 12523, 53712}},
		{RGB{0, 0, 255}, [3]uint16{19378, 50446, 4104}},
		{RGB{230, 80, 60}, [3]uint16{36514, 47861, 44341}},
		{RGB{128, 174, 128}, [3]uint16{43821, 26998, 37660}},
		{RGB{10, 20, 30}, [3]uint16{3834, 32511, 30774}},
	} {
		if got := tc.rgb.CIELab(); got != tc.want {
			t.Errorf("%v.CIELab() = %v, want %v", tc.rgb, got, tc.want)
		}
	}
}

func TestDefaultColor(t *testing.T) {
	if DefaultColor(1) != defaultPalette[0] || DefaultColor(2) != defaultPalette[1] {
		t.Errorf("segments 1 and 2 do not take the first two palette colours")
	}
	if n := len(defaultPalette); DefaultColor(n+1) != DefaultColor(1) || DefaultColor(0) != DefaultColor(n) {
		t.Errorf("the palette does not repeat by segment number")
	}
	seen := map[RGB]bool{}
	for _, c := range defaultPalette {
		if seen[c] {
			t.Errorf("palette colour %v repeats", c)
		}
		seen[c] = true
	}
}

// Every segment item carries Recommended Display CIELab Value: the
// segment's own colour, or its default one.
func TestSegmentColorWritten(t *testing.T) {
	d := testDescription(3)
	own := RGB{12, 200, 34}
	d.Segments[1].Color = &own
	seg, err := EncodeSEG(crSeries(1, 24, 24), discMasks(3, 1, 24, 24, nil, false), d)
	if err != nil {
		t.Fatal(err)
	}
	items := seqItems(parseSEG(t, seg), tag.SegmentSequence)
	if len(items) != 3 {
		t.Fatalf("%d segment items, want 3", len(items))
	}
	want := []RGB{DefaultColor(1), own, DefaultColor(3)}
	for i, it := range items {
		e := findElem(it, tag.RecommendedDisplayCIELabValue)
		if e == nil {
			t.Errorf("segment %d: no RecommendedDisplayCIELabValue", i+1)
			continue
		}
		lab := want[i].CIELab()
		got := e.Value.GetValue().([]int)
		if e.RawValueRepresentation != "US" || len(got) != 3 || got[0] != int(lab[0]) || got[1] != int(lab[1]) || got[2] != int(lab[2]) {
			t.Errorf("segment %d: RecommendedDisplayCIELabValue %s %v, want US %v", i+1, e.RawValueRepresentation, got, lab)
		}
	}
	if d.Segments[0].Color != nil {
		t.Error("EncodeSEG filled in the caller's Description")
	}
}
