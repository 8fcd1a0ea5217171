package dicomio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"tmcad/internal/parallel"
)

// LoadSeries reads one series from its files and returns its frames as
// float32 values in the modality's units (rescale slope/intercept applied,
// per frame for enhanced multi-frame), ordered along the slice normal when
// every frame has a position and the series one orientation, otherwise by
// InstanceNumber (then frame number).
//
// It reads in two passes: first every header (nothing is allocated for
// pixels until all sizes are known and checked against lim), then the pixel
// data, converted straight from the file into each frame's float32 slice,
// so that peak memory stays close to the size of the result.
//
// Errors (naming the file): files of different series, a duplicate SOP
// instance or slice position, mixed image sizes, orientations, pixel spacing,
// frames of reference or photometric interpretations, colour images,
// unsupported transfer syntaxes (*UnsupportedTransferSyntaxError), limits
// exceeded (*LimitError). Warnings (Series.Warnings): missing slices, uneven
// spacing, frames without geometry in a series that has some.
//
// LoadSeries is StartLoadSeries followed by Loading.Wait.
func LoadSeries(paths []string, lim Limits) (*Series, error) {
	l, err := StartLoadSeries(paths, lim)
	if err != nil {
		return nil, err
	}
	if err := l.Wait(); err != nil {
		return nil, err
	}
	return l.Series(), nil
}

// StartLoadSeries does LoadSeries' first pass (every header read and
// checked, the frames ordered) and returns with the second, the pixel data,
// decoding in the background on GOMAXPROCS goroutines in frame order, so
// that a consumer can start on the first frames while the rest are read.
// Errors of the first pass are returned here; errors of the second through
// the Loading. Every Loading must be waited for (Wait) or cancelled.
func StartLoadSeries(paths []string, lim Limits) (*Loading, error) {
	l, _, err := startLoad(paths, lim, nil)
	return l, err
}

// StartLoadSelected is StartLoadSeries under sel's rules, Select's: the
// instances Select drops (a localizer in a CT series, a secondary capture)
// are left out and returned with their reasons, and a series Select skips
// as a whole gives a *SkippedError. `tmcad run` loads a series' files this
// way, so that it keeps exactly the instances `tmcad process` keeps.
func StartLoadSelected(paths []string, lim Limits, sel Selector) (*Loading, []Skipped, error) {
	return startLoad(paths, lim, &sel)
}

// startLoad reads every header (the first pass), applies sel when set, and
// starts the pixel pass.
func startLoad(paths []string, lim Limits, sel *Selector) (*Loading, []Skipped, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("load series: no files")
	}
	lim = lim.withDefaults()
	read, err := readInstances(paths)
	if err != nil {
		return nil, nil, fmt.Errorf("load series: %w", err)
	}
	var skipped []Skipped
	if sel != nil {
		read, paths, skipped = selectRead(read, paths, *sel)
		if len(read) == 0 {
			return nil, skipped, noneSelected(skipped)
		}
	}
	insts, total, err := checkInstances(read, paths, lim)
	if err != nil {
		return nil, nil, err
	}
	if err := checkAlike(insts, total, lim); err != nil {
		return nil, nil, err
	}
	s, refs, err := orderFrames(insts, total)
	if err != nil {
		return nil, nil, err
	}
	l := newLoading(s, refs, total, len(insts))
	l.start(min(runtime.GOMAXPROCS(0), len(l.order)))
	return l, skipped, nil
}

// readInstances reads the header of every file, on several cores.
func readInstances(paths []string) ([]*instance, error) {
	read := make([]*instance, len(paths))
	err := parallel.For(len(paths), func(i int) error {
		in, err := readInstance(paths[i])
		if in != nil {
			// Pass 2 scans single-frame files again; a multi-frame file
			// keeps where its pixels are, so that its frames can be
			// decoded in pieces. No inflated data set is held.
			in.layout = frameRangeLayout(in)
		}
		read[i] = in
		return err
	})
	return read, err
}

// noneSelected is the error of a selection that kept no instance: the
// reason of the last instance skipped, for the series of the first.
func noneSelected(skipped []Skipped) error {
	reason := "no instance selected"
	if len(skipped) > 0 {
		reason = skipped[len(skipped)-1].Reason
	}
	uid := ""
	if len(skipped) > 0 {
		uid = skipped[0].SeriesInstanceUID
	}
	return &SkippedError{SeriesInstanceUID: uid, Reason: reason}
}

