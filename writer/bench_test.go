package writer

import (
	"io"
	"testing"
)

// BenchmarkWriteSEG encodes a 300-frame 512×512 BINARY SEG to io.Discard
// (profiling aid; bench/writer records the numbers).
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
