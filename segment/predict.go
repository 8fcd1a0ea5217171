package segment

import (
	"context"
	"fmt"
	"math"

	"tmcad/dicomio"
)

// Request is one series to segment, with its tokenized report.
type Request struct {
	// Series holds the frames in modality units.
	Series *dicomio.Series
	// InputIDs and AttentionMask are the tokenized report, each of the
	// manifest's tokenizer.max_length.
	InputIDs, AttentionMask []int64
	// WantProbabilities also returns 8-bit probabilities per frame (for a
	// FRACTIONAL SEG).
	WantProbabilities bool
}

// Prediction is the model's answer for one series, on the source grid.
type Prediction struct {
	// Masks holds one rows × cols mask (0/1) per source frame, in the
	// series' frame order.
	Masks [][]uint8
	// Probabilities holds rows × cols probabilities scaled to 0..255 per
	// frame, when requested.
	Probabilities [][]uint8
	// SegmentedPixels counts mask pixels over all frames.
	SegmentedPixels int64
	// RemovedComponents counts components dropped for being smaller than
	// the minimum area.
	RemovedComponents int
}

// slot is one frame's place in the batched work.
type slot struct{ req, frame int }

// Predict segments every frame of every request, batching frames (across
// requests too) up to the engine's batch size. The results are in request
// order.
func (e *Engine) Predict(ctx context.Context, reqs ...Request) ([]*Prediction, error) {
	l := e.m.Tokenizer.MaxLength
	h, w := e.m.Image.Height, e.m.Image.Width
	hw := h * w
	out := make([]*Prediction, len(reqs))
	var work []slot
	for i, r := range reqs {
		if r.Series == nil || len(r.Series.Frames) == 0 {
			return nil, fmt.Errorf("engine: request %d has no frames", i)
		}
		if len(r.InputIDs) != l || len(r.AttentionMask) != l {
			return nil, fmt.Errorf("engine: series %s: tokenized report has %d ids and %d mask values, want %d", r.Series.SeriesInstanceUID, len(r.InputIDs), len(r.AttentionMask), l)
		}
		n := len(r.Series.Frames)
		p := &Prediction{Masks: make([][]uint8, n)}
		if r.WantProbabilities {
			p.Probabilities = make([][]uint8, n)
		}
		out[i] = p
		for f := 0; f < n; f++ {
			work = append(work, slot{i, f})
		}
	}
	buf := e.getBuf()
	defer e.bufs.Put(buf)
	var probScratch []float32
	var labels []int32
	bs := e.opts.BatchSize
	for start := 0; start < len(work); start += bs {
		if err := checkContext(ctx); err != nil {
			return nil, err
		}
		batch := work[start:min(start+bs, len(work))]
		for k, s := range batch {
			r := reqs[s.req]
			fr := r.Series.Frames[s.frame]
			if err := e.pre.Frame(buf.image[k*hw:(k+1)*hw], fr.Pixels, r.Series.Rows, r.Series.Columns, r.Series.Modality, r.Series.Monochrome1); err != nil {
				return nil, fmt.Errorf("engine: series %s frame %d: %w", r.Series.SeriesInstanceUID, s.frame+1, err)
			}
			copy(buf.ids[k*l:(k+1)*l], r.InputIDs)
			copy(buf.mask[k*l:(k+1)*l], r.AttentionMask)
		}
		if err := e.Run(len(batch), buf.image, buf.ids, buf.mask, buf.prob); err != nil {
			return nil, err
		}
		for k, s := range batch {
			r := reqs[s.req]
			rows, cols := r.Series.Rows, r.Series.Columns
			if cap(probScratch) < rows*cols {
				probScratch = make([]float32, rows*cols)
			}
			ps := probScratch[:rows*cols]
			mask := make([]uint8, rows*cols)
			ProbToMask(mask, ps, buf.prob[k*hw:(k+1)*hw], h, w, rows, cols, float32(e.m.Threshold))
			p := out[s.req]
			if e.opts.MinComponentArea > 1 {
				if cap(labels) < rows*cols {
					labels = make([]int32, rows*cols)
				}
				p.RemovedComponents += RemoveSmallComponents(mask, rows, cols, e.opts.MinComponentArea, labels)
			}
			for _, v := range mask {
				p.SegmentedPixels += int64(v)
			}
			p.Masks[s.frame] = mask
			if r.WantProbabilities {
				q := make([]uint8, rows*cols)
				for i, v := range ps {
					q[i] = uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
				}
				p.Probabilities[s.frame] = q
			}
		}
	}
	return out, nil
}
