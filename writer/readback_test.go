package writer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"tmcad/internal/testpeers"
)

// expectedFrames lists the SEG frames a case should produce, computed from
// the masks independently of the encoder: by segment, then source frame,
// empty ones left out (one empty frame when all are empty).
func expectedFrames(c segCase) (idx []segFrame, pixels [][]byte) {
	n := c.src.Rows * c.src.Columns
	for s := range c.masks {
		for f, fr := range c.masks[s] {
			nonEmpty := false
			for _, v := range fr {
				if v != 0 {
					nonEmpty = true
					break
				}
			}
			if !nonEmpty && !c.desc.KeepEmptyFrames {
				continue
			}
			idx = append(idx, segFrame{s, f})
			px := make([]byte, n)
			for i, v := range fr {
				if c.desc.Type == Fractional {
					px[i] = v
				} else if v != 0 {
					px[i] = 1
				}
			}
			pixels = append(pixels, px)
		}
	}
	if len(idx) == 0 {
		idx = []segFrame{{0, 0}}
		pixels = [][]byte{make([]byte, n)}
	}
	return idx, pixels
}

type pydicomSummary struct {
	SOPClass string `json:"sop_class"`
	Modality string `json:"modality"`
	Type     string `json:"type"`
	Patient  string `json:"patient_name"`
	Frames   []struct {
		Segment  int         `json:"segment"`
		SOP      string      `json:"sop"`
		Frame    *int        `json:"frame"`
		DimIndex []int       `json:"dimension_index"`
		Position *[3]float64 `json:"position"`
	} `json:"frames"`
	Segments   []int `json:"segments"`
	Referenced []struct {
		Series    string   `json:"series"`
		Instances []string `json:"instances"`
	} `json:"referenced_series"`
	TransferSyntax string `json:"transfer_syntax"`
}

// TestPydicomReadBack: pydicom reads every conformance SEG, and the masks it
// unpacks equal what was encoded.
func TestPydicomReadBack(t *testing.T) {
	py := testpeers.RequireTool(t, "/usr/bin/python3")
	if out, err := exec.Command(py, "-c", "import pydicom, numpy").CombinedOutput(); err != nil {
		t.Fatalf("pydicom/numpy not importable by /usr/bin/python3 (%v: %s): run `make deps`", err, out)
	}
	dir := t.TempDir()
	for _, c := range conformanceCases(t) {
		t.Run(c.name, func(t *testing.T) {
			seg, err := EncodeSEG(c.src, c.input(), c.desc)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, c.name+".dcm")
			raw := filepath.Join(dir, c.name+".raw")
			if err := os.WriteFile(p, seg.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, filepath.Join("testdata", "read_seg.py"), p, raw).Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("read_seg.py: %v\n%s", err, stderr)
			}
			var sum pydicomSummary
			if err := json.Unmarshal(out, &sum); err != nil {
				t.Fatalf("read_seg.py output: %v\n%s", err, out)
			}
			idx, want := expectedFrames(c)
			if sum.SOPClass != SegmentationStorage || sum.Modality != "SEG" || sum.TransferSyntax != explicitVRLittleEndian {
				t.Errorf("class/modality/syntax = %s/%s/%s", sum.SOPClass, sum.Modality, sum.TransferSyntax)
			}
			wantType := string(c.desc.Type)
			if wantType == "" {
				wantType = "BINARY"
			}
			if sum.Type != wantType {
				t.Errorf("SegmentationType = %s, want %s", sum.Type, wantType)
			}
			if sum.Patient != c.src.PatientName {
				t.Errorf("PatientName not copied faithfully (got %d bytes, want %d)", len(sum.Patient), len(c.src.PatientName))
			}
			if len(sum.Segments) != len(c.desc.Segments) {
				t.Errorf("%d segments described, want %d (every segment, even empty ones)", len(sum.Segments), len(c.desc.Segments))
			}
			if len(sum.Frames) != len(idx) || seg.NumberOfFrames != len(idx) {
				t.Fatalf("%d frames (SEG says %d), want %d", len(sum.Frames), seg.NumberOfFrames, len(idx))
			}
			multi := multiFrameSources(c.src)
			for i, f := range sum.Frames {
				sf := idx[i]
				srcF := c.src.Frames[sf.frame]
				if f.Segment != sf.segment+1 || f.SOP != srcF.SOPInstanceUID || f.DimIndex[0] != sf.segment+1 {
					t.Errorf("frame %d: segment %d sop %s dim %v, want segment %d sop %s", i, f.Segment, f.SOP, f.DimIndex, sf.segment+1, srcF.SOPInstanceUID)
				}
				if multi[srcF.SOPInstanceUID] && (f.Frame == nil || *f.Frame != srcF.FrameNumber) {
					t.Errorf("frame %d: ReferencedFrameNumber %v, want %d", i, f.Frame, srcF.FrameNumber)
				}
				if c.src.HasGeometry {
					if f.Position == nil || *f.Position != [3]float64(srcF.Position) {
						t.Errorf("frame %d: position %v, want %v", i, f.Position, srcF.Position)
					}
				} else if f.Position != nil {
					t.Errorf("frame %d: PlanePosition present on a source without geometry", i)
				}
			}
			var instances []string
			seen := map[string]bool{}
			for _, f := range c.src.Frames {
				if !seen[f.SOPInstanceUID] {
					seen[f.SOPInstanceUID] = true
					instances = append(instances, f.SOPInstanceUID)
				}
			}
			if len(sum.Referenced) != 1 || sum.Referenced[0].Series != c.src.SeriesInstanceUID ||
				strings.Join(sum.Referenced[0].Instances, ",") != strings.Join(instances, ",") {
				t.Errorf("ReferencedSeriesSequence = %+v, want series %s with %d instances", sum.Referenced, c.src.SeriesInstanceUID, len(instances))
			}
			got, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, bytes.Join(want, nil)) {
				t.Errorf("pydicom's unpacked pixels differ from the encoded masks (%d vs %d bytes)", len(got), len(bytes.Join(want, nil)))
			}
		})
	}
}

