package writer

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tmcad/dicomio"
	"tmcad/internal/testpeers"
)

// companionCase is a SEG with its measurement report and overlay.
type companionCase struct {
	name string
	c    segCase
	ms   []Measurement
}

// companionCases: a radiograph (one frame, areas) and a CT series (several
// slices, volumes), each with a finding site on its segments.
func companionCases(t *testing.T) []companionCase {
	t.Helper()
	cases := conformanceCases(t)
	site := &Code{Value: "39607008", Scheme: "SCT", Meaning: "Lung structure"}
	out := []companionCase{
		{name: "cr", c: cases[0], ms: []Measurement{{1, Area, 1234.5}, {2, Area, 0}}},
		{name: "ct", c: cases[2], ms: []Measurement{{1, Volume, 12.3456789}, {2, Volume, 0.5}}},
	}
	for i := range out {
		out[i].c.desc.Segments = append([]Segment(nil), out[i].c.desc.Segments...)
		for k := range out[i].c.desc.Segments {
			out[i].c.desc.Segments[k].Site = site
		}
	}
	return out
}

// runValidator runs dciodvfy on path and returns its Error lines and
// whether it named the IOD.
func runValidator(t *testing.T, path, iod string) (errs []string, out string) {
	t.Helper()
	bin := testpeers.RequireTool(t, "dciodvfy")
	b, _ := exec.Command(bin, "-new", path).CombinedOutput() // exit status is not meaningful
	out = string(b)
	saw := false
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == iod {
			saw = true
		}
		if strings.HasPrefix(l, "Error") {
			errs = append(errs, l)
		}
	}
	if !saw {
		errs = append(errs, "dciodvfy did not recognise the file as "+iod)
	}
	return errs, out
}

func TestMeasurementReportValidates(t *testing.T) {
	dir := t.TempDir()
	for _, cc := range companionCases(t) {
		t.Run(cc.name, func(t *testing.T) {
			seg, err := EncodeSEG(cc.c.src, cc.c.input(), cc.c.desc)
			if err != nil {
				t.Fatal(err)
			}
			sr, err := EncodeSR(cc.c.src, seg, cc.ms, cc.c.desc)
			if err != nil {
				t.Fatalf("EncodeSR: %v", err)
			}
			p := filepath.Join(dir, cc.name+"-sr.dcm")
			if err := os.WriteFile(p, sr.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			if errs, out := runValidator(t, p, "ComprehensiveSR"); len(errs) > 0 {
				t.Errorf("dciodvfy: %d errors:\n%s", len(errs), out)
			}
			dsr := testpeers.RequireTool(t, "dsrdump")
			out, err := exec.Command(dsr, p).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Imaging Measurement Report") {
				t.Errorf("dsrdump: %v\n%s", err, out)
			}
			// The same inputs give the same report.
			again, err := EncodeSR(cc.c.src, seg, cc.ms, cc.c.desc)
			if err != nil || !bytes.Equal(again.Data, sr.Data) {
				t.Errorf("a second encoding differs (err %v)", err)
			}
		})
	}
}

// srReadback is what the pydicom script reads from a measurement report.
type srReadback struct {
	SOPClass string `json:"sop_class"`
	Study    string `json:"study"`
	Groups   []struct {
		Tracking    string  `json:"tracking"`
		TrackingUID string  `json:"tracking_uid"`
		Finding     string  `json:"finding"`
		Site        string  `json:"site"`
		Algorithm   string  `json:"algorithm"`
		Version     string  `json:"version"`
		SEG         string  `json:"seg"`
		Segment     int     `json:"segment"`
		Source      string  `json:"source"`
		Quantity    string  `json:"quantity"`
		Unit        string  `json:"unit"`
		Value       float64 `json:"value"`
	} `json:"groups"`
	Library int `json:"library"`
}

// readSRWithPydicom reads a measurement report's groups with pydicom.
func readSRWithPydicom(t *testing.T, path string) srReadback {
	t.Helper()
	py := testpeers.RequireTool(t, "/usr/bin/python3")
	script := `
import json, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
def name(it): return it.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in it else ""
out = {"sop_class": ds.SOPClassUID, "study": ds.StudyInstanceUID, "groups": [], "library": 0}
for it in ds.ContentSequence:
    if name(it) == "Image Library":
        out["library"] = len(it.ContentSequence[0].ContentSequence)
    if name(it) != "Imaging Measurements":
        continue
    for g in it.ContentSequence:
        r = {}
        for c in g.ContentSequence:
            n = name(c)
            if n == "Tracking Identifier": r["tracking"] = c.TextValue
            elif n == "Tracking Unique Identifier": r["tracking_uid"] = c.UID
            elif n == "Finding": r["finding"] = c.ConceptCodeSequence[0].CodeValue
            elif n == "Finding Site": r["site"] = c.ConceptCodeSequence[0].CodeValue
            elif n == "Algorithm Name": r["algorithm"] = c.TextValue
            elif n == "Algorithm Version": r["version"] = c.TextValue
            elif n == "Referenced Segment":
                ref = c.ReferencedSOPSequence[0]
                r["seg"] = ref.ReferencedSOPInstanceUID
                r["segment"] = int(ref.ReferencedSegmentNumber)
            elif n == "Source series for segmentation": r["source"] = c.UID
            elif c.ValueType == "NUM":
                r["quantity"] = n
                mv = c.MeasuredValueSequence[0]
                r["unit"] = mv.MeasurementUnitsCodeSequence[0].CodeValue
                r["value"] = float(mv.NumericValue)
        out["groups"].append(r)
print(json.dumps(out))
`
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("pydicom: %v\n%s", err, stderrOf(err))
	}
	var r srReadback
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("pydicom output: %v\n%s", err, out)
	}
	return r
}

