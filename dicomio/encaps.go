package dicomio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"tmcad/internal/parallel"
)

// frameSpec is what the DICOM header says one frame of pixel data holds;
// a codec checks its codestream's own header against it before it
// allocates anything, so that a forged codestream cannot make it allocate
// beyond the limits the DICOM header was checked against.
type frameSpec struct {
	rows, cols    int
	bitsAllocated int
	bitsStored    int
	signed        bool
}

// frameCodec decodes one frame's codestream into raw (rows × cols words,
// row by row): the stored values as unsigned bit patterns, which
// pixelFormat.stored then masks and sign-extends; or, when it returns
// values true, the values themselves as int32 (a codestream that carries
// its own precision and sign, as JPEG 2000 does).
type frameCodec func(data []byte, fs frameSpec, raw []uint32) (values bool, err error)

// codecInfo is how the frames of one encapsulated transfer syntax are
// decoded.
type codecInfo struct {
	decode frameCodec
	// native: the codec returns whole pixel cells (RLE), whose stored
	// bits sit below HighBit as in native data; otherwise the codestream
	// holds the stored values themselves (JPEG family).
	native bool
	// starts reports whether a fragment is the first of a frame, to split
	// fragments into frames when there is no offset table.
	starts func(b []byte) bool
	// library names the decoder in errors.
	library string
}

// codecs are the decoders of the encapsulated transfer syntaxes.
var codecs = map[string]codecInfo{
	JPEGBaseline8Bit:   {decode: decodeJPEGDCT, starts: jpegStart, library: "tmcad JPEG DCT"},
	JPEGExtended12Bit:  {decode: decodeJPEGDCT, starts: jpegStart, library: "tmcad JPEG DCT"},
	JPEGLossless:       {decode: decodeJPEGLossless, starts: jpegStart, library: "tmcad JPEG lossless"},
	JPEGLosslessSV1:    {decode: decodeJPEGLossless, starts: jpegStart, library: "tmcad JPEG lossless"},
	JPEGLSLossless:     {decode: decodeJPEGLS, starts: jpegStart, library: "CharLS"},
	JPEGLSNearLossless: {decode: decodeJPEGLS, starts: jpegStart, library: "CharLS"},
	JPEG2000Lossless:   {decode: decodeJPEG2000, starts: j2kStart, library: "OpenJPEG"},
	JPEG2000:           {decode: decodeJPEG2000, starts: j2kStart, library: "OpenJPEG"},
	HTJ2KLossless:      {decode: decodeJPEG2000, starts: j2kStart, library: "OpenJPEG"},
	HTJ2KLosslessRPCL:  {decode: decodeJPEG2000, starts: j2kStart, library: "OpenJPEG"},
	HTJ2K:              {decode: decodeJPEG2000, starts: j2kStart, library: "OpenJPEG"},
	RLELossless:        {decode: decodeRLE, native: true, library: "tmcad RLE"},
}

// jpegStart: a JPEG or JPEG-LS codestream starts with SOI.
func jpegStart(b []byte) bool { return len(b) >= 2 && b[0] == 0xFF && b[1] == 0xD8 }

// j2kStart: a JPEG 2000 codestream starts with SOC then SIZ.
func j2kStart(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xFF && b[1] == 0x4F && b[2] == 0xFF && b[3] == 0x51
}

// rawPool recycles the per-frame buffers of decoded stored values.
var rawPool sync.Pool

// framePool recycles the buffers that hold one frame's codestream while
// it is decoded: a series would otherwise leave its compressed size in
// garbage, which the collector, paced by the live volume, frees late.
var framePool sync.Pool

// encapsIndex is where each frame of an encapsulated multi-frame
// instance lies (its fragments), found once, on first use, by whichever
// decoding unit of the instance starts first.
type encapsIndex struct {
	once   sync.Once
	groups [][]fragment
	err    error
}

