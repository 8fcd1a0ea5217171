package segment

import (
	"math"
	"math/rand/v2"
	"testing"
)

// probMap is a model-like probability map: background near 0, a blob near
// 1 with a soft edge, values planted exactly at and around the threshold,
// and optionally a NaN.
func probMap(rng *rand.Rand, h, w int, thr float32, nan bool) []float32 {
	p := make([]float32, h*w)
	cy, cx, rad := rng.Float64()*float64(h), rng.Float64()*float64(w), 2+rng.Float64()*float64(min(h, w))/3
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := math.Hypot(float64(y)-cy, float64(x)-cx) - rad
			p[y*w+x] = float32(1/(1+math.Exp(d))) * float32(0.98+0.02*rng.Float64())
		}
	}
	for k := 0; k < h*w/10; k++ {
		i := rng.IntN(h * w)
		switch rng.IntN(4) {
		case 0:
			p[i] = thr
		case 1:
			p[i] = math.Nextafter32(thr, 0)
		case 2:
			p[i] = math.Nextafter32(thr, 1)
		default:
			p[i] = thr + float32(rng.NormFloat64()*1e-5)
		}
	}
	if nan {
		p[rng.IntN(h*w)] = float32(math.NaN())
	}
	return p
}

// TestThresholdResizedEqualsProbToMask: the shortcut thresholding gives the
// exact masks of resize-then-threshold, for up- and down-sampling, odd
// sizes, values at the threshold and NaN.
func TestThresholdResizedEqualsProbToMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	sizes := [][4]int{{96, 96, 512, 512}, {96, 96, 97, 1999}, {96, 96, 40, 33}, {8, 8, 8, 8}, {96, 96, 2048, 2500}, {5, 7, 3, 256}}
	for _, sz := range sizes {
		h, w, rows, cols := sz[0], sz[1], sz[2], sz[3]
		set, unset := 0, 0
		for k := 0; k < 6; k++ {
			thr := []float32{0.5, 0.3, 0.9}[k%3]
			p := probMap(rng, h, w, thr, k%2 == 1)
			want := make([]uint8, rows*cols)
			ProbToMask(want, nil, p, h, w, rows, cols, thr)
			got := make([]uint8, rows*cols)
			for i := range got {
				got[i] = 7 // every pixel must be written
			}
			n := ThresholdResized(got, p, h, w, rows, cols, thr)
			before := set
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%dx%d -> %dx%d, case %d: pixel %d is %d, exact resize gives %d", h, w, rows, cols, k, i, got[i], want[i])
				}
				set += int(got[i])
				unset += 1 - int(got[i])
			}
			if set-before != n {
				t.Fatalf("%dx%d -> %dx%d, case %d: returned %d set pixels, the mask has %d", h, w, rows, cols, k, n, set-before)
			}
		}
		if set == 0 || unset == 0 {
			t.Fatalf("%dx%d -> %dx%d: degenerate masks (%d set, %d not), the test shows nothing", h, w, rows, cols, set, unset)
		}
	}
}

// TestPreprocessWindowsWhatItReads: windowing only the pixels the resize
// reads gives exactly the result of windowing the whole frame, inverting
// and resizing it (the contract's order).
func TestPreprocessWindowsWhatItReads(t *testing.T) {
	m := &Manifest{}
	m.Image.Height, m.Image.Width = 96, 96
	m.Normalize.Mean, m.Normalize.Std = 0.5, 0.25
	m.Windows = map[string]Window{"CT": {Mode: "fixed", Center: -600, Width: 1500}, "CR": {Mode: "minmax"}}
	pre := NewPreprocessor(m)
	rng := rand.New(rand.NewPCG(3, 5))
	for _, tc := range []struct {
		rows, cols int
		modality   string
		mono1      bool
		flat       bool
	}{
		{512, 512, "CT", false, false}, {512, 512, "CR", true, false}, {333, 1001, "CR", false, false},
		{96, 96, "CT", true, false}, {64, 80, "CT", false, false}, {100, 100, "CR", false, true},
	} {
		src := make([]float32, tc.rows*tc.cols)
		for i := range src {
			if !tc.flat {
				src[i] = float32(rng.NormFloat64()*700 - 500)
			}
		}
		got := make([]float32, 96*96)
		if err := pre.Frame(got, src, tc.rows, tc.cols, tc.modality, tc.mono1); err != nil {
			t.Fatal(err)
		}
		win := make([]float32, len(src))
		WindowFrame(win, src, m.WindowFor(tc.modality))
		if tc.mono1 {
			for i, v := range win {
				win[i] = 1 - v
			}
		}
		want := make([]float32, 96*96)
		ResizeBilinear(want, 96, 96, win, tc.rows, tc.cols)
		for i, v := range want {
			want[i] = float32(v-0.5) / 0.25
			if got[i] != want[i] {
				t.Fatalf("%d×%d %s mono1=%v: value %d is %v, the whole-frame order gives %v", tc.rows, tc.cols, tc.modality, tc.mono1, i, got[i], want[i])
			}
		}
	}
}
