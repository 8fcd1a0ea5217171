package segment

import (
	"testing"
)

// The shipped model and the references its export wrote (tmca.export).
const shippedModel = "../models/tmca-cxr-compact"

// TestParityWithPyTorch runs the shipped ONNX model through the Go engine
// on the export's reference inputs and compares with what PyTorch computed,
// at batch 8 (all at once) and batch 1 (one by one).
func TestParityWithPyTorch(t *testing.T) {
	initTestRuntime(t)
	m, err := LoadManifest(shippedModel)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := LoadReference(m)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Batch < 8 {
		t.Fatalf("reference of %d frames, want at least 8", ref.Batch)
	}
	for _, bs := range []int{8, 1} {
		e, err := NewEngine(m, Options{BatchSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		worst, err := ref.MaxAbsDifference(e, bs)
		e.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("batch %d: max abs difference %.3g", bs, worst)
		if worst > 1e-4 {
			t.Errorf("batch %d: max abs difference %.3g > 1e-4", bs, worst)
		}
	}
}
