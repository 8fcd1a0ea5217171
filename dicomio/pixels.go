package dicomio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// pixelFormat is how stored values are turned into modality values.
type pixelFormat struct {
	bitsAllocated int
	bitsStored    int
	shift         uint // HighBit + 1 - BitsStored
	signed        bool
	bo            binary.ByteOrder
	swap8         bool // 8-bit OW pixel data in big endian: bytes swapped in words
	hasPad        bool
	padLo, padHi  int64
}

func newPixelFormat(in *instance, l *layout) (pixelFormat, error) {
	h := in.Header
	pf := pixelFormat{
		bitsAllocated: h.BitsAllocated,
		bitsStored:    h.BitsStored,
		signed:        h.PixelRepresentation == 1,
		bo:            l.bo,
	}
	switch h.BitsAllocated {
	case 8, 16, 32:
	default:
		return pf, fmt.Errorf("BitsAllocated %d is not supported (8, 16 or 32)", h.BitsAllocated)
	}
	if h.BitsStored < 1 || h.BitsStored > h.BitsAllocated {
		return pf, fmt.Errorf("BitsStored %d is invalid for BitsAllocated %d", h.BitsStored, h.BitsAllocated)
	}
	if h.HighBit < h.BitsStored-1 || h.HighBit >= h.BitsAllocated {
		return pf, fmt.Errorf("HighBit %d is invalid for BitsStored %d, BitsAllocated %d", h.HighBit, h.BitsStored, h.BitsAllocated)
	}
	pf.shift = uint(h.HighBit + 1 - h.BitsStored)
	pf.swap8 = h.BitsAllocated == 8 && pf.bo == binary.BigEndian && l.pixelVR == "OW"
	if h.HasPixelPadding {
		pf.hasPad = true
		pf.padLo, pf.padHi = int64(h.PixelPaddingValue), int64(h.PixelPaddingValue)
		if h.HasPixelPaddingRange {
			lim := int64(h.PixelPaddingRangeLimit)
			pf.padLo, pf.padHi = min(pf.padLo, lim), max(pf.padHi, lim)
		}
	}
	return pf, nil
}

// stored extracts the stored value from a raw word: mask to BitsStored
// below HighBit, sign-extend when signed.
func (pf *pixelFormat) stored(u uint32) int64 {
	u >>= pf.shift
	if pf.bitsStored < 32 {
		u &= 1<<pf.bitsStored - 1
	}
	if pf.signed {
		if pf.bitsStored == 32 {
			return int64(int32(u))
		}
		if u&(1<<(pf.bitsStored-1)) != 0 {
			return int64(u) - 1<<pf.bitsStored
		}
	}
	return int64(u)
}

// convert turns raw words into modality values in dst, marking padding
// pixels with NaN; it returns how many were padding.
func (pf *pixelFormat) convert(dst []float32, raw []uint32, slope, intercept float64) int64 {
	var padded int64
	nan := float32(math.NaN())
	for i, u := range raw {
		s := pf.stored(u)
		if pf.hasPad && s >= pf.padLo && s <= pf.padHi {
			dst[i] = nan
			padded++
			continue
		}
		dst[i] = float32(float64(s)*slope + intercept)
	}
	return padded
}

// openUnchanged opens in's file for its pixel pass, checking that it still
// has the size its header pass saw.
func openUnchanged(in *instance) (*os.File, error) {
	f, err := os.Open(in.Path)
	if err != nil {
		return nil, fmt.Errorf("read pixels: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read pixels: %w", err)
	}
	if st.Size() != in.FileSize {
		f.Close()
		return nil, fmt.Errorf("read pixels %s: file changed size since its header was read", in.Path)
	}
	return f, nil
}

