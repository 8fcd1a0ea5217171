package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tmcad/internal/testpeers"
)

// srAndOverlay is what pydicom reads from a measurement report and an
// overlay: the report's measurement and references, the overlay's source
// instances in frame order; the overlay's pixels follow on stdout.
const srAndOverlay = `
import json, sys, pydicom
sr = pydicom.dcmread(sys.argv[1])
ov = pydicom.dcmread(sys.argv[2])
def name(it): return it.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in it else ""
out = {"groups": [], "sources": [s.ReferencedSOPInstanceUID for s in ov.SourceImageSequence],
       "rows": int(ov.Rows), "cols": int(ov.Columns), "comments": str(ov.ImageComments)}
for it in sr.ContentSequence:
    if name(it) == "Imaging Measurements":
        for g in it.ContentSequence:
            r = {}
            for c in g.ContentSequence:
                if name(c) == "Referenced Segment": r["seg"] = c.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                if c.ValueType == "NUM":
                    r["quantity"] = name(c)
                    r["unit"] = c.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue
                    r["value"] = float(c.MeasuredValueSequence[0].NumericValue)
            out["groups"].append(r)
sys.stdout.write(json.dumps(out) + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(ov.pixel_array.astype("uint8").tobytes())
`

// TestProcessWritesSRAndOverlay: `tmcad process --sr --overlay` on the
// example studies (radiographs and CT series) with the shipped model
// stores a SEG, a measurement report and an overlay per series, lists all
// three in its summary, and each passes dciodvfy; the report's value is
// the summary's area (mm²) or volume (mL) and refers to the SEG; the
// overlay's outline is exactly the boundary of the masks the run wrote.
func TestProcessWritesSRAndOverlay(t *testing.T) {
	dir := t.TempDir()
	archive, masks := filepath.Join(dir, "archive"), filepath.Join(dir, "masks")
	code, out, errs := runCLI(t, "process", "--input", repoRoot+"/examples/dicom", "--reports", repoRoot+"/examples/reports",
		"--archive", archive, "--model", shippedModel, "--masks-png", masks, "--sr", "--overlay")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	sum := readSummary(t, masks)
	dciodvfy := testpeers.RequireTool(t, "dciodvfy")
	dsrdump := testpeers.RequireTool(t, "dsrdump")
	py := testpeers.RequireTool(t, "/usr/bin/python3")
	mods := map[string]int{}
	for _, s := range sum {
		mods[s.Modality]++
		if len(s.Objects) != 3 || s.Objects[0].Kind != "SEG" || s.Objects[1].Kind != "SR" || s.Objects[2].Kind != "overlay" {
			t.Fatalf("series %s: objects %+v, want SEG, SR, overlay", s.SeriesUID, s.Objects)
		}
		for _, o := range s.Objects {
			if !strings.Contains(out, o.Output) {
				t.Errorf("the summary table does not list %s %s", o.Kind, o.Output)
			}
			v, _ := exec.Command(dciodvfy, "-new", o.Output).CombinedOutput()
			for _, l := range strings.Split(string(v), "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "Error") {
					t.Errorf("%s %s: dciodvfy: %s", s.Modality, o.Kind, l)
				}
			}
		}
		if dump, err := exec.Command(dsrdump, s.Objects[1].Output).CombinedOutput(); err != nil || !bytes.Contains(dump, []byte("Imaging Measurement Report")) {
			t.Errorf("%s: dsrdump: %v\n%s", s.Modality, err, dump)
		}

		res, err := exec.Command(py, "-c", srAndOverlay, s.Objects[1].Output, s.Objects[2].Output).Output()
		if err != nil {
			t.Fatalf("pydicom: %v", err)
		}
		line, px, _ := bytes.Cut(res, []byte("\n"))
		var r struct {
			Groups []struct {
				SEG, Quantity, Unit string
				Value               float64
			}
			Sources    []string
			Rows, Cols int
			Comments   string
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Groups) != 1 || r.Groups[0].SEG != s.Objects[0].SOPInstanceUID {
			t.Fatalf("%s: measurement groups %+v", s.Modality, r.Groups)
		}
		g := r.Groups[0]
		want, quantity, unit := s.AreaMM2, "Area", "mm2"
		if s.Modality == "CT" {
			want, quantity, unit = s.VolumeML, "Volume", "ml"
		}
		if g.Quantity != quantity || g.Unit != unit || math.Abs(g.Value-want) > 1e-9*math.Max(1, want) || want <= 0 {
			t.Errorf("%s series %s: report says %s %v %s, the summary %s %v %s", s.Modality, s.SeriesUID, g.Quantity, g.Value, g.Unit, quantity, want, unit)
		}

		if !strings.Contains(r.Comments, "NOT FOR DIAGNOSIS") {
			t.Errorf("%s: overlay comments %q", s.Modality, r.Comments)
		}
		files := map[string]string{}
		for _, m := range s.Masks {
			files[m.SOPInstanceUID] = m.File
		}
		n := r.Rows * r.Cols
		if len(px) != len(r.Sources)*n || len(r.Sources) != len(s.Masks) {
			t.Fatalf("%s: overlay of %d frames (%d bytes), %d masks", s.Modality, len(r.Sources), len(px), len(s.Masks))
		}
		outlined := 0
		for f, sop := range r.Sources {
			edge := maskBoundary(t, filepath.Join(masks, files[sop]))
			for k := 0; k < n; k++ {
				if got := px[f*n+k] == 255; got != edge[k] {
					t.Fatalf("%s frame %d pixel (%d,%d): outline %v, mask boundary %v", s.Modality, f, k/r.Cols, k%r.Cols, got, edge[k])
				}
				if edge[k] {
					outlined++
				}
			}
		}
		if outlined == 0 {
			t.Errorf("%s series %s: nothing outlined", s.Modality, s.SeriesUID)
		}
	}
	if mods["CR"] == 0 || mods["CT"] == 0 {
		t.Fatalf("examples by modality %v, want CR and CT", mods)
	}
}

// maskBoundary reads a 0/255 mask PNG and returns its boundary: the mask
// pixels that are not in its erosion by a 3×3 cross (outside the image
// counts as off).
func maskBoundary(t *testing.T, path string) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	g := img.(*image.Gray)
	rows, cols := g.Rect.Dy(), g.Rect.Dx()
	in := func(y, x int) bool { return y >= 0 && x >= 0 && y < rows && x < cols && g.Pix[y*g.Stride+x] != 0 }
	out := make([]bool, rows*cols)
	for y := 0; y < rows; y++ {
		for x := 0; x < cols; x++ {
			out[y*cols+x] = in(y, x) && !(in(y-1, x) && in(y+1, x) && in(y, x-1) && in(y, x+1))
		}
	}
	return out
}
