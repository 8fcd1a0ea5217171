package dicomio

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// This file holds a small JPEG lossless (process 14) encoder, used to
// check the decoder on every predictor, point transform and restart
// interval, and to benchmark it on a CT-sized frame.

// llPredict is the prediction of sample x of row (above: the previous
// row, nil on the first line of the image or of a restart interval) by
// the rules of T.81 H.1.2.1, as the decoder applies them.
func llPredict(row, above []uint32, x int, first bool, predictor int, initial int32) int32 {
	switch {
	case first || (above == nil && x == 0):
		return initial
	case above == nil:
		return int32(row[x-1])
	case x == 0:
		return int32(above[0])
	}
	return predict(predictor, int32(row[x-1]), int32(above[x]), int32(above[x-1]))
}

// llCategory is the difference category of d (-32768..32767) and its
// extra bits.
func llCategory(d int32) (int, uint32) {
	switch {
	case d == -32768:
		return 16, 0
	case d == 0:
		return 0, 0
	case d > 0:
		s := bits.Len32(uint32(d))
		return s, uint32(d)
	}
	s := bits.Len32(uint32(-d))
	return s, uint32(d+1<<s-1) & (1<<s - 1)
}

// huffSizes returns BITS and HUFFVAL of an optimal Huffman code of at most
// 16 bits for freq (T.81 K.2, with its reserved all-ones code point).
func huffSizes(freq [17]int) ([16]byte, []byte) {
	var f [18]int
	copy(f[:], freq[:])
	f[17] = 1
	var size [18]int
	others := [18]int{}
	for i := range others {
		others[i] = -1
	}
	for {
		v1, v2 := -1, -1
		for i := range f {
			if f[i] > 0 && (v1 < 0 || f[i] <= f[v1]) {
				v1 = i
			}
		}
		for i := range f {
			if f[i] > 0 && i != v1 && (v2 < 0 || f[i] <= f[v2]) {
				v2 = i
			}
		}
		if v2 < 0 {
			break
		}
		f[v1] += f[v2]
		f[v2] = 0
		for size[v1]++; others[v1] >= 0; size[v1]++ {
			v1 = others[v1]
		}
		others[v1] = v2
		for size[v2]++; others[v2] >= 0; size[v2]++ {
			v2 = others[v2]
		}
	}
	var count [33]int
	for _, s := range size {
		if s > 0 {
			count[s]++
		}
	}
	for i := 32; i > 16; i-- {
		for count[i] > 0 {
			j := i - 2
			for count[j] == 0 {
				j--
			}
			count[i] -= 2
			count[i-1]++
			count[j+1] += 2
			count[j]--
		}
	}
	i := 16
	for count[i] == 0 {
		i--
	}
	count[i]-- // the reserved code point
	var out [16]byte
	var vals []byte
	for l := 1; l <= 16; l++ {
		out[l-1] = byte(count[l])
	}
	for l := 1; l <= 32; l++ {
		for v := 0; v < 17; v++ {
			if size[v] == l {
				vals = append(vals, byte(v))
			}
		}
	}
	return out, vals
}

// bitWriter writes an entropy-coded segment with 0xFF bytes stuffed.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) put(v uint32, n uint) {
	if n == 0 {
		return
	}
	w.acc = w.acc<<n | uint64(v&(1<<n-1))
	w.n += n
	for w.n >= 8 {
		b := byte(w.acc >> (w.n - 8))
		w.out = append(w.out, b)
		if b == 0xFF {
			w.out = append(w.out, 0)
		}
		w.n -= 8
	}
}

// flush pads the last byte with ones.
func (w *bitWriter) flush() {
	if w.n > 0 {
		w.put(1<<(8-w.n)-1, 8-w.n)
	}
	w.acc, w.n = 0, 0
}

// encodeJPEGLossless encodes pix (rows × cols samples of precision bits)
// as a process 14 codestream with the given predictor (1–7), point
// transform and restart interval (samples; 0: none).
func encodeJPEGLossless(pix []uint32, rows, cols, precision, predictor, pt, restart int) []byte {
	in := make([]uint32, len(pix))
	for i, v := range pix {
		in[i] = v >> pt
	}
	initial := int32(1) << (precision - pt - 1)
	// The differences in coding order, and where restart markers go.
	type coded struct {
		cat   int
		extra uint32
		rst   bool
	}
	seq := make([]coded, 0, len(in))
	var freq [17]int
	left, firstLine := restart, true
	for y := 0; y < rows; y++ {
		row := in[y*cols : (y+1)*cols]
		var above []uint32
		if !firstLine {
			above = in[(y-1)*cols : y*cols]
		}
		for x := 0; x < cols; x++ {
			first, rst := y == 0 && x == 0, false
			if restart > 0 {
				if left == 0 {
					left, first, above, rst = restart, true, nil, true
				}
				left--
			}
			d := (int32(row[x]) - llPredict(row, above, x, first, predictor, initial)) & 0xFFFF
			if d >= 32768 {
				d -= 65536
			}
			c, e := llCategory(d)
			freq[c]++
			seq = append(seq, coded{c, e, rst})
		}
		firstLine = false
	}
	counts, vals := huffSizes(freq)
	var code [17]uint32
	var size [17]uint
	c, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for i := 0; i < int(counts[l-1]); i++ {
			code[vals[k]], size[vals[k]] = c, uint(l)
			c++
			k++
		}
		c <<= 1
	}
	out := []byte{0xFF, mSOI, 0xFF, mSOF3, 0, 11, byte(precision), byte(rows >> 8), byte(rows), byte(cols >> 8), byte(cols), 1, 1, 0x11, 0}
	out = append(out, 0xFF, mDHT)
	out = binary.BigEndian.AppendUint16(out, uint16(2+17+len(vals)))
	out = append(out, 0)
	out = append(out, counts[:]...)
	out = append(out, vals...)
	if restart > 0 {
		out = append(out, 0xFF, mDRI, 0, 4, byte(restart>>8), byte(restart))
	}
	out = append(out, 0xFF, mSOS, 0, 8, 1, 1, 0, byte(predictor), 0, byte(pt))
	w := &bitWriter{out: out}
	rst := 0
	for _, s := range seq {
		if s.rst {
			w.flush()
			w.out = append(w.out, 0xFF, byte(mRST0+rst%8))
			rst++
		}
		w.put(code[s.cat], size[s.cat])
		if s.cat < 16 {
			w.put(s.extra, uint(s.cat))
		}
	}
	w.flush()
	return append(w.out, 0xFF, mEOI)
}

