package writer

import (
	"bytes"
	"io"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// referencePixelData is the Pixel Data value of a case computed one pixel
// at a time from the expected frames: BINARY bit k of the stream is pixel
// k (LSB first, across frame boundaries), FRACTIONAL one byte per pixel;
// padded to even length.
func referencePixelData(c segCase) []byte {
	_, frames := expectedFrames(c)
	all := bytes.Join(frames, nil)
	var out []byte
	if c.desc.Type == Fractional {
		out = all
	} else {
		out = make([]byte, (len(all)+7)/8)
		for k, v := range all {
			if v != 0 {
				out[k/8] |= 1 << (k % 8)
			}
		}
	}
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// TestStreamedPixelDataMatchesLibraryPath: the SEG whose Pixel Data element
// is appended and streamed by this package is byte-identical to the same
// dataset written entirely by the DICOM library (Pixel Data through its
// unprocessed-value path), for byte and bit-packed masks, BINARY and
// FRACTIONAL, frame sizes aligned to 8 pixels and not.
func TestStreamedPixelDataMatchesLibraryPath(t *testing.T) {
	var cases []segCase
	for _, c := range conformanceCases(t) {
		cases = append(cases, c)
		// Empty frames kept (nil frames written as zeros), and a frame
		// that is allocated but all zero.
		k := c
		k.name += "-keep-empty"
		k.desc.KeepEmptyFrames = true
		k.masks = append(Masks(nil), c.masks...)
		k.masks[0] = append([][]byte(nil), c.masks[0]...)
		k.masks[0][0] = make([]byte, c.src.Rows*c.src.Columns)
		cases = append(cases, k)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seg, err := EncodeSEG(c.src, c.input(), c.desc)
			if err != nil {
				t.Fatal(err)
			}
			d := c.desc.withDefaults(seriesInfo{seriesNumber: c.src.SeriesNumber})
			uids, err := deriveSEGUIDs(d, c.src.SeriesInstanceUID)
			if err != nil {
				t.Fatal(err)
			}
			frames, _ := expectedFrames(c)
			ds := buildDataset(c.src, d, uids, frames)
			pix := referencePixelData(c)
			v, err := dicom.NewValue(dicom.PixelDataInfo{IntentionallyUnprocessed: true, UnprocessedValueData: pix})
			if err != nil {
				t.Fatal(err)
			}
			ds.Elements = append(ds.Elements, &dicom.Element{
				Tag: tag.PixelData, ValueRepresentation: tag.VRPixelData, RawValueRepresentation: "OB",
				ValueLength: uint32(len(pix)), Value: v,
			})
			var lib bytes.Buffer
			if err := dicom.Write(&lib, ds, dicom.SkipVRVerification()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(seg.Data, lib.Bytes()) {
				i := 0
				for i < min(len(seg.Data), lib.Len()) && seg.Data[i] == lib.Bytes()[i] {
					i++
				}
				t.Fatalf("streamed SEG (%d bytes) differs from the library's (%d bytes) at byte %d", len(seg.Data), lib.Len(), i)
			}
			if len(seg.Data) < len(pix) || !bytes.Equal(seg.Data[len(seg.Data)-len(pix):], pix) {
				t.Fatal("Pixel Data is not the last element or differs from the reference")
			}
		})
	}
}

// TestWriteSEGUnbufferedWriter: WriteSEG to a writer that accepts a few
// bytes per call gives the same file as EncodeSEG.
func TestWriteSEGUnbufferedWriter(t *testing.T) {
	for _, c := range conformanceCases(t) {
		want, err := EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := WriteSEG(&got, c.src, c.input(), c.desc); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Data) {
			t.Errorf("%s: WriteSEG and EncodeSEG differ", c.name)
		}
	}
}

// failAfter fails every write after n bytes.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, io.ErrShortWrite
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteSEGReportsWriteErrors(t *testing.T) {
	c := conformanceCases(t)[2]
	full, err := EncodeSEG(c.src, c.input(), c.desc)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 100, len(full.Data) - 3} {
		for _, in := range []MaskSet{c.masks, naivePack(c.masks, c.src.Rows*c.src.Columns)} {
			_, err := WriteSEG(&failAfter{n}, c.src, in, c.desc)
			if err == nil || !strings.Contains(err.Error(), "writing") {
				t.Errorf("fail after %d bytes (%T): err = %v", n, in, err)
			}
		}
	}
}

func TestBitMasksErrors(t *testing.T) {
	c := conformanceCases(t)[2] // 37×41: 190 bytes per packed frame
	bm := naivePack(c.masks, 37*41)
	d := c.desc
	d.Type = Fractional
	if _, err := EncodeSEG(c.src, bm, d); err == nil || !strings.Contains(err.Error(), "FRACTIONAL") {
		t.Errorf("FRACTIONAL from BitMasks: %v", err)
	}
	if _, err := EncodeSEG(c.src, bm[:1], c.desc); err == nil || !strings.Contains(err.Error(), "segments") {
		t.Errorf("segment count mismatch: %v", err)
	}
	bad := BitMasks{bm[0], append([][]byte(nil), bm[1]...)}
	bad[1][4] = make([]byte, 37*41) // bytes per pixel, not bits
	if _, err := EncodeSEG(c.src, bad, c.desc); err == nil || !strings.Contains(err.Error(), "segment 2 frame 4 has 1517 bytes, want") {
		t.Errorf("frame size mismatch: %v", err)
	}
	if _, err := EncodeSEG(c.src, nil, c.desc); err == nil {
		t.Error("nil masks accepted")
	}
}

