package segment

import (
	"context"
	"fmt"
	"math"
	"sync"

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
	bs := e.opts.BatchSize
	var batches [][]slot
	for start := 0; start < len(work); start += bs {
		batches = append(batches, work[start:min(start+bs, len(work))])
	}
	return out, e.pipelined(ctx, reqs, out, batches)
}

// batchJob is one batch moving through the three stages.
type batchJob struct {
	slots []slot
	buf   *batchBuf
}

// pipelined overlaps the three stages of Predict: while ONNX Runtime runs
// batch k, one goroutine pre-processes batch k+1 and another
// post-processes batch k-1, each with its own buffers (three in flight).
func (e *Engine) pipelined(ctx context.Context, reqs []Request, out []*Prediction, batches [][]slot) error {
	l := e.m.Tokenizer.MaxLength
	h, w := e.m.Image.Height, e.m.Image.Width
	hw := h * w
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}
	const inFlight = 3
	free := make(chan *batchBuf, inFlight)
	for i := 0; i < inFlight; i++ {
		free <- e.getBuf()
	}
	prepared := make(chan batchJob, 1)
	ran := make(chan batchJob, 1)

	go func() { // stage 1: pre-processing
		defer close(prepared)
		for _, b := range batches {
			var buf *batchBuf
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			for k, s := range b {
				r := reqs[s.req]
				fr := r.Series.Frames[s.frame]
				if err := e.pre.Frame(buf.image[k*hw:(k+1)*hw], fr.Pixels, r.Series.Rows, r.Series.Columns, r.Series.Modality, r.Series.Monochrome1); err != nil {
					fail(fmt.Errorf("engine: series %s frame %d: %w", r.Series.SeriesInstanceUID, s.frame+1, err))
					free <- buf
					return
				}
				copy(buf.ids[k*l:(k+1)*l], r.InputIDs)
				copy(buf.mask[k*l:(k+1)*l], r.AttentionMask)
			}
			select {
			case prepared <- batchJob{b, buf}:
			case <-ctx.Done():
				free <- buf
				return
			}
		}
	}()

	postDone := make(chan struct{})
	go func() { // stage 3: post-processing
		defer close(postDone)
		var probScratch []float32
		var labels []int32
		for j := range ran {
			for k, s := range j.slots {
				r := reqs[s.req]
				rows, cols := r.Series.Rows, r.Series.Columns
				if cap(probScratch) < rows*cols {
					probScratch = make([]float32, rows*cols)
				}
				ps := probScratch[:rows*cols]
				mask := make([]uint8, rows*cols)
				ProbToMask(mask, ps, j.buf.prob[k*hw:(k+1)*hw], h, w, rows, cols, float32(e.m.Threshold))
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
			free <- j.buf
		}
	}()

	// stage 2: the session, in this goroutine.
	for j := range prepared {
		if ctx.Err() != nil {
			free <- j.buf
			continue
		}
		if err := e.Run(len(j.slots), j.buf.image, j.buf.ids, j.buf.mask, j.buf.prob); err != nil {
			fail(err)
			free <- j.buf
			continue
		}
		ran <- j
	}
	close(ran)
	<-postDone
	if firstErr == nil {
		firstErr = parent.Err()
	}
	for i := 0; i < inFlight; i++ {
		e.bufs.Put(<-free)
	}
	return firstErr
}
