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
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runners := max(1, e.opts.ConcurrentRuns)
	inFlight := runners + 2
	st := &stages{
		e: e, ctx: ctx, cancel: cancel, reqs: reqs, out: out,
		free:     make(chan *batchBuf, inFlight),
		prepared: make(chan batchJob, 1),
		ran:      make(chan batchJob, 1),
		failed:   make([]error, len(reqs)),
	}
	for i := 0; i < inFlight; i++ {
		st.free <- e.getBuf()
	}
	go st.preprocess(batches)
	postDone := make(chan struct{})
	go func() {
		defer close(postDone)
		st.postprocess()
	}()
	// The session runs on ConcurrentRuns goroutines (this one among
	// them); ONNX Runtime sessions may be run concurrently.
	var runWG sync.WaitGroup
	for r := 1; r < runners; r++ {
		runWG.Add(1)
		go func() {
			defer runWG.Done()
			st.run()
		}()
	}
	st.run()
	runWG.Wait()
	close(st.ran)
	<-postDone
	firstErr := st.firstErr
	if firstErr == nil {
		firstErr = parent.Err()
	}
	for i := 0; i < inFlight; i++ {
		e.bufs.Put(<-st.free)
	}
	if firstErr == nil {
		for i, err := range st.failed {
			if err != nil {
				out[i] = &Prediction{Err: err}
			}
		}
	}
	return firstErr
}

// stages is one pipelined Predict: its requests and results, the buffers
// free for a batch, and the channels between the stages.
type stages struct {
	e      *Engine
	ctx    context.Context
	cancel context.CancelFunc
	reqs   []Request
	out    []*Prediction

	free          chan *batchBuf
	prepared, ran chan batchJob
	errOnce       sync.Once
	firstErr      error
	// failed[i] is request i's Ready error; written by the pre-processing
	// goroutine only, read after every stage has ended.
	failed []error
}

// fail records the first error and stops every stage.
func (st *stages) fail(err error) {
	st.errOnce.Do(func() { st.firstErr = err })
	st.cancel()
}

// preprocess is stage 1: for each batch it waits for the frames, then
// pre-processes them into a free buffer and hands the batch on.
func (st *stages) preprocess(batches [][]slot) {
	defer close(st.prepared)
	for _, b := range batches {
		skip, ok := st.waitReady(b)
		if !ok {
			return
		}
		var buf *batchBuf
		select {
		case buf = <-st.free:
		case <-st.ctx.Done():
			return
		}
		if err := st.fill(buf, b, skip); err != nil {
			st.fail(err)
			st.free <- buf
			return
		}
		select {
		case st.prepared <- batchJob{b, buf, skip}:
		case <-st.ctx.Done():
			st.free <- buf
			return
		}
	}
}

// waitReady waits for the frames of batch b of every request in it (slots
// are in request, then frame order) and marks the slots of requests whose
// frames could not be read; false when the context ended.
func (st *stages) waitReady(b []slot) ([]bool, bool) {
	for k, s := range b {
		if k+1 < len(b) && b[k+1].req == s.req {
			continue
		}
		r := st.reqs[s.req]
		if r.Ready == nil || st.failed[s.req] != nil {
			continue
		}
		if err := r.Ready(st.ctx, s.frame+1); err != nil {
			if st.ctx.Err() != nil {
				return nil, false
			}
			st.failed[s.req] = err
		}
	}
	skip := make([]bool, len(b))
	for k, s := range b {
		skip[k] = st.failed[s.req] != nil
	}
	return skip, true
}

// fill pre-processes the frames of batch b into buf, with each request's
// tokens.
func (st *stages) fill(buf *batchBuf, b []slot, skip []bool) error {
	e := st.e
	l := e.m.Tokenizer.MaxLength
	hw := e.m.Image.Height * e.m.Image.Width
	return parallel.For(len(b), func(k int) error {
		s := b[k]
		r := st.reqs[s.req]
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
	})
}

// run is stage 2: the session runs each prepared batch.
func (st *stages) run() {
	for j := range st.prepared {
		if st.ctx.Err() != nil {
			st.free <- j.buf
			continue
		}
		if err := st.e.Run(len(j.slots), j.buf.image, j.buf.ids, j.buf.mask, j.buf.prob); err != nil {
			st.fail(err)
			st.free <- j.buf
			continue
		}
		st.ran <- j
	}
}

// frameStats are one frame's segmented pixels and removed components.
type frameStats struct{ pixels, removed int64 }

// postprocess is stage 3: each batch's outputs become masks, then its
// buffer is free again.
func (st *stages) postprocess() {
	var stats []frameStats
	for j := range st.ran {
		stats = append(stats[:0], make([]frameStats, len(j.slots))...)
		_ = parallel.For(len(j.slots), func(k int) error {
			if !j.skip[k] {
				stats[k] = st.postFrame(j, k)
			}
			return nil
		})
		for k, s := range j.slots {
			if j.skip[k] {
				continue
			}
			st.out[s.req].SegmentedPixels += stats[k].pixels
			st.out[s.req].RemovedComponents += int(stats[k].removed)
		}
		st.free <- j.buf
	}
}

// postFrame turns slot k of batch j into its mask (and probabilities when
// asked), hands the mask to the request's OnMask, and counts it.
func (st *stages) postFrame(j batchJob, k int) frameStats {
	e := st.e
	h, w := e.m.Image.Height, e.m.Image.Width
	s := j.slots[k]
	r := st.reqs[s.req]
	n := r.Series.Rows * r.Series.Columns
	scr := e.getPostScratch(n)
	defer e.post.Put(scr)
	var fs frameStats
	mask := make([]uint8, n)
	src := j.buf.prob[k*h*w : (k+1)*h*w]
	set := 0
	if r.WantProbabilities {
		ProbToMask(mask, scr.prob, src, h, w, r.Series.Rows, r.Series.Columns, float32(e.m.Threshold))
		set = -1
	} else {
		set = ThresholdResized(mask, src, h, w, r.Series.Rows, r.Series.Columns, float32(e.m.Threshold))
	}
	if e.opts.MinComponentArea > 1 {
		if removed := RemoveSmallComponents(mask, r.Series.Rows, r.Series.Columns, e.opts.MinComponentArea, scr.labels); removed > 0 {
			fs.removed = int64(removed)
			set = -1
		}
	}
	if set < 0 {
		set = 0
		for _, v := range mask {
			set += int(v)
		}
	}
	fs.pixels = int64(set)
	p := st.out[s.req]
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
	return fs
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