// frameGroups returns the fragments of each of in's frames: from l's
// index when it has one (computed once for all units), else by walking
// the fragments now.
func frameGroups(in *instance, l *layout, c codecInfo) ([][]fragment, error) {
	if l.index == nil {
		return encapsulatedFrames(l, in.Frames(), c.starts)
	}
	x := l.index
	x.once.Do(func() { x.groups, x.err = encapsulatedFrames(l, in.Frames(), c.starts) })
	return x.groups, x.err
}

// decodeEncapsulated decodes frames k0, k0+1, ... of encapsulated pixel
// data, in parallel, into dst with the transfer syntax's codec; each
// frame's codestream is read and checked against the header (size,
// precision) before its samples are allocated.
func decodeEncapsulated(in *instance, l *layout, pf *pixelFormat, k0 int, dst [][]float32) (int64, error) {
	ts := l.TransferSyntaxUID
	c, ok := codecs[ts]
	if !ok {
		return 0, &UnsupportedTransferSyntaxError{Path: in.Path, UID: ts}
	}
	groups, err := frameGroups(in, l, c)
	if err != nil {
		return 0, fmt.Errorf("%s (%s): %w", TransferSyntaxName(ts), ts, err)
	}
	if k0 < 0 || k0+len(dst) > len(groups) {
		return 0, fmt.Errorf("%s (%s): frames %d to %d asked for, the pixel data holds %d", TransferSyntaxName(ts), ts, k0+1, k0+len(dst), len(groups))
	}
	fs := frameSpec{rows: in.Rows, cols: in.Columns, bitsAllocated: pf.bitsAllocated, bitsStored: pf.bitsStored, signed: pf.signed}
	cpf := *pf
	if !c.native {
		// The codestream holds the stored values: no bits above or
		// below them to mask off.
		cpf.shift = 0
	}
	npix := in.Rows * in.Columns
	var padded atomic.Int64
	err = parallel.For(len(dst), func(j int) error {
		k := k0 + j
		bp, _ := framePool.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		defer framePool.Put(bp)
		data, err := readFrame(l, groups[k], bp)
		if err != nil {
			return fmt.Errorf("frame %d (%s): %w", k+1, TransferSyntaxName(ts), err)
		}
		rp, _ := rawPool.Get().(*[]uint32)
		if rp == nil || cap(*rp) < npix {
			rp = &[]uint32{}
			*rp = make([]uint32, npix)
		}
		defer rawPool.Put(rp)
		raw := (*rp)[:npix]
		values, err := c.decode(data, fs, raw)
		if err != nil {
			return fmt.Errorf("frame %d: %s (%s) decoded by %s: %w", k+1, TransferSyntaxName(ts), ts, c.library, err)
		}
		g := in.frames[k]
		if values {
			vpf := cpf
			vpf.bitsStored, vpf.signed, vpf.shift = 32, true, 0
			padded.Add(vpf.convert(dst[j], raw, g.slope, g.intercept))
			return nil
		}
		padded.Add(cpf.convert(dst[j], raw, g.slope, g.intercept))
		return nil
	})
	return padded.Load(), err
}

// readFrame reads and concatenates the bytes of one frame's fragments
// into *buf (grown when too small; the total is bounded by the file's
// size) and returns them.
func readFrame(l *layout, frags []fragment, buf *[]byte) ([]byte, error) {
	var n int64
	for _, f := range frags {
		n += f.len
	}
	if n == 0 {
		return nil, errors.New("empty frame")
	}
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	data := (*buf)[:n]
	o := int64(0)
	for _, f := range frags {
		if _, err := l.data.ReadAt(data[o:o+f.len], f.off); err != nil {
			return nil, fmt.Errorf("fragment at offset %d: %w", f.off, err)
		}
		o += f.len
	}
	return data, nil
}