// checkInstances checks each instance read from paths on its own (its
// pixel data decodable, its image within lim) and against those before it
// (one series, no SOP instance twice, the frames within lim), and returns
// them with their total number of frames. It drops read's references as
// it goes.
func checkInstances(read []*instance, paths []string, lim Limits) ([]*instance, int, error) {
	insts := make([]*instance, 0, len(paths))
	seen := make(map[string]string, len(paths))
	total := 0
	for i, p := range paths {
		in := read[i]
		read[i] = nil
		if err := checkDecodable(in); err != nil {
			return nil, 0, fmt.Errorf("load series: %w", err)
		}
		if err := lim.checkImage(in.Header); err != nil {
			return nil, 0, fmt.Errorf("load series: %w", err)
		}
		if first := insts; len(first) > 0 && in.SeriesInstanceUID != first[0].SeriesInstanceUID {
			return nil, 0, fmt.Errorf("load series: %s is in series %s, %s in series %s", first[0].Path, first[0].SeriesInstanceUID, p, in.SeriesInstanceUID)
		}
		if other, dup := seen[in.SOPInstanceUID]; dup {
			return nil, 0, fmt.Errorf("load series: duplicate instance %s in %s and %s", in.SOPInstanceUID, other, p)
		}
		seen[in.SOPInstanceUID] = p
		total += in.Frames()
		if total > lim.MaxFrames {
			return nil, 0, fmt.Errorf("load series: %w", &LimitError{p, "frames", int64(total), int64(lim.MaxFrames)})
		}
		insts = append(insts, in)
	}
	return insts, total, nil
}

// checkAlike checks that the instances share an image size and a
// photometric interpretation, and that their total frames fit lim's
// bytes as float32.
func checkAlike(insts []*instance, total int, lim Limits) error {
	first := insts[0]
	for _, in := range insts[1:] {
		if in.Rows != first.Rows || in.Columns != first.Columns {
			return fmt.Errorf("load series: mixed image sizes: %d×%d in %s, %d×%d in %s", first.Rows, first.Columns, first.Path, in.Rows, in.Columns, in.Path)
		}
		if (in.PhotometricInterpretation == "MONOCHROME1") != (first.PhotometricInterpretation == "MONOCHROME1") {
			return fmt.Errorf("load series: mixed photometric interpretation: %s in %s, %s in %s", first.PhotometricInterpretation, first.Path, in.PhotometricInterpretation, in.Path)
		}
	}
	size := int64(first.Rows) * int64(first.Columns) * int64(total) * 4
	if size > lim.MaxBytes {
		return fmt.Errorf("load series: %w", &LimitError{first.Path, "bytes", size, lim.MaxBytes})
	}
	return nil
}

// orderFrames lists the frames of insts, orders them (along the slice
// normal when every frame has a position and orientation, else by
// number) and returns the Series they make, without its Frames yet.
func orderFrames(insts []*instance, total int) (*Series, []frameRef, error) {
	first := insts[0]
	refs := make([]frameRef, 0, total)
	geometric := 0
	for _, in := range insts {
		for k, g := range in.frames {
			refs = append(refs, frameRef{in: in, index: k, geom: g})
			if g.hasPos && g.hasOrient {
				geometric++
			}
		}
	}
	s := &Series{
		PatientStudy:      first.patient,
		SeriesInstanceUID: first.SeriesInstanceUID,
		SeriesNumber:      first.SeriesNumber,
		Modality:          first.Modality,
		BodyPartExamined:  first.BodyPartExamined,
		Photometric:       first.PhotometricInterpretation,
		Monochrome1:       first.PhotometricInterpretation == "MONOCHROME1",
		Rows:              first.Rows,
		Columns:           first.Columns,
		TransferSyntaxUID: first.TransferSyntaxUID,
	}
	switch {
	case geometric == len(refs):
		spacing, warns, err := orderGeometric(refs)
		if err != nil {
			return nil, nil, fmt.Errorf("load series %s: %w", first.SeriesInstanceUID, err)
		}
		s.HasGeometry = true
		s.SpacingBetweenSlices = spacing
		s.Warnings = append(s.Warnings, warns...)
	default:
		if geometric > 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%d of %d frames lack ImagePositionPatient/ImageOrientationPatient; ordered by InstanceNumber", len(refs)-geometric, len(refs)))
		}
		orderByNumber(refs)
	}
	g0 := refs[0].geom
	s.Orientation = g0.orient
	s.PixelSpacing = g0.spacing
	s.SliceThickness = g0.thickness
	s.FrameOfReferenceUID = refs[0].in.FrameOfReferenceUID
	s.PatientOrientation = refs[0].in.PatientOrientation
	if !s.HasGeometry && first.SpacingBetweenSlices > 0 {
		s.SpacingBetweenSlices = first.SpacingBetweenSlices
	}
	return s, refs, nil
}

