package writer

import (
	"io"
	"testing"
)

// BenchmarkWriteSEG encodes a 300-frame 512×512 BINARY SEG to io.Discard
// from byte-per-pixel masks (profiling aid; bench/writer records the
// numbers).
func BenchmarkWriteSEG(b *testing.B) {
	src := ctSeries(300, 512, 512)
	masks := discMasks(1, 300, 512, 512, nil, false)
	desc := testDescription(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := WriteSEG(io.Discard, src, masks, desc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteSEGPacked is BenchmarkWriteSEG from BitMasks, the
// production path.
func BenchmarkWriteSEGPacked(b *testing.B) {
	src := ctSeries(300, 512, 512)
	masks := naivePack(discMasks(1, 300, 512, 512, nil, false), 512*512)
	desc := testDescription(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := WriteSEG(io.Discard, src, masks, desc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPackFrame packs one 512×512 byte mask (a disc).
func BenchmarkPackFrame(b *testing.B) {
	m := discMasks(1, 1, 512, 512, nil, false)[0][0]
	dst := make([]byte, PackedLen(len(m)))
	b.SetBytes(int64(len(m)))
	for i := 0; i < b.N; i++ {
		PackFrame(dst, m)
	}
}

// BenchmarkThresholdPack thresholds one 512×512 probability map.
func BenchmarkThresholdPack(b *testing.B) {
	m := discMasks(1, 1, 512, 512, nil, true)[0][0]
	p := make([]float32, len(m))
	for i, v := range m {
		p[i] = float32(v) / 255
	}
	dst := make([]byte, PackedLen(len(p)))
	b.SetBytes(int64(len(p) * 4))
	for i := 0; i < b.N; i++ {
		ThresholdPack(dst, p, 0.5)
	}
}
