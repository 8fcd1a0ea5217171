package segment

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Reference is a model folder's parity reference, written by tmca.export:
// Batch pre-processed frames with their tokenized reports, and the
// probabilities PyTorch computed for them.
type Reference struct {
	Batch, Height, Width, MaxLength int
	Image                           []float32
	InputIDs, AttentionMask         []int64
	Prob                            []float32
}

// LoadReference reads the reference the manifest names (its "reference"
// key) and checks that it fits the manifest's input sizes.
func LoadReference(m *Manifest) (*Reference, error) {
	if m.Reference == "" {
		return nil, fmt.Errorf("model %s: the manifest names no reference", m.ID())
	}
	path := m.Path(m.Reference)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model %s: reference: %w", m.ID(), err)
	}
	var files struct {
		Batch         int    `json:"batch"`
		Height        int    `json:"height"`
		Width         int    `json:"width"`
		MaxLength     int    `json:"max_length"`
		Image         string `json:"image"`
		InputIDs      string `json:"input_ids"`
		AttentionMask string `json:"attention_mask"`
		Prob          string `json:"prob"`
	}
	if err := json.Unmarshal(b, &files); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if files.Batch < 1 || files.Height != m.Image.Height || files.Width != m.Image.Width || files.MaxLength != m.Tokenizer.MaxLength {
		return nil, fmt.Errorf("%s: batch %d of %dx%d with %d tokens does not fit the manifest (%dx%d, %d tokens)", path,
			files.Batch, files.Height, files.Width, files.MaxLength, m.Image.Height, m.Image.Width, m.Tokenizer.MaxLength)
	}
	r := &Reference{Batch: files.Batch, Height: files.Height, Width: files.Width, MaxLength: files.MaxLength}
	dir := filepath.Dir(path)
	n, hw, l := r.Batch, r.Height*r.Width, r.MaxLength
	if r.Image, err = readRaw[float32](filepath.Join(dir, files.Image), n*hw); err == nil {
		if r.InputIDs, err = readRaw[int64](filepath.Join(dir, files.InputIDs), n*l); err == nil {
			if r.AttentionMask, err = readRaw[int64](filepath.Join(dir, files.AttentionMask), n*l); err == nil {
				r.Prob, err = readRaw[float32](filepath.Join(dir, files.Prob), n*hw)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: reference: %w", m.ID(), err)
	}
	return r, nil
}

// MaxAbsDifference runs the engine over the reference inputs, batch frames
// per session run, and returns the largest absolute difference from the
// probabilities PyTorch computed.
func (r *Reference) MaxAbsDifference(e *Engine, batch int) (float64, error) {
	hw, l := r.Height*r.Width, r.MaxLength
	got := make([]float32, r.Batch*hw)
	for s := 0; s < r.Batch; s += batch {
		k := min(batch, r.Batch-s)
		if err := e.Run(k, r.Image[s*hw:(s+k)*hw], r.InputIDs[s*l:(s+k)*l], r.AttentionMask[s*l:(s+k)*l], got[s*hw:(s+k)*hw]); err != nil {
			return 0, fmt.Errorf("reference frames %d..%d: %w", s, s+k-1, err)
		}
	}
	worst := 0.0
	for i := range r.Prob {
		worst = math.Max(worst, math.Abs(float64(got[i]-r.Prob[i])))
	}
	return worst, nil
}

// readRaw reads n little-endian values from a raw file of exactly that size.
func readRaw[T float32 | int64](path string, n int) ([]T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]T, n)
	if len(b) != n*binary.Size(out[0]) {
		return nil, fmt.Errorf("%s: %d bytes, want %d values", path, len(b), n)
	}
	if _, err := binary.Decode(b, binary.LittleEndian, out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