// newLoading fills s.Frames (total of them) from the ordered refs and
// returns the Loading that decodes them, its decoding units listed (ninst:
// how many instances) but not started.
func newLoading(s *Series, refs []frameRef, total, ninst int) *Loading {
	// Pass 2 runs in the background: the instances in the order of their
	// first frame, into a volume allocated in two pieces (headBytes).
	s.Frames = make([]Frame, total)
	npix := s.Rows * s.Columns
	l := &Loading{headFrames: min(total, max(1, headBytes/(4*npix))), series: s, done: make([]bool, total), changed: make(chan struct{}), finished: make(chan struct{})}
	// A unit is an instance, or a range of frames of a multi-frame
	// instance (unitBytes of decoded pixel data), so that one large file,
	// native or compressed, streams and is decoded on several cores too.
	type unitKey struct {
		in    *instance
		piece int
	}
	pos := make(map[unitKey]int, ninst)
	for i, r := range refs {
		s.Frames[i] = Frame{
			SOPInstanceUID: r.in.SOPInstanceUID,
			SOPClassUID:    r.in.SOPClassUID,
			FrameNumber:    r.index + 1,
			Position:       r.geom.pos,
			InstanceNumber: r.in.InstanceNumber,
		}
		per := r.in.Frames()
		if r.in.layout != nil {
			per = max(1, unitBytes/(npix*max(1, r.in.BitsAllocated/8)))
		}
		key := unitKey{r.in, r.index / per}
		k, ok := pos[key]
		if !ok {
			k = len(l.order)
			pos[key] = k
			k0 := key.piece * per
			l.order = append(l.order, decodeUnit{in: r.in, k0: k0, frames: make([]int, min(per, r.in.Frames()-k0))})
		}
		l.order[k].frames[r.index-l.order[k].k0] = i
	}
	return l
}

// selectRead keeps the instances of the one series in read that sel
// selects, with their paths; a series that sel skips keeps none. Files of
// several series are left as they are, for the first pass to refuse.
func selectRead(read []*instance, paths []string, sel Selector) ([]*instance, []string, []Skipped) {
	hs := make([]Header, len(read))
	for i, in := range read {
		hs[i] = in.Header
	}
	groups := GroupSeries(hs)
	if len(groups) != 1 {
		return read, paths, nil
	}
	kept, skipped := selectGroup(groups[0], sel)
	if kept == nil {
		return nil, nil, skipped
	}
	keep := make(map[string]bool, len(kept.Headers))
	for _, h := range kept.Headers {
		keep[h.Path] = true
	}
	var outR []*instance
	var outP []string
	for i, in := range read {
		if keep[in.Path] {
			outR, outP = append(outR, in), append(outP, paths[i])
		}
	}
	return outR, outP, skipped
}

// Loading is a series whose pixel data is being decoded in the background
// (StartLoadSeries). Its Series' geometry and frame list are final from the
// start; frame i's Pixels may be read once WaitFrames(ctx, i+1) or Wait has
// returned nil.
type Loading struct {
	series *Series
	// The pixels live in two allocations: the first headFrames frames, and
	// the rest (see headBytes).
	headFrames int
	head, rest volumeChunk
	order      []decodeUnit
	next       atomic.Int64
	stop       atomic.Bool

	mu   sync.Mutex
	done []bool
	// allPadding lists frames that are padding only: they are filled with
	// the series' minimum, so they are released when every frame is in.
	allPadding []int
	ready      int           // frames [0, ready) are decoded
	err        error         // the error of the lowest failing unit
	errAt      int           // its index in order
	changed    chan struct{} // closed (and replaced) on every change
	finished   chan struct{} // closed when the background work has ended
}