// noisyCT is a 16-bit CT-like frame: a disc of soft tissue in air with
// Gaussian noise, as stored values (HU + 1024) in 12 significant bits.
func noisyCT(rows, cols int, seed uint64) []uint32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	pix := make([]uint32, rows*cols)
	for y := 0; y < rows; y++ {
		for x := 0; x < cols; x++ {
			dx, dy := float64(x-cols/2)/float64(cols), float64(y-rows/2)/float64(rows)
			hu, sd := -1000.0, 4.0
			if dx*dx+dy*dy < 0.16 {
				hu, sd = 40, 15
			}
			v := int(hu + 1024 + rng.NormFloat64()*sd)
			pix[y*cols+x] = uint32(min(max(v, 0), 4095))
		}
	}
	return pix
}

// TestJPEGLosslessRoundTrip decodes what the encoder above writes, for
// every predictor, with and without a point transform, with restart
// intervals of whole rows and of parts of rows, at several precisions.
func TestJPEGLosslessRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, prec := range []int{8, 12, 16} {
		for predictor := 1; predictor <= 7; predictor++ {
			for _, pt := range []int{0, 2} {
				for _, restart := range []int{0, 37, 3 * 37, 100} {
					rows, cols := 29, 37
					pix := make([]uint32, rows*cols)
					for i := range pix {
						switch {
						case i%7 == 0: // large jumps, including category 16
							pix[i] = rng.Uint32N(1 << prec)
						default:
							pix[i] = uint32(int(1<<(prec-1)) + int(rng.NormFloat64()*20))
						}
						pix[i] &= (1<<prec - 1) &^ (1<<pt - 1)
					}
					data := encodeJPEGLossless(pix, rows, cols, prec, predictor, pt, restart)
					fs := frameSpec{rows: rows, cols: cols, bitsAllocated: 16, bitsStored: prec}
					raw := make([]uint32, rows*cols)
					if _, err := decodeJPEGLossless(data, fs, raw); err != nil {
						t.Fatalf("precision %d, predictor %d, pt %d, restart %d: %v", prec, predictor, pt, restart, err)
					}
					for i := range pix {
						if raw[i] != pix[i] {
							t.Fatalf("precision %d, predictor %d, pt %d, restart %d: sample %d = %d, want %d", prec, predictor, pt, restart, i, raw[i], pix[i])
						}
					}
				}
			}
		}
	}
	// A 16-bit frame whose differences need category 16 (±32768).
	pix := []uint32{0, 0x8000, 0, 0xFFFF, 0x7FFF, 0xFFFF, 0, 1}
	data := encodeJPEGLossless(pix, 2, 4, 16, 1, 0, 0)
	raw := make([]uint32, len(pix))
	if _, err := decodeJPEGLossless(data, frameSpec{rows: 2, cols: 4, bitsAllocated: 16, bitsStored: 16}, raw); err != nil {
		t.Fatal(err)
	}
	for i := range pix {
		if raw[i] != pix[i] {
			t.Fatalf("category 16: sample %d = %d, want %d", i, raw[i], pix[i])
		}
	}
}

// BenchmarkDecodeJPEGLossless decodes a 512×512 16-bit CT-like frame
// coded with first-order prediction (SV1), as DICOM's JPEG Lossless SV1
// holds it; b.SetBytes counts the 16-bit samples decoded.
func BenchmarkDecodeJPEGLossless(b *testing.B) {
	const n = 512
	data := encodeJPEGLossless(noisyCT(n, n, 1), n, n, 16, 1, 0, 0)
	fs := frameSpec{rows: n, cols: n, bitsAllocated: 16, bitsStored: 16, signed: true}
	raw := make([]uint32, n*n)
	b.SetBytes(2 * n * n)
	for b.Loop() {
		if _, err := decodeJPEGLossless(data, fs, raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))/(2*n*n), "ratio")
}
