package segment

import (
	"context"
	"fmt"
	"math"
	"sync"

	"tmcad/dicomio"
	"tmcad/internal/parallel"
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
	// Ready, when set, is called before frame i's pixels are read, with
	// frames = i+1, and blocks until frames [0, frames) hold their pixels
	// (dicomio.Loading.WaitFrames): the model can start on a series whose
	// later frames are still being decoded. An error other than ctx's fails
	// this request only (Prediction.Err); the others go on.
	Ready func(ctx context.Context, frames int) error
	// OnMask, when set, is called with each frame's mask as soon as it is
	// post-processed, from the post-processing goroutines (concurrently for
	// different frames), so that the caller can pack or encode it while the
	// model runs on the next batches. mask is the one in Prediction.Masks.
	OnMask func(frame int, mask []uint8)
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
	// Err is set when the request's Ready failed (its frames could not be
	// read); the other fields are then empty.
	Err error
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
	return out, e.pipelined(ctx, reqs, out, rampBatches(work, e.opts.BatchSize))
}

// rampBatches cuts the work into batches of bs frames, except that the
// first two are a quarter and a half of that when the work fills more than
// two batches: the model starts as soon as a few frames are decoded and
// pre-processed, instead of waiting for a full batch, while the rest of the
// series is still being read. On CPU the smaller batches cost little
// throughput (bench/RESULTS.md); the overhead before the first run is what
// they save.
func rampBatches(work []slot, bs int) [][]slot {
	var batches [][]slot
	size := bs
	if len(work) > 2*bs {
		size = max(1, bs/4)
	}
	for start := 0; start < len(work); {
		end := min(start+size, len(work))
		batches = append(batches, work[start:end])
		start = end
		size = min(bs, 2*size)
	}
	return batches
}

// batchJob is one batch moving through the three stages.
type batchJob struct {
	slots []slot
	buf   *batchBuf
	// skip marks the slots of requests whose frames could not be read.
	skip []bool
}