// stderrOf is what a failed command wrote to stderr.
func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

func TestMeasurementReportReadByPydicom(t *testing.T) {
	dir := t.TempDir()
	for _, cc := range companionCases(t) {
		seg, err := EncodeSEG(cc.c.src, cc.c.input(), cc.c.desc)
		if err != nil {
			t.Fatal(err)
		}
		sr, err := EncodeSR(cc.c.src, seg, cc.ms, cc.c.desc)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, cc.name+".dcm")
		if err := os.WriteFile(p, sr.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := readSRWithPydicom(t, p)
		if r.SOPClass != ComprehensiveSRStorage || r.Study != cc.c.src.StudyInstanceUID {
			t.Errorf("%s: class %s study %s", cc.name, r.SOPClass, r.Study)
		}
		if r.Library != len(cc.c.src.Frames) {
			t.Errorf("%s: image library lists %d images, want %d", cc.name, r.Library, len(cc.c.src.Frames))
		}
		if len(r.Groups) != len(cc.ms) {
			t.Fatalf("%s: %d measurement groups, want %d", cc.name, len(r.Groups), len(cc.ms))
		}
		for i, g := range r.Groups {
			s, m := cc.c.desc.Segments[i], cc.ms[i]
			wantQ, wantU := "Area", "mm2"
			if m.Quantity == Volume {
				wantQ, wantU = "Volume", "ml"
			}
			if g.Tracking != s.Label || g.Finding != s.Type.Value || g.Site != s.Site.Value ||
				g.Algorithm != DefaultAlgorithmName || g.Version != cc.c.desc.ModelVersion ||
				g.SEG != seg.SOPInstanceUID || g.Segment != s.Number || g.Source != cc.c.src.SeriesInstanceUID ||
				g.Quantity != wantQ || g.Unit != wantU || !strings.HasPrefix(g.TrackingUID, "2.25.") {
				t.Errorf("%s: group %d = %+v", cc.name, i+1, g)
			}
			if math.Abs(g.Value-m.Value) > 1e-9*math.Max(1, m.Value) {
				t.Errorf("%s: group %d value %v, want %v", cc.name, i+1, g.Value, m.Value)
			}
		}
	}
}