// headBytes is the size of the first of the two allocations the frames'
// pixels are made in. The first frames can then be decoded (and handed to
// the model) while the rest of the volume is allocated, which for reused
// memory means zeroed; more pieces would cost garbage collections, as the
// heap would grow by steps.
const headBytes = 8 << 20

// volumeChunk is the memory of consecutive frames, allocated once.
type volumeChunk struct {
	once sync.Once
	px   []float32
}

// get allocates the chunk of n pixels on first use.
func (c *volumeChunk) get(n int) []float32 {
	c.once.Do(func() { c.px = make([]float32, n) })
	return c.px
}

// framePixels returns frame i's pixels within its allocation.
func (l *Loading) framePixels(i int) []float32 {
	s := l.series
	npix := s.Rows * s.Columns
	px, k := l.head.get(l.headFrames*npix), i
	if i >= l.headFrames {
		px, k = l.rest.get((len(s.Frames)-l.headFrames)*npix), i-l.headFrames
	}
	return px[k*npix : (k+1)*npix : (k+1)*npix]
}

// decodeUnit is one instance and the series positions of its frames.
type decodeUnit struct {
	in *instance
	// k0 is the instance's first frame in the unit; frames[k] is the
	// series index of the instance's frame k0+k.
	k0     int
	frames []int
}

// unitBytes is the pixel data (as stored, before any compression) of one
// decoding unit of a multi-frame instance.
var unitBytes = 4 << 20 // a variable for tests

// frameRangeLayout keeps the layout of a multi-frame instance whose data
// set is the file itself (not deflated), without its reader: the offsets
// let its frames be decoded in ranges, native or encapsulated (whose
// frames' fragments are then found once, by the first range decoded, and
// shared). Nil for anything else.
func frameRangeLayout(in *instance) *layout {
	l := in.layout
	if l == nil || !l.HasPixels || l.TransferSyntaxUID == DeflatedExplicitVRLE || in.Frames() < 2 {
		return nil
	}
	if l.pixelEncaps != encapsulated(l.TransferSyntaxUID) {
		return nil // decodeFrom reports the mismatch
	}
	c := *l
	c.data = nil
	if c.pixelEncaps {
		c.index = &encapsIndex{}
	}
	return &c
}

// errLoadCancelled is the error of a cancelled Loading.
var errLoadCancelled = errors.New("load series: cancelled")

// Series returns the series being loaded.
func (l *Loading) Series() *Series { return l.series }

// start runs the decoding on the given number of goroutines.
func (l *Loading) start(workers int) {
	if n := len(l.series.Frames) - l.headFrames; n > 0 {
		// The rest of the volume, allocated beside the first decoding.
		go l.rest.get(n * l.series.Rows * l.series.Columns)
	}
	var wg sync.WaitGroup
	var padded atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := &scratch{}
			for !l.stop.Load() {
				k := int(l.next.Add(1) - 1)
				if k >= len(l.order) {
					return
				}
				n, pending, err := l.decode(l.order[k], sc)
				padded.Add(n)
				l.finish(k, pending, err)
				// Let a consumer woken by finish run now rather than
				// after this goroutine's time slice: the model waits
				// for its first frames.
				runtime.Gosched()
			}
		}()
	}
	go func() {
		wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err == nil && !l.allDone() {
			l.err, l.errAt = errLoadCancelled, len(l.order)
		}
		if l.err == nil {
			l.series.PaddedPixels += padded.Load()
			if len(l.allPadding) > 0 {
				fillPadding(l.series.Frames)
				for _, i := range l.allPadding {
					l.done[i] = true
				}
			}
			l.ready = len(l.done)
		}
		close(l.changed)
		close(l.finished)
	}()
}

// decode decodes one unit into its frames' place in the volume and fills each
// frame's padding with the minimum of its real values; it returns the
// number of padding pixels and the frames that are padding only.
func (l *Loading) decode(u decodeUnit, sc *scratch) (int64, []int, error) {
	s := l.series
	dst := make([][]float32, len(u.frames))
	for k, i := range u.frames {
		dst[k] = l.framePixels(i)
	}
	var n int64
	var err error
	if u.in.layout != nil {
		n, err = decodeFrameRange(u.in, u.k0, dst, sc)
	} else {
		n, err = decodeInstance(u.in, dst, sc)
	}
	if err != nil {
		return n, nil, err
	}
	var pending []int
	for k, i := range u.frames {
		if n > 0 && !fillFramePadding(dst[k]) {
			pending = append(pending, i)
		}
		s.Frames[i].Pixels = dst[k]
	}
	return n, pending, nil
}

