package writer

import (
	"fmt"
	"math"
	"testing"

	"tmcad/dicomio"
)

// Test fixtures: source series built by hand (the dicomio reader is not
// needed to validate the SEG), and masks with known content.

const (
	ctImageStorage         = "1.2.840.10008.5.1.4.1.1.2"
	enhancedCTImageStorage = "1.2.840.10008.5.1.4.1.1.2.1"
	crImageStorage         = "1.2.840.10008.5.1.4.1.1.1"
)

func testPatient(study string) dicomio.PatientStudy {
	return dicomio.PatientStudy{
		PatientName:            "Müller^Hans",
		PatientID:              "PID-0001",
		PatientBirthDate:       "19600101",
		PatientSex:             "M",
		PatientAge:             "064Y",
		StudyInstanceUID:       study,
		StudyDate:              "20240102",
		StudyTime:              "101500",
		StudyID:                "S1",
		AccessionNumber:        "ACC123",
		ReferringPhysicianName: "Doe^John",
		StudyDescription:       "CHEST",
	}
}

// ctSeries is a cross-sectional series of n single-frame CT slices with an
// odd matrix (so that BINARY frames share bytes).
func ctSeries(n, rows, cols int) *dicomio.Series {
	s := &dicomio.Series{
		PatientStudy:         testPatient("2.25.100000000000000000000000000000001"),
		SeriesInstanceUID:    "2.25.100000000000000000000000000000002",
		SeriesNumber:         3,
		Modality:             "CT",
		BodyPartExamined:     "CHEST",
		Photometric:          "MONOCHROME2",
		Rows:                 rows,
		Columns:              cols,
		HasGeometry:          true,
		Orientation:          [6]float64{1, 0, 0, 0, 1, 0},
		PixelSpacing:         [2]float64{0.703125, 0.703125},
		SliceThickness:       2.5,
		SpacingBetweenSlices: 2.5,
		FrameOfReferenceUID:  "2.25.100000000000000000000000000000003",
	}
	for i := 0; i < n; i++ {
		s.Frames = append(s.Frames, dicomio.Frame{
			Pixels:         ramp(rows, cols, float32(i)),
			SOPInstanceUID: fmt.Sprintf("2.25.2000000000000000000000000000%05d", i+1),
			SOPClassUID:    ctImageStorage,
			FrameNumber:    1,
			Position:       dicomio.Vec3{-180, -180, -100 + 2.5*float64(i)},
			InstanceNumber: i + 1,
		})
	}
	return s
}

// enhancedCTSeries is one Enhanced CT instance holding n frames.
func enhancedCTSeries(n, rows, cols int) *dicomio.Series {
	s := ctSeries(n, rows, cols)
	s.SeriesInstanceUID = "2.25.100000000000000000000000000000012"
	for i := range s.Frames {
		s.Frames[i].SOPInstanceUID = "2.25.300000000000000000000000000000001"
		s.Frames[i].SOPClassUID = enhancedCTImageStorage
		s.Frames[i].FrameNumber = i + 1
		s.Frames[i].InstanceNumber = 1
	}
	return s
}

// crSeries is a projection radiograph series without patient geometry.
func crSeries(n, rows, cols int) *dicomio.Series {
	s := &dicomio.Series{
		PatientStudy:       testPatient("2.25.100000000000000000000000000000021"),
		SeriesInstanceUID:  "2.25.100000000000000000000000000000022",
		SeriesNumber:       1,
		Modality:           "CR",
		BodyPartExamined:   "CHEST",
		PatientOrientation: []string{"P", "F"},
		Photometric:        "MONOCHROME1",
		Monochrome1:        true,
		Rows:               rows,
		Columns:            cols,
	}
	for i := 0; i < n; i++ {
		s.Frames = append(s.Frames, dicomio.Frame{
			Pixels:         ramp(rows, cols, 0),
			SOPInstanceUID: fmt.Sprintf("2.25.4000000000000000000000000000%05d", i+1),
			SOPClassUID:    crImageStorage,
			FrameNumber:    1,
			InstanceNumber: i + 1,
		})
	}
	return s
}

func ramp(rows, cols int, off float32) []float32 {
	p := make([]float32, rows*cols)
	for i := range p {
		p[i] = float32(i%cols)*4 + float32(i/cols) + off
	}
	return p
}

