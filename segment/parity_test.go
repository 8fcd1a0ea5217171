package segment

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The shipped model and the references its export wrote (tmca.export).
const shippedModel = "../models/tmca-cxr-compact"

type reference struct {
	Batch         int    `json:"batch"`
	Height        int    `json:"height"`
	Width         int    `json:"width"`
	MaxLength     int    `json:"max_length"`
	Image         string `json:"image"`
	InputIDs      string `json:"input_ids"`
	AttentionMask string `json:"attention_mask"`
	Prob          string `json:"prob"`
}

func readRaw[T float32 | int64](t *testing.T, path string, n int) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]T, n)
	if len(b) != n*binary.Size(out[0]) {
		t.Fatalf("%s: %d bytes, want %d values", path, len(b), n)
	}
	if _, err := binary.Decode(b, binary.LittleEndian, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// TestParityWithPyTorch runs the shipped ONNX model through the Go engine
// on the export's reference inputs and compares with what PyTorch computed,
// at batch 8 (all at once) and batch 1 (one by one).
func TestParityWithPyTorch(t *testing.T) {
	initTestRuntime(t)
	m, err := LoadManifest(shippedModel)
	if err != nil {
		t.Fatal(err)
	}
	refDir := m.Path(filepath.Dir(m.Reference))
	b, err := os.ReadFile(m.Path(m.Reference))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.Batch < 8 || ref.Height != m.Image.Height || ref.Width != m.Image.Width || ref.MaxLength != m.Tokenizer.MaxLength {
		t.Fatalf("reference %+v does not fit the manifest", ref)
	}
	n, hw, l := ref.Batch, ref.Height*ref.Width, ref.MaxLength
	img := readRaw[float32](t, filepath.Join(refDir, ref.Image), n*hw)
	ids := readRaw[int64](t, filepath.Join(refDir, ref.InputIDs), n*l)
	mask := readRaw[int64](t, filepath.Join(refDir, ref.AttentionMask), n*l)
	want := readRaw[float32](t, filepath.Join(refDir, ref.Prob), n*hw)

	for _, bs := range []int{8, 1} {
		e, err := NewEngine(m, Options{BatchSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, n*hw)
		for s := 0; s < n; s += bs {
			k := min(bs, n-s)
			if err := e.Run(k, img[s*hw:(s+k)*hw], ids[s*l:(s+k)*l], mask[s*l:(s+k)*l], got[s*hw:(s+k)*hw]); err != nil {
				t.Fatal(err)
			}
		}
		e.Close()
		worst := 0.0
		for i := range want {
			worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		}
		t.Logf("batch %d: max abs difference %.3g", bs, worst)
		if worst > 1e-4 {
			t.Errorf("batch %d: max abs difference %.3g > 1e-4", bs, worst)
		}
	}
}
