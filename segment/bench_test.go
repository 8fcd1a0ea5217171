package segment

import (
	"math"
	"math/rand/v2"
	"testing"
)

// BenchmarkPreprocessFrame: one 512×512 CT frame to the 96×96 model input.
func BenchmarkPreprocessFrame(b *testing.B) {
	m := &Manifest{}
	m.Image.Height, m.Image.Width = 96, 96
	m.Normalize.Mean, m.Normalize.Std = 0.5, 0.25
	m.Windows = map[string]Window{"CT": {Mode: "fixed", Center: -600, Width: 1500}}
	pre := NewPreprocessor(m)
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]float32, 512*512)
	for i := range src {
		src[i] = float32(rng.NormFloat64()*700 - 500)
	}
	dst := make([]float32, 96*96)
	b.SetBytes(int64(len(src) * 4))
	for b.Loop() {
		if err := pre.Frame(dst, src, 512, 512, "CT", false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThresholdResized: one 96×96 probability map (a blob with a soft
// edge on a background near 0, as the model gives) to a 512×512 mask,
// against ProbToMask (resize, then threshold).
func BenchmarkThresholdResized(b *testing.B) {
	p := make([]float32, 96*96)
	for y := 0; y < 96; y++ {
		for x := 0; x < 96; x++ {
			d := math.Hypot(float64(y)-40, float64(x)-55) - 14
			p[y*96+x] = float32(1 / (1 + math.Exp(2*d)))
		}
	}
	mask := make([]uint8, 512*512)
	b.Run("shortcut", func(b *testing.B) {
		for b.Loop() {
			ThresholdResized(mask, p, 96, 96, 512, 512, 0.5)
		}
	})
	b.Run("ProbToMask", func(b *testing.B) {
		prob := make([]float32, 512*512)
		for b.Loop() {
			ProbToMask(mask, prob, p, 96, 96, 512, 512, 0.5)
		}
	})
}