// TestBitMasksEmptyFrames: only the first rows*columns bits count.
func TestBitMasksEmptyFrames(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 4095, 4096, 4097, 37 * 41} {
		fr := make([]byte, PackedLen(n))
		m := BitMasks{{fr, nil}}
		if r := n % 8; r != 0 {
			fr[len(fr)-1] = 0xFF << r // padding bits only
		}
		if m.nonEmpty(0, 0, n) || m.nonEmpty(0, 1, n) {
			t.Errorf("n=%d: padding bits or nil frame counted as set", n)
		}
		fr[(n-1)/8] |= 1 << ((n - 1) % 8) // last pixel
		if !m.nonEmpty(0, 0, n) {
			t.Errorf("n=%d: last pixel missed", n)
		}
		clear(fr)
		fr[0] = 1
		if !m.nonEmpty(0, 0, n) {
			t.Errorf("n=%d: first pixel missed", n)
		}
	}
}

// naiveBits packs LSB first, one pixel at a time, with set(i) deciding.
func naiveBits(n int, set func(i int) bool) ([]byte, int) {
	out := make([]byte, PackedLen(n))
	c := 0
	for i := 0; i < n; i++ {
		if set(i) {
			out[i/8] |= 1 << (i % 8)
			c++
		}
	}
	return out, c
}

func TestPackFrameMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 127, 512, 513, 37 * 41, 512 * 512} {
		for _, density := range []int{0, 1, 3, 100} { // 1 in density pixels set (0: none, 100: solid)
			mask := make([]byte, n)
			for i := range mask {
				switch {
				case density == 100:
					mask[i] = 1
				case density > 0 && rng.Intn(density) == 0:
					mask[i] = byte(1 + rng.Intn(255))
				}
			}
			// Solid runs (the common shape): words of 0x01 bytes.
			if density == 3 && n > 200 {
				for i := 64; i < 200; i++ {
					mask[i] = 1
				}
			}
			want, wantSet := naiveBits(n, func(i int) bool { return mask[i] != 0 })
			dst := bytes.Repeat([]byte{0xA5}, PackedLen(n)) // must all be overwritten
			if got := PackFrame(dst, mask); got != wantSet || !bytes.Equal(dst, want) {
				t.Fatalf("n=%d density=%d: PackFrame = %d set, bytes equal %v; want %d set", n, density, got, bytes.Equal(dst, want), wantSet)
			}
		}
	}
}

func TestThresholdPackMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const th = 0.5
	for _, n := range []int{0, 1, 7, 8, 9, 65, 37 * 41, 512 * 512} {
		prob := make([]float32, n)
		for i := range prob {
			switch rng.Intn(20) {
			case 0:
				prob[i] = th // equal: set
			case 1:
				prob[i] = float32(math.NaN()) // never set
			case 2:
				prob[i] = float32(math.Inf(1))
			case 3:
				prob[i] = float32(math.Nextafter32(th, 0))
			default:
				prob[i] = rng.Float32()
			}
		}
		want, wantSet := naiveBits(n, func(i int) bool { return prob[i] >= th })
		dst := bytes.Repeat([]byte{0x5A}, PackedLen(n))
		if got := ThresholdPack(dst, prob, th); got != wantSet || !bytes.Equal(dst, want) {
			t.Fatalf("n=%d: ThresholdPack = %d set, bytes equal %v; want %d set", n, got, bytes.Equal(dst, want), wantSet)
		}
	}
}

// TestStreamBitsMatchesPacker: the cross-frame bit shifter agrees with the
// byte-mask packer for many frame sizes, nil frames, garbage padding bits,
// and frames larger than its chunk buffer.
func TestStreamBitsMatchesPacker(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, n := range []int{1, 3, 7, 9, 15, 17, 63, 65, 1517, 701 * 1001} {
		const nf = 5
		masks := Masks{make([][]byte, nf)}
		var frames []segFrame
		for f := 0; f < nf; f++ {
			frames = append(frames, segFrame{0, f})
			if f == 2 {
				continue
			}
			m := make([]byte, n)
			for i := range m {
				if rng.Intn(2) == 0 {
					m[i] = 1
				}
			}
			masks[0][f] = m
		}
		p := newBitPacker(nf * n)
		for _, m := range masks[0] {
			p.add(m, n)
		}
		want := p.bytes()
		var got bytes.Buffer
		if err := writePixelData(&got, naivePack(masks, n), Binary, frames, n); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes()[12:], want) {
			t.Fatalf("n=%d: streamed bits differ from the packer", n)
		}
	}
}
