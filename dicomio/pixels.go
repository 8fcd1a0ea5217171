package dicomio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
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

// decodeFrameRange decodes frames k0, k0+1, ... of a native multi-frame
// instance into dst, with the pixel data's place from the header pass
// (in.layout, frameRangeLayout): one range of a large file can be decoded
// while others are, without walking its header again.
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
	n, err := decodeNative(in, &l, &pf, k0, dst, sc)
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
		padded, err = decodeEncapsulated(in, l, &pf, dst)
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

// decodeEncapsulated splits encapsulated pixel data into frames and decodes
// each with Go's image/jpeg (8-bit JPEG baseline and extended only).
func decodeEncapsulated(in *instance, l *layout, pf *pixelFormat, dst [][]float32) (int64, error) {
	ts := l.TransferSyntaxUID
	if ts != JPEGBaseline8Bit && ts != JPEGExtended12Bit {
		return 0, &UnsupportedTransferSyntaxError{Path: in.Path, UID: ts}
	}
	w := &window{r: l.data, size: l.dataSize}
	frags, _, err := fragments(w, l.bo, l.pixelOff, l.pixelOff+l.pixelLen)
	if err != nil {
		return 0, err
	}
	if len(frags) < 2 {
		return 0, fmt.Errorf("encapsulated pixel data has no fragments")
	}
	bot, frags := frags[0], frags[1:]
	groups, err := frameFragments(l, bot, frags, len(dst))
	if err != nil {
		return 0, err
	}
	var padded int64
	raw := make([]uint32, in.Rows*in.Columns)
	for k, fr := range groups {
		var data []byte
		for _, f := range fr {
			b := make([]byte, f.len)
			if _, err := l.data.ReadAt(b, f.off); err != nil {
				return 0, fmt.Errorf("frame %d: %w", k+1, err)
			}
			data = append(data, b...)
		}
		// Check the JPEG's own size before decoding: the decoder allocates
		// what the frame header declares.
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return 0, fmt.Errorf("frame %d: JPEG header: %w", k+1, err)
		}
		if cfg.Width != in.Columns || cfg.Height != in.Rows {
			return 0, fmt.Errorf("frame %d: JPEG is %d×%d, header says %d×%d", k+1, cfg.Width, cfg.Height, in.Columns, in.Rows)
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			return 0, fmt.Errorf("frame %d: JPEG decode: %w (Go decodes 8-bit baseline/extended JPEG only; convert 12-bit or lossless JPEG with dcmdjpeg first)", k+1, err)
		}
		gray, ok := img.(*image.Gray)
		if !ok {
			return 0, fmt.Errorf("frame %d: JPEG holds a colour image (%T); only greyscale is supported", k+1, img)
		}
		if b := gray.Bounds(); b.Dx() != in.Columns || b.Dy() != in.Rows {
			return 0, fmt.Errorf("frame %d: JPEG is %d×%d, header says %d×%d", k+1, b.Dx(), b.Dy(), in.Columns, in.Rows)
		}
		for y := 0; y < in.Rows; y++ {
			row := gray.Pix[y*gray.Stride : y*gray.Stride+in.Columns]
			for x, v := range row {
				raw[y*in.Columns+x] = uint32(v)
			}
		}
		g := in.frames[k]
		jpf := *pf
		jpf.shift = 0
		if jpf.bitsStored > 8 {
			jpf.bitsStored = 8
		}
		padded += jpf.convert(dst[k], raw, g.slope, g.intercept)
	}
	return padded, nil
}

// frameFragments groups fragments into frames: all of them for one frame,
// one per frame when the counts match, otherwise by the Basic Offset Table.
func frameFragments(l *layout, bot fragment, frags []fragment, nFrames int) ([][]fragment, error) {
	if nFrames == 1 {
		return [][]fragment{frags}, nil
	}
	if len(frags) == nFrames {
		out := make([][]fragment, nFrames)
		for i, f := range frags {
			out[i] = []fragment{f}
		}
		return out, nil
	}
	if bot.len != int64(nFrames)*4 {
		return nil, fmt.Errorf("%d fragments for %d frames and no usable Basic Offset Table", len(frags), nFrames)
	}
	tb := make([]byte, bot.len)
	if _, err := l.data.ReadAt(tb, bot.off); err != nil {
		return nil, fmt.Errorf("basic offset table: %w", err)
	}
	base := frags[0].off - 8 // offsets count from the first fragment's item tag
	out := make([][]fragment, nFrames)
	fi := 0
	for k := 0; k < nFrames; k++ {
		start := base + int64(binary.LittleEndian.Uint32(tb[4*k:]))
		end := int64(math.MaxInt64)
		if k+1 < nFrames {
			end = base + int64(binary.LittleEndian.Uint32(tb[4*k+4:]))
		}
		for fi < len(frags) && frags[fi].off-8 < start {
			fi++
		}
		for fi < len(frags) && frags[fi].off-8 < end {
			out[k] = append(out[k], frags[fi])
			fi++
		}
		if len(out[k]) == 0 {
			return nil, fmt.Errorf("basic offset table: frame %d has no fragments", k+1)
		}
	}
	return out, nil
}
