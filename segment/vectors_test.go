package segment

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// The shared vectors are written by the Python side (python -m tmca.vectors)
// from tmca/preprocess.py; Go must reproduce them within 1e-5.
const vectorTol = 1e-5

type preprocessCase struct {
	Name        string    `json:"name"`
	Modality    string    `json:"modality"`
	Photometric string    `json:"photometric"`
	Slope       float64   `json:"slope"`
	Intercept   float64   `json:"intercept"`
	Rows        int       `json:"rows"`
	Cols        int       `json:"cols"`
	Raw         []float64 `json:"raw"`
	Window      Window    `json:"window"`
	Height      int       `json:"height"`
	Width       int       `json:"width"`
	Mean        float64   `json:"mean"`
	Std         float64   `json:"std"`
	Expected    []float64 `json:"expected"`
}

type postprocessCase struct {
	Name         string    `json:"name"`
	Height       int       `json:"height"`
	Width        int       `json:"width"`
	Prob         []float32 `json:"prob"`
	Rows         int       `json:"rows"`
	Cols         int       `json:"cols"`
	Threshold    float64   `json:"threshold"`
	ExpectedProb []float64 `json:"expected_prob"`
	ExpectedMask []uint8   `json:"expected_mask"`
}

func readVectors(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("../testdata/vectors/" + name)
	if err != nil {
		t.Fatalf("shared vectors: %v (regenerate with /usr/bin/python3 -m tmca.vectors)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestPreprocessMatchesPythonVectors(t *testing.T) {
	var cases []preprocessCase
	readVectors(t, "preprocess.json", &cases)
	if len(cases) < 8 {
		t.Fatalf("only %d preprocess vectors", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			m := &Manifest{
				Image:     ImageSpec{Height: c.Height, Width: c.Width, Channels: 1, Resize: "bilinear"},
				Windows:   map[string]Window{"default": c.Window},
				Normalize: Normalization{Mean: c.Mean, Std: c.Std},
			}
			// Rescale as dicomio does: float32(raw)*float32(slope) + float32(intercept).
			src := make([]float32, len(c.Raw))
			for i, r := range c.Raw {
				src[i] = float32(float32(r)*float32(c.Slope)) + float32(c.Intercept)
			}
			dst := make([]float32, c.Height*c.Width)
			if err := NewPreprocessor(m).Frame(dst, src, c.Rows, c.Cols, c.Modality, c.Photometric == "MONOCHROME1"); err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, want := range c.Expected {
				worst = math.Max(worst, math.Abs(float64(dst[i])-want))
			}
			if worst > vectorTol {
				t.Fatalf("max abs difference %g > %g", worst, vectorTol)
			}
		})
	}
}

func TestPostprocessMatchesPythonVectors(t *testing.T) {
	var cases []postprocessCase
	readVectors(t, "postprocess.json", &cases)
	if len(cases) < 4 {
		t.Fatalf("only %d postprocess vectors", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			mask := make([]uint8, c.Rows*c.Cols)
			prob := make([]float32, c.Rows*c.Cols)
			ProbToMask(mask, prob, c.Prob, c.Height, c.Width, c.Rows, c.Cols, float32(c.Threshold))
			worst := 0.0
			for i, want := range c.ExpectedProb {
				worst = math.Max(worst, math.Abs(float64(prob[i])-want))
			}
			if worst > vectorTol {
				t.Fatalf("prob: max abs difference %g > %g", worst, vectorTol)
			}
			for i := range mask {
				if mask[i] != c.ExpectedMask[i] {
					t.Fatalf("mask differs at %d", i)
				}
			}
			fast := make([]uint8, c.Rows*c.Cols)
			ThresholdResized(fast, c.Prob, c.Height, c.Width, c.Rows, c.Cols, float32(c.Threshold))
			for i := range fast {
				if fast[i] != c.ExpectedMask[i] {
					t.Fatalf("ThresholdResized: mask differs at %d", i)
				}
			}
		})
	}
}
