package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"tmcad/dicomio"
)

const tinyModel = "../testdata/model-tiny"

func tinyEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	initTestRuntime(t)
	m, err := LoadManifest(tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// series builds a synthetic series of n frames rows × cols.
func series(uid string, n, rows, cols int, modality string) *dicomio.Series {
	s := &dicomio.Series{SeriesInstanceUID: uid, Modality: modality, Rows: rows, Columns: cols}
	for f := 0; f < n; f++ {
		px := make([]float32, rows*cols)
		for i := range px {
			px[i] = float32(math.Sin(float64(i*(f+3))*0.37)*100 + float64(f*7))
		}
		s.Frames = append(s.Frames, dicomio.Frame{Pixels: px, FrameNumber: 1})
	}
	return s
}

// expectedMask computes, with the package's own pre/post-processing, what
// the tiny model must return: sigmoid(z + 0.25*(len-2)).
func expectedMask(t *testing.T, m *Manifest, s *dicomio.Series, f int, textLen int) []uint8 {
	p := NewPreprocessor(m)
	z := make([]float32, m.Image.Height*m.Image.Width)
	if err := p.Frame(z, s.Frames[f].Pixels, s.Rows, s.Columns, s.Modality, s.Monochrome1); err != nil {
		t.Fatal(err)
	}
	for i, v := range z {
		z[i] = float32(1 / (1 + math.Exp(-float64(v+0.25*float32(textLen-2)))))
	}
	mask := make([]uint8, s.Rows*s.Columns)
	ProbToMask(mask, nil, z, m.Image.Height, m.Image.Width, s.Rows, s.Columns, float32(m.Threshold))
	return mask
}

func TestPredictBatchesAcrossSeries(t *testing.T) {
	e := tinyEngine(t, Options{BatchSize: 4})
	m := e.Manifest()
	a := series("1.2.3.1", 11, 20, 24, "CT")
	b := series("1.2.3.2", 3, 31, 17, "CR")
	ids := []int64{2, 5, 7, 3, 0, 0}
	maskA := []int64{1, 1, 1, 1, 0, 0}
	maskB := []int64{1, 1, 1, 1, 1, 1}
	_, runs0, _ := e.Stats()
	preds, err := e.Predict(context.Background(),
		Request{Series: a, InputIDs: ids, AttentionMask: maskA},
		Request{Series: b, InputIDs: ids, AttentionMask: maskB, WantProbabilities: true})
	if err != nil {
		t.Fatal(err)
	}
	_, runs, frames := e.Stats()
	if runs-runs0 != 5 || frames < 14 {
		t.Errorf("14 frames at batch 4: %d runs, %d frames; want 5 runs (1, 2, 4, 4, 3)", runs-runs0, frames)
	}
	for f := range a.Frames {
		if !bytes.Equal(preds[0].Masks[f], expectedMask(t, m, a, f, 4)) {
			t.Fatalf("series a frame %d: mask differs from the expected computation", f)
		}
	}
	for f := range b.Frames {
		if !bytes.Equal(preds[1].Masks[f], expectedMask(t, m, b, f, 6)) {
			t.Fatalf("series b frame %d: mask differs", f)
		}
		if len(preds[1].Probabilities[f]) != 31*17 {
			t.Fatalf("probabilities not returned")
		}
	}
	if preds[0].Probabilities != nil {
		t.Error("probabilities returned though not requested")
	}
	// The same request at batch 1 gives the same masks.
	e1 := tinyEngine(t, Options{BatchSize: 1})
	p1, err := e1.Predict(context.Background(), Request{Series: a, InputIDs: ids, AttentionMask: maskA})
	if err != nil {
		t.Fatal(err)
	}
	for f := range a.Frames {
		if !bytes.Equal(p1[0].Masks[f], preds[0].Masks[f]) {
			t.Fatalf("frame %d: batch 1 and batch 4 differ", f)
		}
	}
}

func TestPredictRejectsWrongTokenLength(t *testing.T) {
	e := tinyEngine(t, Options{})
	_, err := e.Predict(context.Background(), Request{Series: series("1.2", 1, 8, 8, "CR"), InputIDs: []int64{2, 3}, AttentionMask: []int64{1, 1}})
	if err == nil || !strings.Contains(err.Error(), "want 6") {
		t.Fatalf("got %v", err)
	}
}

// copyModel copies the tiny model into a temp dir with an edited manifest.
func copyModel(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"model.onnx", "vocab.txt"} {
		b, err := os.ReadFile(filepath.Join(tinyModel, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(tinyModel, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestManifestModelMismatchNamesInputAndShapes(t *testing.T) {
	initTestRuntime(t)
	dir := copyModel(t, func(m map[string]any) {
		m["image"].(map[string]any)["height"] = 32
		m["inputs"].([]any)[0].(map[string]any)["shape"] = []int{-1, 1, 32, 16}
		m["outputs"].([]any)[0].(map[string]any)["shape"] = []int{-1, 1, 32, 16}
	})
	m, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewEngine(m, Options{})
	if err == nil {
		t.Fatal("mismatched model accepted")
	}
	for _, want := range []string{`"image"`, "[-1 1 16 16]", "[-1 1 32 16]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestManifestValidationNamesKey(t *testing.T) {
	dir := copyModel(t, func(m map[string]any) {
		m["threshold"] = 1.5
		m["segments"].([]any)[0].(map[string]any)["category"].(map[string]any)["scheme"] = "SRT"
	})
	_, err := LoadManifest(dir)
	if err == nil {
		t.Fatal("bad manifest accepted")
	}
	for _, want := range []string{"manifest.json", "threshold", "segments[0].category.scheme"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// On a machine without the CUDA provider library, a CUDA request names the
// missing file, or falls back to CPU with exactly one warning.
func TestCUDAMissingProvider(t *testing.T) {
	initTestRuntime(t)
	m, err := LoadManifest(tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(runtimePath), cudaProviderLib)); err == nil {
		t.Fatalf("%s is installed here; this test is about a machine without it", cudaProviderLib)
	}
	_, err = NewEngine(m, Options{Provider: ProviderCUDA, FallbackToCPU: false})
	if err == nil || !strings.Contains(err.Error(), cudaProviderLib+" not found") {
		t.Fatalf("without fallback: got %v, want an error naming %s", err, cudaProviderLib)
	}

	var logs bytes.Buffer
	e, err := NewEngine(m, Options{Provider: ProviderCUDA, FallbackToCPU: true, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatalf("with fallback: %v", err)
	}
	defer e.Close()
	if e.Provider() != ProviderCPU {
		t.Errorf("provider %q, want cpu", e.Provider())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[0], cudaProviderLib) {
		t.Errorf("want exactly one warning naming %s, got %q", cudaProviderLib, logs.String())
	}
	if _, err := e.Predict(context.Background(), Request{Series: series("1.2", 2, 16, 16, "CR"), InputIDs: make([]int64, 6), AttentionMask: make([]int64, 6)}); err != nil {
		t.Fatalf("CPU fallback engine does not run: %v", err)
	}
}

func TestRemoveSmallComponents(t *testing.T) {
	mask := []uint8{
		1, 1, 0, 0, 0,
		1, 1, 0, 0, 1,
		0, 0, 0, 0, 0,
		0, 0, 1, 0, 0,
		0, 0, 0, 1, 1,
	}
	n := RemoveSmallComponents(mask, 5, 5, 3, nil)
	want := []uint8{
		1, 1, 0, 0, 0,
		1, 1, 0, 0, 0,
		0, 0, 0, 0, 0,
		0, 0, 1, 0, 0,
		0, 0, 0, 1, 1,
	}
	if n != 1 || !bytes.Equal(mask, want) {
		t.Fatalf("removed %d, mask %v", n, mask)
	}
}

func TestPredictCancelled(t *testing.T) {
	e := tinyEngine(t, Options{BatchSize: 2})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Predict(ctx, Request{Series: series("1.2", 9, 16, 16, "CR"), InputIDs: make([]int64, 6), AttentionMask: make([]int64, 6)})
	if err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The engine still works afterwards (buffers went back to the pool).
	if _, err := e.Predict(context.Background(), Request{Series: series("1.2", 9, 16, 16, "CR"), InputIDs: make([]int64, 6), AttentionMask: make([]int64, 6)}); err != nil {
		t.Fatal(err)
	}
}

// Concurrent runs give the same masks as one run at a time.
func TestPredictConcurrentRuns(t *testing.T) {
	a := series("1.2.3.9", 13, 20, 24, "CT")
	ids, mask := []int64{2, 5, 7, 3, 0, 0}, []int64{1, 1, 1, 1, 0, 0}
	one := tinyEngine(t, Options{BatchSize: 2})
	p1, err := one.Predict(context.Background(), Request{Series: a, InputIDs: ids, AttentionMask: mask})
	if err != nil {
		t.Fatal(err)
	}
	two := tinyEngine(t, Options{BatchSize: 2, ConcurrentRuns: 3})
	p3, err := two.Predict(context.Background(), Request{Series: a, InputIDs: ids, AttentionMask: mask})
	if err != nil {
		t.Fatal(err)
	}
	_, runs, _ := two.Stats()
	if runs != 7 {
		t.Errorf("%d runs for 13 frames at batch 2, want 7", runs)
	}
	for f := range a.Frames {
		if !bytes.Equal(p1[0].Masks[f], p3[0].Masks[f]) {
			t.Fatalf("frame %d differs with concurrent runs", f)
		}
	}
	if p1[0].SegmentedPixels != p3[0].SegmentedPixels {
		t.Fatalf("segmented pixels %d vs %d", p1[0].SegmentedPixels, p3[0].SegmentedPixels)
	}
}

// Predict waits for each frame through Request.Ready (in frame order),
// hands every mask to OnMask as it is made, and a request whose frames
// cannot be read fails alone: the request batched beside it gets the
// masks it would get without it.
func TestPredictReadyAndOnMask(t *testing.T) {
	e := tinyEngine(t, Options{BatchSize: 4})
	m := e.Manifest()
	ids := []int64{2, 5, 7, 3, 0, 0}
	mask := []int64{1, 1, 1, 1, 0, 0}
	a := series("1.2.5.1", 9, 20, 24, "CT")
	bad := series("1.2.5.2", 5, 16, 16, "CT")
	c := series("1.2.5.3", 3, 12, 30, "CR")

	var asked []int
	var mu sync.Mutex
	got := make([][]uint8, len(a.Frames))
	readErr := errors.New("frame 3 of 1.2.5.2: read pixels: truncated")
	preds, err := e.Predict(context.Background(),
		Request{Series: a, InputIDs: ids, AttentionMask: mask,
			Ready: func(ctx context.Context, frames int) error {
				asked = append(asked, frames) // the pre-processing goroutine only
				return nil
			},
			OnMask: func(f int, m []uint8) {
				mu.Lock()
				defer mu.Unlock()
				if got[f] != nil {
					t.Errorf("OnMask called twice for frame %d", f)
				}
				got[f] = m
			}},
		Request{Series: bad, InputIDs: ids, AttentionMask: mask,
			Ready: func(ctx context.Context, frames int) error {
				if frames > 3 {
					return readErr
				}
				return nil
			}},
		Request{Series: c, InputIDs: ids, AttentionMask: mask})
	if err != nil {
		t.Fatal(err)
	}
	// 9 + 5 + 3 frames at batch 4 (batches of 1, 2, 4, 4, 4, 2): a's
	// batches end at frames 1, 3, 7 and 9.
	if !slices.Equal(asked, []int{1, 3, 7, 9}) {
		t.Errorf("Ready asked for %v, want [1 3 7 9]", asked)
	}
	for f := range a.Frames {
		if !bytes.Equal(preds[0].Masks[f], expectedMask(t, m, a, f, 4)) {
			t.Fatalf("series a frame %d: mask differs", f)
		}
		if !bytes.Equal(got[f], preds[0].Masks[f]) {
			t.Fatalf("series a frame %d: OnMask got another mask than Prediction.Masks", f)
		}
	}
	if preds[1].Err != readErr || preds[1].Masks != nil {
		t.Fatalf("failed request: Err %v, %d masks", preds[1].Err, len(preds[1].Masks))
	}
	for f := range c.Frames {
		if preds[2].Err != nil || !bytes.Equal(preds[2].Masks[f], expectedMask(t, m, c, f, 4)) {
			t.Fatalf("series c frame %d (after the failed one): mask differs (%v)", f, preds[2].Err)
		}
	}
}

// Batches ramp up to the batch size when the work fills more than two.
func TestRampBatches(t *testing.T) {
	for _, tc := range []struct {
		frames, bs int
		want       []int
	}{
		{100, 16, []int{4, 8, 16, 16, 16, 16, 16, 8}},
		{32, 16, []int{16, 16}},
		{33, 16, []int{4, 8, 16, 5}},
		{5, 1, []int{1, 1, 1, 1, 1}},
		{7, 2, []int{1, 2, 2, 2}},
	} {
		work := make([]slot, tc.frames)
		var sizes []int
		next := 0
		for _, b := range rampBatches(work, tc.bs) {
			sizes = append(sizes, len(b))
			if &b[0] != &work[next] {
				t.Fatalf("%d frames at %d: batches do not follow the work in order", tc.frames, tc.bs)
			}
			next += len(b)
		}
		if !slices.Equal(sizes, tc.want) {
			t.Errorf("%d frames at batch %d: %v, want %v", tc.frames, tc.bs, sizes, tc.want)
		}
	}
}

// The session tuning options (graph optimisation level, parallel execution
// with inter-op threads) leave the masks unchanged, and an unknown level is
// an error that lists the known ones.
func TestSessionTuningOptions(t *testing.T) {
	a := series("1.2.3.10", 5, 20, 24, "CT")
	ids, mask := []int64{2, 5, 7, 3, 0, 0}, []int64{1, 1, 1, 1, 0, 0}
	base := tinyEngine(t, Options{BatchSize: 2})
	want, err := base.Predict(context.Background(), Request{Series: a, InputIDs: ids, AttentionMask: mask})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{BatchSize: 2, GraphOptimization: "disable"},
		{BatchSize: 2, GraphOptimization: "basic"},
		{BatchSize: 2, GraphOptimization: "extended", InterOpThreads: 2},
		{BatchSize: 2, GraphOptimization: "all", InterOpThreads: 1, IntraOpThreads: 1},
	} {
		e := tinyEngine(t, o)
		got, err := e.Predict(context.Background(), Request{Series: a, InputIDs: ids, AttentionMask: mask})
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		for f := range a.Frames {
			if !bytes.Equal(want[0].Masks[f], got[0].Masks[f]) {
				t.Fatalf("graph optimisation %q, inter-op %d: frame %d differs", o.GraphOptimization, o.InterOpThreads, f)
			}
		}
	}
	initTestRuntime(t)
	m, err := LoadManifest(tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewEngine(m, Options{GraphOptimization: "max"})
	if err == nil || !strings.Contains(err.Error(), "disable, basic, extended or all") {
		t.Fatalf("unknown level: err = %v", err)
	}
}
