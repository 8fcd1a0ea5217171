package segment

import (
	"fmt"
	"math"
	"sync"
)

// The arithmetic below is the contract of docs/CONTRACTS.md, written to give
// the same float32 results as tmca/preprocess.py (NumPy float32 and
// torch.nn.functional.interpolate). Explicit float32(...) conversions stop
// the compiler from fusing a multiply and an add, which would round
// differently from PyTorch.

// WindowFrame maps modality values src to [0, 1] in dst (same length) with
// the window w: fixed (center ± width/2) or minmax (the frame's own range).
// A window with hi <= lo gives all zeros.
func WindowFrame(dst, src []float32, w Window) {
	win := windowOf(src, w, false)
	for i, v := range src {
		dst[i] = win.apply(v)
	}
}

// windower is a window's arithmetic, with the optional MONOCHROME1
// inversion after it.
type windower struct {
	lo, span float32
	zero     bool // hi <= lo: every value maps to 0
	invert   bool
}

// windowOf resolves w for the frame src: fixed bounds, or the frame's own
// minimum and maximum.
func windowOf(src []float32, w Window, invert bool) windower {
	var lo, hi float32
	switch w.Mode {
	case "fixed":
		lo, hi = float32(w.Center-w.Width/2), float32(w.Center+w.Width/2)
	default: // minmax
		if len(src) > 0 {
			lo, hi = src[0], src[0]
		}
		for _, v := range src {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
	}
	return windower{lo: lo, span: float32(hi - lo), zero: !(hi > lo), invert: invert}
}

// apply maps one value (the float32 arithmetic of the contract).
func (w windower) apply(v float32) float32 {
	var y float32
	if !w.zero {
		y = float32(v-w.lo) / w.span
		if y < 0 {
			y = 0
		} else if y > 1 {
			y = 1
		}
	}
	if w.invert {
		y = 1 - y
	}
	return y
}

// axisPlan holds, for every output index along one axis, the two source
// indices and their weights of align_corners=False bilinear interpolation.
type axisPlan struct {
	i0, i1 []int
	w0, w1 []float32
	// cols lists the source indices read at all (i0 ∪ i1), ascending.
	cols []int
}

type planKey struct{ in, out int }

var plans sync.Map // planKey → *axisPlan

// planFor computes (once per size pair) PyTorch's linear interpolation
// indices and weights: scale = in/out in float32, then the source index
// src = max(scale*(d+0.5) - 0.5, 0) in float64 (docs/CONTRACTS.md).
func planFor(in, out int) *axisPlan {
	if p, ok := plans.Load(planKey{in, out}); ok {
		return p.(*axisPlan)
	}
	p := &axisPlan{i0: make([]int, out), i1: make([]int, out), w0: make([]float32, out), w1: make([]float32, out)}
	scale := float64(float32(in) / float32(out))
	for d := 0; d < out; d++ {
		real := scale*(float64(d)+0.5) - 0.5
		if real < 0 {
			real = 0
		}
		i := int(math.Floor(real))
		lambda := float32(real - float64(i))
		if lambda < 0 {
			lambda = 0
		} else if lambda > 1 {
			lambda = 1
		}
		p.i0[d] = i
		if i < in-1 {
			p.i1[d] = i + 1
		} else {
			p.i1[d] = i
		}
		p.w0[d] = 1 - lambda
		p.w1[d] = lambda
	}
	used := make([]bool, in)
	for d := 0; d < out; d++ {
		used[p.i0[d]], used[p.i1[d]] = true, true
	}
	for i, u := range used {
		if u {
			p.cols = append(p.cols, i)
		}
	}
	actual, _ := plans.LoadOrStore(planKey{in, out}, p)
	return actual.(*axisPlan)
}

// ResizeBilinear resizes src (sh × sw, row-major) into dst (dh × dw) exactly
// as torch.nn.functional.interpolate(mode="bilinear", align_corners=False)
// does for float32, without antialiasing.
func ResizeBilinear(dst []float32, dh, dw int, src []float32, sh, sw int) {
	if dh == sh && dw == sw {
		copy(dst[:dh*dw], src[:sh*sw])
		return
	}
	ph, pw := planFor(sh, dh), planFor(sw, dw)
	for r := 0; r < dh; r++ {
		row0 := src[ph.i0[r]*sw : ph.i0[r]*sw+sw]
		row1 := src[ph.i1[r]*sw : ph.i1[r]*sw+sw]
		blendRow(dst[r*dw:r*dw+dw], row0, row1, pw, ph.w0[r], ph.w1[r])
	}
}

// blendRow writes one output row of the bilinear resize from its two
// source rows (weights h0, h1) with the column plan pw.
func blendRow(out, row0, row1 []float32, pw *axisPlan, h0, h1 float32) {
	for c := range out {
		a, b, w0, w1 := pw.i0[c], pw.i1[c], pw.w0[c], pw.w1[c]
		t0 := float32(row0[a]*w0) + float32(row0[b]*w1)
		t1 := float32(row1[a]*w0) + float32(row1[b]*w1)
		out[c] = float32(t0*h0) + float32(t1*h1)
	}
}

// resizeWindowed is ResizeBilinear of the windowed source: for each output
// row it windows only the source columns the row blends (pw.cols) of its
// two source rows.
func resizeWindowed(dst []float32, dh, dw int, src []float32, sh, sw int, win windower) {
	ph, pw := planFor(sh, dh), planFor(sw, dw)
	w0, w1 := make([]float32, sw), make([]float32, sw)
	for r := 0; r < dh; r++ {
		row0 := src[ph.i0[r]*sw : ph.i0[r]*sw+sw]
		row1 := src[ph.i1[r]*sw : ph.i1[r]*sw+sw]
		for _, c := range pw.cols {
			w0[c], w1[c] = win.apply(row0[c]), win.apply(row1[c])
		}
		blendRow(dst[r*dw:r*dw+dw], w0, w1, pw, ph.w0[r], ph.w1[r])
	}
}

// Preprocessor turns frames in modality units into model input, per the
// manifest: window → MONOCHROME1 inversion → resize → normalise.
type Preprocessor struct {
	m *Manifest
}

// NewPreprocessor returns the pre-processing of manifest m.
func NewPreprocessor(m *Manifest) *Preprocessor {
	return &Preprocessor{m: m}
}

// Frame writes the model input for one frame (rows × cols modality values)
// into dst, which must hold image.height × image.width values.
func (p *Preprocessor) Frame(dst, src []float32, rows, cols int, modality string, monochrome1 bool) error {
	h, w := p.m.Image.Height, p.m.Image.Width
	if len(src) != rows*cols || rows <= 0 || cols <= 0 {
		return fmt.Errorf("preprocess: frame has %d values, want %d×%d", len(src), rows, cols)
	}
	if len(dst) < h*w {
		return fmt.Errorf("preprocess: destination holds %d values, want %d", len(dst), h*w)
	}
	// The window is applied to the source pixels the resize reads, as it
	// reads them: the same values in the same arithmetic as windowing the
	// whole frame first, but for a 512² frame going to 96² about a seventh
	// of the work.
	win := windowOf(src, p.m.WindowFor(modality), monochrome1)
	out := dst[:h*w]
	if h == rows && w == cols {
		for i, v := range src {
			out[i] = win.apply(v)
		}
	} else {
		resizeWindowed(out, h, w, src, rows, cols, win)
	}
	mean, std := float32(p.m.Normalize.Mean), float32(p.m.Normalize.Std)
	for i, v := range out {
		out[i] = float32(v-mean) / std
	}
	return nil
}
