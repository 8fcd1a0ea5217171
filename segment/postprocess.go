package segment

import (
	"math"
	"sync"
)

// ProbToMask resizes a model probability map (h × w) back to the source
// frame's grid (rows × cols) into probOut (may be nil when only the mask is
// wanted, then scratch space is allocated) and thresholds it into mask
// (rows × cols, 1 where prob >= threshold).
func ProbToMask(mask []uint8, probOut []float32, prob []float32, h, w, rows, cols int, threshold float32) {
	if probOut == nil {
		probOut = make([]float32, rows*cols)
	}
	ResizeBilinear(probOut, rows, cols, prob, h, w)
	for i, p := range probOut[:rows*cols] {
		if p >= threshold {
			mask[i] = 1
		} else {
			mask[i] = 0
		}
	}
}

// ThresholdResized writes into mask (rows × cols) what ProbToMask does for
// the probability map prob (h × w), bit for bit, without computing every
// resized probability: each output pixel is a bilinear blend of four
// source values, so where all four lie clearly below the threshold (or all
// clearly at or above it) the whole run of output pixels that shares them
// is filled at once. Only runs whose corners straddle the threshold are
// interpolated exactly, as ResizeBilinear does. Probability maps are mostly
// background, so this is several times faster than ProbToMask. It returns
// the number of mask pixels set.
func ThresholdResized(mask []uint8, prob []float32, h, w, rows, cols int, threshold float32) int {
	set := 0
	if h == rows && w == cols {
		for i, p := range prob[:rows*cols] {
			mask[i] = b2u(p >= threshold)
			set += int(mask[i])
		}
		return set
	}
	// The margin covers the rounding of the blend (a few float32 ulps of
	// values near the threshold), so that a shortcut never decides
	// differently from the exact arithmetic; without it, corners at the
	// threshold can blend to a value just below it.
	margin := float32(1e-5 * max(1, math.Abs(float64(threshold))))
	below, above := threshold-margin, threshold+margin
	ph, pw := planFor(h, rows), planFor(w, cols)
	runs := runsFor(w, cols)
	colLo := make([]float32, w)
	colHi := make([]float32, w)
	// stretches: the output columns of a row in stretches that are all
	// below the threshold (0), all at or above it (1), or straddle it (2,
	// interpolated); the same for every output row that blends the same
	// two source rows.
	var stretches []stretch
	for r := 0; r < rows; r++ {
		a, b := ph.i0[r], ph.i1[r]
		row0, row1 := prob[a*w:a*w+w], prob[b*w:b*w+w]
		if r == 0 || a != ph.i0[r-1] || b != ph.i1[r-1] {
			for j := range colLo {
				x, y := nanLow(row0[j]), nanLow(row1[j])
				colLo[j], colHi[j] = min(x, y), max(x, y)
			}
			stretches = stretches[:0]
			for _, run := range runs {
				lo, hi := min(colLo[run.a], colLo[run.b]), max(colHi[run.a], colHi[run.b])
				v := uint8(2)
				if hi < below {
					v = 0
				} else if lo >= above {
					v = 1
				}
				if n := len(stretches); n > 0 && stretches[n-1].v == v {
					stretches[n-1].end = run.end
					continue
				}
				stretches = append(stretches, stretch{start: run.start, end: run.end, v: v})
			}
		}
		h0, h1 := ph.w0[r], ph.w1[r]
		out := mask[r*cols : r*cols+cols]
		for _, st := range stretches {
			seg := out[st.start:st.end]
			switch st.v {
			case 0:
				clear(seg)
			case 1:
				for i := range seg {
					seg[i] = 1
				}
				set += len(seg)
			default:
				for c := st.start; c < st.end; c++ {
					ca, cb, w0, w1 := pw.i0[c], pw.i1[c], pw.w0[c], pw.w1[c]
					t0 := float32(row0[ca]*w0) + float32(row0[cb]*w1)
					t1 := float32(row1[ca]*w0) + float32(row1[cb]*w1)
					out[c] = b2u(float32(t0*h0)+float32(t1*h1) >= threshold)
					set += int(out[c])
				}
			}
		}
	}
	return set
}

// nanLow maps NaN to -Inf: a NaN corner makes every blended value NaN,
// which is never at or above the threshold.
func nanLow(x float32) float32 {
	if x != x {
		return float32(math.Inf(-1))
	}
	return x
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// colRun is a run of output columns [start, end) that blend the same two
// source columns a and b.
type colRun struct{ start, end, a, b int }

// stretch is a run of output columns [start, end) that ThresholdResized
// fills with 0 (v = 0) or 1 (v = 1), or interpolates (v = 2).
type stretch struct {
	start, end int
	v          uint8
}

var runCache sync.Map // planKey → []colRun

// runsFor groups the output columns of an in → out resize by their source
// column pair.
func runsFor(in, out int) []colRun {
	if r, ok := runCache.Load(planKey{in, out}); ok {
		return r.([]colRun)
	}
	p := planFor(in, out)
	var runs []colRun
	for c := 0; c < out; c++ {
		if n := len(runs); n > 0 && runs[n-1].a == p.i0[c] && runs[n-1].b == p.i1[c] {
			runs[n-1].end = c + 1
			continue
		}
		runs = append(runs, colRun{start: c, end: c + 1, a: p.i0[c], b: p.i1[c]})
	}
	actual, _ := runCache.LoadOrStore(planKey{in, out}, runs)
	return actual.([]colRun)
}

// RemoveSmallComponents clears 8-connected components of mask (rows × cols,
// values 0/1) smaller than minArea pixels, and returns how many it removed.
// labels is scratch space of rows*cols int32 (allocated when nil).
func RemoveSmallComponents(mask []uint8, rows, cols, minArea int, labels []int32) int {
	if minArea <= 1 {
		return 0
	}
	n := rows * cols
	if len(labels) < n {
		labels = make([]int32, n)
	}
	labels = labels[:n]
	clear(labels)
	stack := make([]int, 0, 64)
	members := make([]int, 0, 64)
	removed := 0
	var next int32
	for start := 0; start < n; start++ {
		if mask[start] == 0 || labels[start] != 0 {
			continue
		}
		next++
		members = members[:0]
		stack = append(stack[:0], start)
		labels[start] = next
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			members = append(members, i)
			r, c := i/cols, i%cols
			for dr := -1; dr <= 1; dr++ {
				for dc := -1; dc <= 1; dc++ {
					rr, cc := r+dr, c+dc
					if rr < 0 || rr >= rows || cc < 0 || cc >= cols {
						continue
					}
					j := rr*cols + cc
					if mask[j] != 0 && labels[j] == 0 {
						labels[j] = next
						stack = append(stack, j)
					}
				}
			}
		}
		if len(members) < minArea {
			for _, i := range members {
				mask[i] = 0
			}
			removed++
		}
	}
	return removed
}