// pipelined overlaps the three stages of Predict: while ONNX Runtime runs
// batch k (and, with ConcurrentRuns > 1, further batches beside it), one
// goroutine pre-processes the next batch and another post-processes the
// previous one, each with its own buffers (ConcurrentRuns + 2 in flight).
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
	runners := max(1, e.opts.ConcurrentRuns)
	inFlight := runners + 2
	free := make(chan *batchBuf, inFlight)
	for i := 0; i < inFlight; i++ {
		free <- e.getBuf()
	}
	prepared := make(chan batchJob, 1)
	ran := make(chan batchJob, 1)
	// failed[i] is request i's Ready error; written by the pre-processing
	// goroutine only, read after every stage has ended.
	failed := make([]error, len(reqs))

	go func() { // stage 1: pre-processing
		defer close(prepared)
		for _, b := range batches {
			// Wait for the batch's frames of every request in it (slots are
			// in request, then frame order).
			skip := make([]bool, len(b))
			for k := 0; k < len(b); k++ {
				s := b[k]
				if k+1 < len(b) && b[k+1].req == s.req {
					continue
				}
				r := reqs[s.req]
				if r.Ready == nil || failed[s.req] != nil {
					continue
				}
				if err := r.Ready(ctx, s.frame+1); err != nil {
					if ctx.Err() != nil {
						return
					}
					failed[s.req] = err
				}
			}
			for k, s := range b {
				skip[k] = failed[s.req] != nil
			}
			var buf *batchBuf
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			if err := parallel.For(len(b), func(k int) error {
				s := b[k]
				r := reqs[s.req]
				if skip[k] {
					// A blank image keeps the batch's shape; its output is
					// dropped. The report's tokens stay valid input (an
					// all-padding attention mask would make NaNs).
					clear(buf.image[k*hw : (k+1)*hw])
				} else {
					fr := r.Series.Frames[s.frame]
					if err := e.pre.Frame(buf.image[k*hw:(k+1)*hw], fr.Pixels, r.Series.Rows, r.Series.Columns, r.Series.Modality, r.Series.Monochrome1); err != nil {
						return fmt.Errorf("engine: series %s frame %d: %w", r.Series.SeriesInstanceUID, s.frame+1, err)
					}
				}
				copy(buf.ids[k*l:(k+1)*l], r.InputIDs)
				copy(buf.mask[k*l:(k+1)*l], r.AttentionMask)
				return nil
			}); err != nil {
				fail(err)
				free <- buf
				return
			}
			select {
			case prepared <- batchJob{b, buf, skip}:
			case <-ctx.Done():
				free <- buf
				return
			}
		}
	}()

	postDone := make(chan struct{})
	go func() { // stage 3: post-processing
		defer close(postDone)
		type frameStats struct{ pixels, removed int64 }
		var stats []frameStats
		for j := range ran {
			stats = append(stats[:0], make([]frameStats, len(j.slots))...)
			_ = parallel.For(len(j.slots), func(k int) error {
				if j.skip[k] {
					return nil
				}
				s := j.slots[k]
				r := reqs[s.req]
				n := r.Series.Rows * r.Series.Columns
				scr := e.getPostScratch(n)
				defer e.post.Put(scr)
				mask := make([]uint8, n)
				src := j.buf.prob[k*hw : (k+1)*hw]
				set := 0
				if r.WantProbabilities {
					ProbToMask(mask, scr.prob, src, h, w, r.Series.Rows, r.Series.Columns, float32(e.m.Threshold))
					set = -1
				} else {
					set = ThresholdResized(mask, src, h, w, r.Series.Rows, r.Series.Columns, float32(e.m.Threshold))
				}
				if e.opts.MinComponentArea > 1 {
					if removed := RemoveSmallComponents(mask, r.Series.Rows, r.Series.Columns, e.opts.MinComponentArea, scr.labels); removed > 0 {
						stats[k].removed = int64(removed)
						set = -1
					}
				}
				if set < 0 {
					set = 0
					for _, v := range mask {
						set += int(v)
					}
				}
				stats[k].pixels = int64(set)
				p := out[s.req]
				p.Masks[s.frame] = mask
				if r.WantProbabilities {
					q := make([]uint8, n)
					for i, v := range scr.prob {
						q[i] = uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
					}
					p.Probabilities[s.frame] = q
				}
				if r.OnMask != nil {
					r.OnMask(s.frame, mask)
				}
				return nil
			})
			for k, s := range j.slots {
				if j.skip[k] {
					continue
				}
				out[s.req].SegmentedPixels += stats[k].pixels
				out[s.req].RemovedComponents += int(stats[k].removed)
			}
			free <- j.buf
		}
	}()

	// stage 2: the session, on ConcurrentRuns goroutines (this one among
	// them); ONNX Runtime sessions may be run concurrently.
	runStage := func() {
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
	}
	var runWG sync.WaitGroup
	for r := 1; r < runners; r++ {
		runWG.Add(1)
		go func() {
			defer runWG.Done()
			runStage()
		}()
	}
	runStage()
	runWG.Wait()
	close(ran)
	<-postDone
	if firstErr == nil {
		firstErr = parent.Err()
	}
	for i := 0; i < inFlight; i++ {
		e.bufs.Put(<-free)
	}
	if firstErr == nil {
		for i, err := range failed {
			if err != nil {
				out[i] = &Prediction{Err: err}
			}
		}
	}
	return firstErr
}

// postScratch is the per-frame scratch space of post-processing.
type postScratch struct {
	prob   []float32
	labels []int32
}

// getPostScratch returns scratch space for a frame of n pixels.
func (e *Engine) getPostScratch(n int) *postScratch {
	scr, _ := e.post.Get().(*postScratch)
	if scr == nil {
		scr = &postScratch{}
	}
	if cap(scr.prob) < n {
		scr.prob = make([]float32, n)
		scr.labels = make([]int32, n)
	}
	scr.prob, scr.labels = scr.prob[:n], scr.labels[:n]
	return scr
}
