package archive

import (
	"fmt"
	"testing"

	"tmcad/dicomio"
	"tmcad/writer"
)

// Test fixtures: a one-frame radiograph and a three-slice CT series built
// by hand, each with a square mask, and what the writer makes from them
// (the SEG, its measurement report, its overlay) for the sinks to store.

// segCase is one source series with its mask, description and
// measurements.
type segCase struct {
	name  string
	src   *dicomio.Series
	masks writer.Masks
	desc  writer.Description
	ms    []writer.Measurement
}

// input is the MaskSet the SEG is encoded from.
func (c segCase) input() writer.MaskSet { return c.masks }

// handSeries is a series of frames square frames of size pixels; ct gives
// it patient geometry (slices), otherwise it is a projection radiograph.
func handSeries(uid int, ct bool, frames, size int) *dicomio.Series {
	root := fmt.Sprintf("2.25.77%d", uid)
	s := &dicomio.Series{
		PatientStudy:      dicomio.PatientStudy{StudyInstanceUID: root + ".1", PatientID: "PID-ARCHIVE", StudyDate: "20240102"},
		SeriesInstanceUID: root + ".2",
		SeriesNumber:      1,
		Modality:          "CR",
		BodyPartExamined:  "CHEST",
		Photometric:       "MONOCHROME2",
		Rows:              size,
		Columns:           size,
		PixelSpacing:      [2]float64{0.5, 0.5},
	}
	class := "1.2.840.10008.5.1.4.1.1.1" // CR Image Storage
	if ct {
		class = "1.2.840.10008.5.1.4.1.1.2" // CT Image Storage
		s.Modality, s.HasGeometry = "CT", true
		s.Orientation = [6]float64{1, 0, 0, 0, 1, 0}
		s.SliceThickness, s.SpacingBetweenSlices = 2, 2
		s.FrameOfReferenceUID = root + ".3"
	} else {
		s.PatientOrientation = []string{"P", "F"}
	}
	for i := range frames {
		s.Frames = append(s.Frames, dicomio.Frame{
			Pixels:         make([]float32, size*size),
			SOPInstanceUID: fmt.Sprintf("%s.4.%d", root, i+1),
			SOPClassUID:    class,
			FrameNumber:    1,
			Position:       dicomio.Vec3{0, 0, 2 * float64(i)},
			InstanceNumber: i + 1,
		})
	}
	return s
}

// squareMasks marks the middle half of every frame of s, for one segment.
func squareMasks(s *dicomio.Series) writer.Masks {
	frames := make([][]uint8, len(s.Frames))
	for f := range frames {
		m := make([]uint8, s.Rows*s.Columns)
		for y := s.Rows / 4; y < 3*s.Rows/4; y++ {
			for x := s.Columns / 4; x < 3*s.Columns/4; x++ {
				m[y*s.Columns+x] = 1
			}
		}
		frames[f] = m
	}
	return writer.Masks{frames}
}

// testDescription describes one lesion segment with a finding site.
func testDescription() writer.Description {
	return writer.Description{
		SeriesDescription:     "TMCA segmentation",
		Manufacturer:          "tmcad",
		ManufacturerModelName: "tmcad TMCA",
		ContentCreatorName:    "TMCAD^Daemon",
		SoftwareVersions:      "tmcad test",
		ModelName:             "tmca-test",
		ModelVersion:          "1.0.0",
		Segments: []writer.Segment{{
			Number:   1,
			Label:    "Lesion",
			Category: writer.Code{Value: "49755003", Scheme: "SCT", Meaning: "Morphologically Abnormal Structure"},
			Type:     writer.Code{Value: "52988006", Scheme: "SCT", Meaning: "Lesion"},
			Site:     &writer.Code{Value: "39607008", Scheme: "SCT", Meaning: "Lung structure"},
		}},
	}
}

// testCases are the radiograph (an area) and the CT series (a volume).
func testCases(t *testing.T) []segCase {
	t.Helper()
	cr, ct := handSeries(1, false, 1, 24), handSeries(2, true, 3, 16)
	return []segCase{
		{name: "cr", src: cr, masks: squareMasks(cr), desc: testDescription(), ms: []writer.Measurement{{Segment: 1, Quantity: writer.Area, Value: 36}}},
		{name: "ct", src: ct, masks: squareMasks(ct), desc: testDescription(), ms: []writer.Measurement{{Segment: 1, Quantity: writer.Volume, Value: 0.096}}},
	}
}

// testSEG encodes the radiograph's SEG.
func testSEG(t *testing.T) *writer.SEG {
	t.Helper()
	c := testCases(t)[0]
	seg, err := writer.EncodeSEG(c.src, c.input(), c.desc)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}