// TestDcmdumpParses: dcmtk parses every SEG without complaint.
func TestDcmdumpParses(t *testing.T) {
	bin := testpeers.RequireTool(t, "dcmdump")
	dir := t.TempDir()
	for _, c := range conformanceCases(t) {
		seg, err := EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, c.name+".dcm")
		if err := os.WriteFile(p, seg.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-q", "+E", "-dc", p).CombinedOutput()
		if err != nil {
			t.Errorf("%s: dcmdump failed: %v\n%s", c.name, err, out)
			continue
		}
		if !strings.Contains(string(out), "SegmentationStorage") || strings.Contains(string(out), "E: ") || strings.Contains(string(out), "W: ") {
			t.Errorf("%s: dcmdump output unexpected:\n%s", c.name, out)
		}
	}
}

// TestElementsSortedAtEveryLevel parses the SEG back and checks that tags
// ascend at the top level and inside every sequence item.
func TestElementsSortedAtEveryLevel(t *testing.T) {
	for _, c := range conformanceCases(t) {
		seg, err := EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := dicom.Parse(bytes.NewReader(seg.Data), int64(len(seg.Data)), nil, dicom.SkipProcessingPixelDataValue())
		if err != nil {
			t.Fatalf("%s: parse: %v", c.name, err)
		}
		var check func(path string, elems []*dicom.Element)
		check = func(path string, elems []*dicom.Element) {
			for i := 1; i < len(elems); i++ {
				if !tagLess(elems[i-1].Tag, elems[i].Tag) {
					t.Errorf("%s: %s: %v before %v", c.name, path, elems[i-1].Tag, elems[i].Tag)
				}
			}
			for _, e := range elems {
				if e.Value != nil && e.Value.ValueType() == dicom.Sequences {
					for j, it := range e.Value.GetValue().([]*dicom.SequenceItemValue) {
						check(fmt.Sprintf("%s/%v[%d]", path, e.Tag, j), it.GetValue().([]*dicom.Element))
					}
				}
			}
		}
		check("", ds.Elements)
		px, err := ds.FindElementByTag(tag.PixelData)
		if err != nil {
			t.Fatalf("%s: no PixelData: %v", c.name, err)
		}
		if n := len(dicom.MustGetPixelDataInfo(px.Value).UnprocessedValueData); n%2 != 0 {
			t.Errorf("%s: PixelData length %d is odd", c.name, n)
		}
	}
}
