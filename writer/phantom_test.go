package writer

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"tmcad/dicomio"
	"tmcad/internal/testpeers"
)

// TestPhantomEndToEnd: phantom CR and CT studies written by
// tmca.dicom_writer, loaded by dicomio.LoadSeries, segmented with their
// ground-truth masks, encoded, validated by dciodvfy and previewed. This is
// the path the daemon takes, with real source attributes.
func TestPhantomEndToEnd(t *testing.T) {
	py := testpeers.RequireTool(t, "/usr/bin/python3")
	out := t.TempDir()
	cmd := exec.Command(py, "-m", "tmca.dicom_writer", "--seed", "7", "--cr", "1", "--ct", "1", "--out", out)
	cmd.Dir = ".." // repository root, where the tmca package is
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmca.dicom_writer failed (%v); run `make deps`:\n%s", err, b)
	}
	var cases struct {
		Series []struct {
			Modality string   `json:"modality"`
			Files    []string `json:"files"`
		} `json:"series"`
	}
	b, err := os.ReadFile(filepath.Join(out, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	rules := loadAllowList(t)
	for _, c := range cases.Series {
		paths := make([]string, len(c.Files))
		for i, f := range c.Files {
			paths[i] = filepath.Join(out, f)
		}
		src, err := dicomio.LoadSeries(paths, dicomio.DefaultLimits())
		if err != nil {
			t.Fatalf("%s: LoadSeries: %v", c.Modality, err)
		}
		masks := Masks{make([][]byte, len(src.Frames))}
		for i, f := range src.Frames {
			masks[0][i] = truthMask(t, filepath.Join(out, "truth", f.SOPInstanceUID+".png"), src.Rows, src.Columns)
		}
		seg, err := EncodeSEG(src, masks, testDescription(1))
		if err != nil {
			t.Fatalf("%s: EncodeSEG: %v", c.Modality, err)
		}
		p := filepath.Join(out, c.Modality+"-seg.dcm")
		if err := os.WriteFile(p, seg.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		errs, warns, log := runDciodvfy(t, p)
		if len(errs) > 0 {
			t.Errorf("%s: dciodvfy errors:\n%s", c.Modality, log)
		}
	next:
		for _, w := range warns {
			for _, r := range rules {
				if r.re.MatchString(w) {
					continue next
				}
			}
			t.Errorf("%s: dciodvfy warning not in the allow-list: %s", c.Modality, w)
		}
		if err := WritePreviewFile(p, src, filepath.Join(out, c.Modality+".png")); err != nil {
			t.Errorf("%s: preview: %v", c.Modality, err)
		}
		if c.Modality == "CT" && !src.HasGeometry {
			t.Errorf("CT phantom loaded without geometry")
		}
	}
}

// truthMask reads a ground-truth PNG (0/255) as a 0/1 mask; a missing file
// is an empty mask.
func truthMask(t *testing.T, path string, rows, cols int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if img.Bounds() != image.Rect(0, 0, cols, rows) {
		t.Fatalf("%s: truth is %v, source %dx%d", path, img.Bounds(), cols, rows)
	}
	m := make([]byte, rows*cols)
	for y := 0; y < rows; y++ {
		for x := 0; x < cols; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r > 0x7fff {
				m[y*cols+x] = 1
			}
		}
	}
	return m
}