// encapsulatedFrames lists the fragments of each of the n frames of
// encapsulated pixel data (PS3.5 A.4): by the Extended Offset Table when
// present, else all fragments for one frame, else by the Basic Offset
// Table, else one fragment per frame when the counts match, else by where
// codestreams start (starts; nil when a frame is always one fragment).
func encapsulatedFrames(l *layout, n int, starts func([]byte) bool) ([][]fragment, error) {
	w := &window{r: l.data, size: l.dataSize}
	frags, _, err := fragments(w, l.bo, l.pixelOff, l.pixelOff+l.pixelLen)
	if err != nil {
		return nil, err
	}
	if len(frags) < 2 {
		return nil, errors.New("encapsulated pixel data has no fragments")
	}
	bot, frags := frags[0], frags[1:]
	// Offsets in either table count from the first byte of the item tag
	// of the first fragment after the Basic Offset Table.
	base := frags[0].off - 8
	switch {
	case l.eotLen > 0:
		if l.eotLen != 8*int64(n) || (l.eotlLen != 0 && l.eotlLen != 8*int64(n)) {
			return nil, fmt.Errorf("extended offset table: %d bytes (lengths: %d bytes) for %d frames, want %d", l.eotLen, l.eotlLen, n, 8*n)
		}
		tb := make([]byte, l.eotLen)
		if _, err := l.data.ReadAt(tb, l.eotOff); err != nil {
			return nil, fmt.Errorf("extended offset table: %w", err)
		}
		offs := make([]int64, n)
		for k := range offs {
			u := binary.LittleEndian.Uint64(tb[8*k:])
			if u > math.MaxInt64/2 {
				return nil, fmt.Errorf("extended offset table: frame %d: offset %d out of range", k+1, u)
			}
			offs[k] = int64(u)
		}
		return groupByOffsets(frags, base, offs, "extended offset table")
	case n == 1:
		return [][]fragment{frags}, nil
	case bot.len > 0:
		if bot.len != int64(n)*4 {
			return nil, fmt.Errorf("basic offset table: %d bytes for %d frames, want %d", bot.len, n, 4*n)
		}
		tb := make([]byte, bot.len)
		if _, err := l.data.ReadAt(tb, bot.off); err != nil {
			return nil, fmt.Errorf("basic offset table: %w", err)
		}
		offs := make([]int64, n)
		for k := range offs {
			offs[k] = int64(binary.LittleEndian.Uint32(tb[4*k:]))
		}
		return groupByOffsets(frags, base, offs, "basic offset table")
	case len(frags) == n:
		out := make([][]fragment, n)
		for i, f := range frags {
			out[i] = []fragment{f}
		}
		return out, nil
	case starts == nil:
		return nil, fmt.Errorf("%d fragments for %d frames, no offset table, and each frame must be one fragment", len(frags), n)
	}
	out := make([][]fragment, 0, n)
	head := make([]byte, 4)
	for i, f := range frags {
		head = head[:min(4, f.len)]
		if _, err := l.data.ReadAt(head, f.off); err != nil {
			return nil, fmt.Errorf("fragment at offset %d: %w", f.off, err)
		}
		switch {
		case starts(head):
			if len(out) == n {
				return nil, fmt.Errorf("%d fragments hold more than the %d frames the header declares", len(frags), n)
			}
			out = append(out, []fragment{f})
		case i == 0:
			return nil, errors.New("the first fragment does not start a codestream")
		default:
			out[len(out)-1] = append(out[len(out)-1], f)
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("%d codestreams in %d fragments, the header declares %d frames", len(out), len(frags), n)
	}
	return out, nil
}

// groupByOffsets groups fragments into frames by the offsets of each
// frame's first fragment (relative to base), which must increase.
func groupByOffsets(frags []fragment, base int64, offs []int64, table string) ([][]fragment, error) {
	n := len(offs)
	out := make([][]fragment, n)
	fi := 0
	for k := 0; k < n; k++ {
		start := base + offs[k]
		end := int64(math.MaxInt64)
		if k+1 < n {
			if offs[k+1] <= offs[k] {
				return nil, fmt.Errorf("%s: offsets of frames %d and %d do not increase", table, k+1, k+2)
			}
			end = base + offs[k+1]
		}
		if fi >= len(frags) || frags[fi].off-8 != start {
			return nil, fmt.Errorf("%s: frame %d does not start at a fragment (offset %d)", table, k+1, offs[k])
		}
		for fi < len(frags) && frags[fi].off-8 < end {
			out[k] = append(out[k], frags[fi])
			fi++
		}
	}
	return out, nil
}