func TestMeasurementReportRejects(t *testing.T) {
	cc := companionCases(t)[0]
	seg, err := EncodeSEG(cc.c.src, cc.c.input(), cc.c.desc)
	if err != nil {
		t.Fatal(err)
	}
	for name, ms := range map[string][]Measurement{
		"missing segment": {{1, Area, 1}},
		"unknown segment": {{1, Area, 1}, {3, Area, 1}},
		"twice":           {{1, Area, 1}, {1, Area, 2}},
		"negative":        {{1, Area, -1}, {2, Area, 1}},
		"nan":             {{1, Area, math.NaN()}, {2, Area, 1}},
		"bad quantity":    {{1, "length", 1}, {2, Area, 1}},
	} {
		if _, err := EncodeSR(cc.c.src, seg, ms, cc.c.desc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	other := *seg
	other.StudyInstanceUID = "2.25.1"
	if _, err := EncodeSR(cc.c.src, &other, cc.ms, cc.c.desc); err == nil || !strings.Contains(err.Error(), "study") {
		t.Errorf("SEG of another study: %v", err)
	}
}

// boundary is the test's own outline: a mask pixel whose 3×3 cross
// (itself and its four neighbours, off the image counting as outside) is
// not wholly inside the mask, i.e. the mask less its erosion.
func boundary(mask []byte, rows, cols int) map[int]bool {
	inside := func(y, x int) bool {
		return y >= 0 && x >= 0 && y < rows && x < cols && mask[y*cols+x] != 0
	}
	out := map[int]bool{}
	for y := 0; y < rows; y++ {
		for x := 0; x < cols; x++ {
			eroded := inside(y, x) && inside(y-1, x) && inside(y+1, x) && inside(y, x-1) && inside(y, x+1)
			if inside(y, x) && !eroded {
				out[y*cols+x] = true
			}
		}
	}
	return out
}

// readOverlayWithPydicom returns the overlay's pixels (frames × rows ×
// cols, flattened) and the attributes the test checks.
func readOverlayWithPydicom(t *testing.T, path string) (map[string]string, []byte) {
	t.Helper()
	py := testpeers.RequireTool(t, "/usr/bin/python3")
	script := `
import json, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
a = ds.pixel_array
attrs = {k: str(ds.get(k, "")) for k in ("SOPClassUID", "StudyInstanceUID", "SeriesDescription", "ImageComments", "Modality", "NumberOfFrames")}
attrs["ImageType"] = "\\".join(ds.ImageType)
sys.stdout.write(json.dumps(attrs) + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(a.astype("uint8").tobytes())
`
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("pydicom: %v\n%s", err, stderrOf(err))
	}
	line, px, _ := bytes.Cut(out, []byte("\n"))
	var attrs map[string]string
	if err := json.Unmarshal(line, &attrs); err != nil {
		t.Fatalf("pydicom output: %v", err)
	}
	return attrs, px
}

func TestOverlayOutlineMatchesMaskBoundary(t *testing.T) {
	dir := t.TempDir()
	for _, cc := range companionCases(t) {
		t.Run(cc.name, func(t *testing.T) {
			src, masks := cc.c.src, cc.c.masks
			ov, err := EncodeOverlay(src, masks, cc.c.desc)
			if err != nil {
				t.Fatalf("EncodeOverlay: %v", err)
			}
			p := filepath.Join(dir, cc.name+"-overlay.dcm")
			if err := os.WriteFile(p, ov.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			iod, class := "SCImage", SecondaryCaptureImageStorage
			if len(src.Frames) > 1 {
				iod, class = "MultiframeGrayscaleByteSCImage", MultiFrameGrayscaleByteSCStorage
			}
			if errs, out := runValidator(t, p, iod); len(errs) > 0 {
				t.Errorf("dciodvfy: %d errors:\n%s", len(errs), out)
			}
			attrs, px := readOverlayWithPydicom(t, p)
			if attrs["SOPClassUID"] != class || ov.SOPClassUID != class || attrs["StudyInstanceUID"] != src.StudyInstanceUID ||
				!strings.Contains(attrs["SeriesDescription"], NotForDiagnosis) || !strings.Contains(attrs["ImageComments"], NotForDiagnosis) ||
				!strings.HasPrefix(attrs["ImageType"], "DERIVED") {
				t.Errorf("attributes %v", attrs)
			}
			n := src.Rows * src.Columns
			if len(px) != len(src.Frames)*n {
				t.Fatalf("%d pixels, want %d", len(px), len(src.Frames)*n)
			}
			outlined := 0
			for f := range src.Frames {
				want := map[int]bool{}
				for s := range masks {
					if masks[s][f] != nil {
						for k := range boundary(masks[s][f], src.Rows, src.Columns) {
							want[k] = true
						}
					}
				}
				outlined += len(want)
				for k := 0; k < n; k++ {
					if got := px[f*n+k] == OutlineValue; got != want[k] {
						t.Fatalf("frame %d pixel (%d,%d): outline %v, boundary %v", f, k/src.Columns, k%src.Columns, got, want[k])
					}
				}
				// Off the outline, the image is the preview's rendering.
				grey := windowFrame(src.Frames[f].Pixels, src.Monochrome1)
				for k := 0; k < n; k++ {
					if !want[k] && px[f*n+k] != min(grey[k], OutlineValue-1) {
						t.Fatalf("frame %d pixel %d: %d, the preview renders %d", f, k, px[f*n+k], grey[k])
					}
				}
			}
			if outlined == 0 {
				t.Fatal("no outline at all: the case tests nothing")
			}
			again, err := EncodeOverlay(src, masks, cc.c.desc)
			if err != nil || !bytes.Equal(again.Data, ov.Data) || again.SOPInstanceUID != ov.SOPInstanceUID {
				t.Errorf("a second encoding differs (err %v)", err)
			}
		})
	}
}

func TestOverlayNeedsDecodedPixels(t *testing.T) {
	cc := companionCases(t)[0]
	src := *cc.c.src
	src.Frames = append([]dicomio.Frame(nil), src.Frames...)
	src.Frames[0].Pixels = nil
	if _, err := EncodeOverlay(&src, cc.c.masks, cc.c.desc); err == nil || !strings.Contains(err.Error(), "decoded pixels") {
		t.Errorf("source without pixels: %v", err)
	}
	if _, err := EncodeOverlay(cc.c.src, cc.c.masks[:1], cc.c.desc); err == nil {
		t.Error("masks of too few segments accepted")
	}
}
