package main

import (
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	repoRoot     = "../.."
	shippedModel = repoRoot + "/models/tmca-cxr-compact"
	// accuracySeed is a phantom seed used neither for training (1000),
	// validation (2000), test (3000) nor the examples (4000).
	accuracySeed = "4711"
)

// TestProcessAccuracyMatchesPython generates phantom DICOM studies, runs
// `tmcad process` on them with the shipped model, and checks that the Dice
// of its masks against the phantoms' ground truth is within 0.01 of what
// `tmca.eval` (PyTorch, the training pipeline's own pre- and
// post-processing) reports for the same cases.
func TestProcessAccuracyMatchesPython(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	gen := exec.Command("/usr/bin/python3", "-m", "tmca.dicom_writer", "--seed", accuracySeed,
		"--cr", "8", "--ct", "1", "--ct-slices", "12", "--size", "256", "--ct-size", "128", "--out", data)
	gen.Dir = repoRoot
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generating phantoms: %v\n%s", err, out)
	}
	masks := filepath.Join(dir, "masks")
	code, stdout, stderr := runCLI(t, "process", "--input", filepath.Join(data, "dicom"), "--reports", filepath.Join(data, "reports"),
		"--archive", filepath.Join(dir, "archive"), "--masks-png", masks, "--model", shippedModel, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("tmcad process exit %d\n%s\n%s", code, stdout, stderr)
	}
	sum := readSummary(t, masks)
	var dices []float64
	for _, s := range sum {
		for _, m := range s.Masks {
			truth := filepath.Join(data, "truth", m.SOPInstanceUID+".png")
			if _, err := os.Stat(truth); err != nil {
				continue
			}
			dices = append(dices, dice(t, filepath.Join(masks, m.File), truth))
		}
	}
	if len(dices) < 8+12 {
		t.Fatalf("only %d frames with ground truth were segmented", len(dices))
	}
	goDice := mean(dices)

	ev := exec.Command("/usr/bin/python3", "-m", "tmca.eval", "--checkpoint", filepath.Join("models", "tmca-cxr-compact", "checkpoint.pt"),
		"--dicom-folder", data, "--threads", "2")
	ev.Dir = repoRoot
	ev.Stderr = os.Stderr
	out, err := ev.Output()
	if err != nil {
		t.Fatalf("tmca.eval: %v\n%s", err, out)
	}
	var py struct {
		N        int     `json:"n"`
		DiceMean float64 `json:"dice_mean"`
	}
	if err := json.Unmarshal(lastJSON(out), &py); err != nil {
		t.Fatalf("tmca.eval output: %v\n%s", err, out)
	}
	t.Logf("Dice over %d frames: tmcad %.4f, tmca.eval %.4f (%d frames)", len(dices), goDice, py.DiceMean, py.N)
	if py.N != len(dices) {
		t.Errorf("tmca.eval judged %d frames, tmcad %d", py.N, len(dices))
	}
	if math.Abs(goDice-py.DiceMean) > 0.01 {
		t.Errorf("Dice differs by %.4f > 0.01: the Go pipeline does not match the training pipeline", math.Abs(goDice-py.DiceMean))
	}
}

// lastJSON returns the last line of out that starts with '{' (the result),
// or all of out.
func lastJSON(out []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "{") {
			return []byte(strings.Join(lines[i:], "\n"))
		}
	}
	return out
}

// dice of two 0/255 PNG masks of the same size; 1 when both are empty (the
// convention of tmca.eval).
func dice(t *testing.T, a, b string) float64 {
	pa, pb := readGray(t, a), readGray(t, b)
	if pa.Bounds() != pb.Bounds() {
		t.Fatalf("%s and %s differ in size", a, b)
	}
	var tp, na, nb float64
	for i := range pa.Pix {
		x, y := pa.Pix[i] > 127, pb.Pix[i] > 127
		if x && y {
			tp++
		}
		if x {
			na++
		}
		if y {
			nb++
		}
	}
	if na+nb == 0 {
		return 1
	}
	return 2 * tp / (na + nb)
}

func readGray(t *testing.T, path string) *image.Gray {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		b := img.Bounds()
		g = image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g.Set(x, y, img.At(x, y))
			}
		}
	}
	return g
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