// finish records unit k's outcome and wakes the waiters.
func (l *Loading) finish(k int, pending []int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if l.err == nil || k < l.errAt {
			l.err, l.errAt = fmt.Errorf("load series: %w", err), k
		}
		l.stop.Store(true)
	} else {
		for _, i := range l.order[k].frames {
			l.done[i] = !slices.Contains(pending, i)
		}
		l.allPadding = append(l.allPadding, pending...)
		for l.ready < len(l.done) && l.done[l.ready] {
			l.ready++
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// allDone reports whether every frame was decoded; l.mu is held.
func (l *Loading) allDone() bool {
	for i, d := range l.done {
		if !d && !slices.Contains(l.allPadding, i) {
			return false
		}
	}
	return true
}

// WaitFrames blocks until frames [0, n) of the series are decoded, the
// loading failed (its error), or ctx is done (ctx's error).
func (l *Loading) WaitFrames(ctx context.Context, n int) error {
	if total := len(l.series.Frames); n > total {
		return fmt.Errorf("load series %s: %d frames asked for, the series has %d", l.series.SeriesInstanceUID, n, total)
	}
	for {
		l.mu.Lock()
		ready, err, ch := l.ready, l.err, l.changed
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if ready >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Wait blocks until the background decoding has ended and returns its
// error: the one LoadSeries would have returned, or an error saying the
// loading was cancelled.
func (l *Loading) Wait() error {
	<-l.finished
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Cancel stops decoding further instances (those in progress finish) and
// waits for the background work to end. Wait then reports the
// cancellation unless every frame had already been decoded.
func (l *Loading) Cancel() {
	l.stop.Store(true)
	<-l.finished
}

// checkDecodable rejects, from the header alone, files whose pixels
// LoadSeries cannot turn into greyscale float32 frames.
func checkDecodable(in *instance) error {
	if !in.HasPixelData {
		return fmt.Errorf("%s: no pixel data (SOP class %s)", in.Path, in.SOPClassUID)
	}
	if err := CheckTransferSyntax(in.Path, in.TransferSyntaxUID); err != nil {
		return err
	}
	if in.SamplesPerPixel != 1 {
		return fmt.Errorf("%s: %d samples per pixel (%s): only greyscale images are supported", in.Path, in.SamplesPerPixel, in.PhotometricInterpretation)
	}
	switch in.PhotometricInterpretation {
	case "MONOCHROME1", "MONOCHROME2", "":
	default:
		return fmt.Errorf("%s: photometric interpretation %s is not supported (MONOCHROME1 or MONOCHROME2)", in.Path, in.PhotometricInterpretation)
	}
	if in.Rows < 1 || in.Columns < 1 {
		return fmt.Errorf("%s: image size %d×%d", in.Path, in.Rows, in.Columns)
	}
	return nil
}

// fillFramePadding replaces a frame's padding pixels (NaN) by the minimum
// of its real values; it reports false, changing nothing, when the frame
// is all padding.
func fillFramePadding(v []float32) bool {
	lo := float32(math.Inf(1))
	nan := false
	for _, x := range v {
		if x < lo { // false for NaN
			lo = x
		}
		nan = nan || x != x
	}
	if !nan {
		return true
	}
	if math.IsInf(float64(lo), 1) {
		return false
	}
	for i, x := range v {
		if x != x {
			v[i] = lo
		}
	}
	return true
}

// fillPadding replaces the padding pixels (NaN) left in frames that are
// padding only by the minimum of the real values of the whole series (0
// when every pixel of the series is padding).
func fillPadding(frames []Frame) {
	lo := float32(math.Inf(1))
	for _, f := range frames {
		for _, x := range f.Pixels {
			if x < lo { // false for NaN
				lo = x
			}
		}
	}
	if math.IsInf(float64(lo), 1) {
		lo = 0
	}
	for _, f := range frames {
		v := f.Pixels
		for i, x := range v {
			if x != x {
				v[i] = lo
			}
		}
	}
}