// discMasks makes masks for segs segments on frames frames: segment s is a
// disc whose radius varies with the frame; frames listed in empty are nil
// (all zero) for every segment. fractional fills 0..255 values.
func discMasks(segs, frames, rows, cols int, empty map[int]bool, fractional bool) Masks {
	m := make(Masks, segs)
	for s := range m {
		m[s] = make([][]byte, frames)
		for f := 0; f < frames; f++ {
			if empty[f] {
				continue
			}
			fr := make([]byte, rows*cols)
			cy, cx := float64(rows)/2+float64(s*3), float64(cols)/2-float64(s*4)
			r := float64(2 + (f+s)%5 + min(rows, cols)/6)
			for y := 0; y < rows; y++ {
				for x := 0; x < cols; x++ {
					d := math.Hypot(float64(y)-cy, float64(x)-cx)
					if fractional {
						v := 255 * (1 - d/(2*r))
						fr[y*cols+x] = byte(max(0, min(255, v)))
					} else if d <= r {
						fr[y*cols+x] = 1
					}
				}
			}
			m[s][f] = fr
		}
	}
	return m
}

func testDescription(segs int) Description {
	d := Description{
		SeriesDescription:     "TMCA segmentation",
		ContentCreatorName:    "TMCAD^Daemon",
		Manufacturer:          "tmcad",
		ManufacturerModelName: "tmcad TMCA",
		SoftwareVersions:      "tmcad 0.1.0",
		ModelName:             "tmca-cxr-compact",
		ModelVersion:          "1.0.0",
		ReportHash:            "sha256:0f1e2d",
	}
	labels := []string{"Lung opacity", "Pleural effusion", "Nodule"}
	types := []Code{
		{Value: "50196008", Scheme: "SCT", Meaning: "Perihilar opacity"},
		{Value: "60046008", Scheme: "SCT", Meaning: "Pleural effusion"},
		{Value: "27925004", Scheme: "SCT", Meaning: "Nodule"},
	}
	for i := 0; i < segs; i++ {
		d.Segments = append(d.Segments, Segment{
			Number:   i + 1,
			Label:    labels[i%len(labels)],
			Category: Code{Value: "49755003", Scheme: "SCT", Meaning: "Morphologically Abnormal Structure"},
			Type:     types[i%len(types)],
		})
	}
	return d
}

// segCase is one SEG the conformance tests build and check.
type segCase struct {
	name  string
	src   *dicomio.Series
	masks Masks
	desc  Description
	// packed: encode from BitMasks (naivePack of masks) instead of masks.
	packed bool
}

// input is the MaskSet the case is encoded from.
func (c segCase) input() MaskSet {
	if c.packed {
		return naivePack(c.masks, c.src.Rows*c.src.Columns)
	}
	return c.masks
}

// naivePack packs byte masks into BitMasks one pixel at a time (the
// reference, independent of PackFrame), and sets the unused bits of a
// last partial byte to 1: the encoder must ignore them.
func naivePack(m Masks, n int) BitMasks {
	out := make(BitMasks, len(m))
	for s := range m {
		out[s] = make([][]byte, len(m[s]))
		for f, fr := range m[s] {
			if fr == nil {
				continue
			}
			b := make([]byte, (n+7)/8)
			for i, v := range fr {
				if v != 0 {
					b[i/8] |= 1 << (i % 8)
				}
			}
			if r := n % 8; r != 0 {
				b[len(b)-1] |= 0xFF << r
			}
			out[s][f] = b
		}
	}
	return out
}

func conformanceCases(t *testing.T) []segCase {
	t.Helper()
	ctEmpty := map[int]bool{0: true, 1: true, 7: true}
	frac := testDescription(2)
	frac.Type = Fractional
	cases := []segCase{
		{"cr-binary", crSeries(1, 63, 77), discMasks(2, 1, 63, 77, nil, false), testDescription(2), false},
		{"cr-fractional", crSeries(2, 40, 33), discMasks(1, 2, 40, 33, nil, true), func() Description {
			d := testDescription(1)
			d.Type = Fractional
			return d
		}(), false},
		{"ct-binary-empty-omitted", ctSeries(9, 37, 41), discMasks(2, 9, 37, 41, ctEmpty, false), testDescription(2), false},
		{"ct-fractional", ctSeries(6, 30, 29), discMasks(2, 6, 30, 29, map[int]bool{5: true}, true), frac, false},
		{"enhanced-ct-binary", enhancedCTSeries(7, 33, 35), discMasks(1, 7, 33, 35, map[int]bool{0: true}, false), testDescription(1), false},
		{"cr-anonymised-source", func() *dicomio.Series {
			s := crSeries(1, 24, 24)
			s.PatientStudy = dicomio.PatientStudy{StudyInstanceUID: s.StudyInstanceUID}
			return s
		}(), discMasks(1, 1, 24, 24, nil, false), testDescription(1), false},
		{"ct-all-empty", ctSeries(4, 16, 16), discMasks(1, 4, 16, 16, map[int]bool{0: true, 1: true, 2: true, 3: true}, false), testDescription(1), false},
	}
	// Every BINARY case again from bit-packed masks (the production path).
	for _, c := range cases[:len(cases):len(cases)] {
		if c.desc.Type != Fractional {
			c.name += "-packed"
			c.packed = true
			cases = append(cases, c)
		}
	}
	return cases
}