// decodeInstance decodes every frame of in into dst[k] (frame k of the
// instance, len Rows × Columns each) and returns the number of padding
// pixels (set to NaN).
func decodeInstance(in *instance, dst [][]float32, sc *scratch) (int64, error) {
	f, err := openUnchanged(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return decodeFrom(in, f, in.FileSize, dst, sc)
}

// decodeFrameRange decodes frames k0, k0+1, ... of a multi-frame
// instance (native or encapsulated) into dst, with the pixel data's place
// from the header pass (in.layout, frameRangeLayout): one range of a large
// file can be decoded while others are, without walking its header again.
func decodeFrameRange(in *instance, k0 int, dst [][]float32, sc *scratch) (int64, error) {
	f, err := openUnchanged(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	l := *in.layout
	l.data = f
	pf, err := newPixelFormat(in, &l)
	if err != nil {
		return 0, fmt.Errorf("read pixels %s: %w", in.Path, err)
	}
	var n int64
	if l.pixelEncaps {
		n, err = decodeEncapsulated(in, &l, &pf, k0, dst)
	} else {
		n, err = decodeNative(in, &l, &pf, k0, dst, sc)
	}
	if err != nil {
		return 0, fmt.Errorf("read pixels %s: %w", in.Path, err)
	}
	return n, nil
}

// decodeFrom decodes the frames of in from r (the file's bytes, size long).
func decodeFrom(in *instance, r io.ReaderAt, size int64, dst [][]float32, sc *scratch) (int64, error) {
	if sc == nil {
		sc = &scratch{}
	}
	l, err := scanLayout(r, size)
	if err != nil {
		return 0, fmt.Errorf("read pixels %s: %w", in.Path, err)
	}
	if !l.HasPixels {
		return 0, fmt.Errorf("read pixels %s: no pixel data", in.Path)
	}
	pf, err := newPixelFormat(in, l)
	if err != nil {
		return 0, fmt.Errorf("read pixels %s: %w", in.Path, err)
	}
	if l.pixelEncaps != encapsulated(l.TransferSyntaxUID) {
		return 0, fmt.Errorf("read pixels %s: pixel data is %s but transfer syntax %s says otherwise", in.Path, map[bool]string{true: "encapsulated", false: "native"}[l.pixelEncaps], l.TransferSyntaxUID)
	}
	var padded int64
	if l.pixelEncaps {
		padded, err = decodeEncapsulated(in, l, &pf, 0, dst)
	} else {
		padded, err = decodeNative(in, l, &pf, 0, dst, sc)
	}
	if err != nil {
		return 0, fmt.Errorf("read pixels %s: %w", in.Path, err)
	}
	return padded, nil
}

// chunkPixels is how many pixels decodeNative converts per read.
const chunkPixels = 128 << 10

// scratch holds buffers reused across the instances of one LoadSeries, so
// that decoding hundreds of files leaves almost no garbage: with a large
// live volume the collector runs late, and per-file buffers would pile up
// in the peak resident size.
type scratch struct {
	buf    []byte
	raw    []uint32
	lut    []float32
	lutKey lutKey
}

type lutKey struct {
	pf               pixelFormat
	slope, intercept float64
}

func (sc *scratch) bytes(n int) []byte {
	if cap(sc.buf) < n {
		sc.buf = make([]byte, n)
	}
	return sc.buf[:n]
}

func (sc *scratch) words(n int) []uint32 {
	if cap(sc.raw) < n {
		sc.raw = make([]uint32, n)
	}
	return sc.raw[:n]
}

// table returns the stored-word → modality-value table for 8- and 16-bit
// pixels (NaN for padding), rebuilt only when the format or rescale changes.
func (sc *scratch) table(pf *pixelFormat, slope, intercept float64) []float32 {
	k := lutKey{*pf, slope, intercept}
	if sc.lut != nil && sc.lutKey == k {
		return sc.lut
	}
	n := 1 << pf.bitsAllocated
	if cap(sc.lut) < n {
		sc.lut = make([]float32, n)
	}
	sc.lut = sc.lut[:n]
	w := make([]uint32, 1)
	for u := 0; u < n; u++ {
		w[0] = uint32(u)
		pf.convert(sc.lut[u:u+1], w, slope, intercept)
	}
	sc.lutKey = k
	return sc.lut
}

// decodeNative reads native pixel data straight from the file into dst
// (frames k0, k0+1, ... of the instance), a chunk at a time, without
// holding the raw pixel data in memory.
func decodeNative(in *instance, l *layout, pf *pixelFormat, k0 int, dst [][]float32, sc *scratch) (int64, error) {
	npix := int64(in.Rows) * int64(in.Columns)
	bpp := int64(pf.bitsAllocated / 8)
	frame := npix * bpp
	need := frame * int64(len(dst))
	// The value must be exactly Rows × Columns × frames × bytes (plus the
	// one pad byte an odd length gets): a longer one means the header does
	// not describe the pixels (another size, bit depth or frame count), and
	// the frames read from it would be misread.
	nf := max(in.Frames(), k0+len(dst))
	total := frame * int64(nf)
	if l.pixelLen != total && (total%2 == 0 || l.pixelLen != total+1) {
		return 0, fmt.Errorf("pixel data has %d bytes, %d×%d×%d frames of %d bits need exactly %d", l.pixelLen, in.Rows, in.Columns, nf, pf.bitsAllocated, total)
	}
	sr := io.NewSectionReader(l.data, l.pixelOff+frame*int64(k0), need)
	buf := sc.bytes(int(min(npix, chunkPixels) * bpp))
	var padded int64
	for k, out := range dst {
		g := in.frames[k0+k]
		var lut []float32
		if pf.bitsAllocated <= 16 {
			lut = sc.table(pf, g.slope, g.intercept)
		}
		for p := int64(0); p < npix; p += chunkPixels {
			n := min(chunkPixels, npix-p)
			b := buf[:n*bpp]
			if _, err := io.ReadFull(sr, b); err != nil {
				return 0, fmt.Errorf("frame %d: %w", k0+k+1, err)
			}
			o := out[p : p+n]
			switch {
			case pf.bitsAllocated == 8 && pf.swap8:
				for i := range o {
					j := i ^ 1
					if j >= len(b) { // odd pixel count: the pad byte
						j = i
					}
					o[i] = lut[b[j]]
				}
			case pf.bitsAllocated == 8:
				for i := range o {
					o[i] = lut[b[i]]
				}
			case pf.bitsAllocated == 16 && pf.bo == binary.BigEndian:
				for i := range o {
					o[i] = lut[binary.BigEndian.Uint16(b[2*i:])]
				}
			case pf.bitsAllocated == 16:
				for i := range o {
					o[i] = lut[binary.LittleEndian.Uint16(b[2*i:])]
				}
			default: // 32
				r := sc.words(int(n))
				for i := range r {
					r[i] = pf.bo.Uint32(b[4*i:])
				}
				padded += pf.convert(o, r, g.slope, g.intercept)
				continue
			}
			if pf.hasPad {
				for _, v := range o {
					if v != v {
						padded++
					}
				}
			}
		}
	}
	return padded, nil
}
