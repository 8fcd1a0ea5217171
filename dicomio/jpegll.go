package dicomio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file decodes JPEG lossless, non-hierarchical (process 14, ITU T.81
// Annex H): Huffman-coded differences from one of seven predictors, with
// an optional point transform, 2 to 16 bits, one component. Go's
// image/jpeg and Debian's libjpeg-turbo do not decode it.

// JPEG markers this decoder reads.
const (
	mSOF0 = 0xC0
	mSOF3 = 0xC3
	mDHT  = 0xC4
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mDRI  = 0xDD
	mRST0 = 0xD0
	mRST7 = 0xD7
)

// huffTable is one Huffman table in the form of T.81 F.2.2.3 (mincode,
// maxcode, valptr per code length) with a lookup of the codes up to
// lookBits long.
type huffTable struct {
	look    [1 << lookBits]uint16 // code length << 8 | value; 0: longer code
	maxcode [18]int32             // largest code of each length, -1: none
	valptr  [17]int32
	mincode [17]int32
	vals    []byte
	defined bool
}

const lookBits = 9

// build fills t from the BITS counts and HUFFVAL values of a DHT segment.
func (t *huffTable) build(counts [16]int, vals []byte) error {
	*t = huffTable{vals: vals, defined: true}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		if code+n > 1<<l {
			return errors.New("Huffman table: more codes than fit their lengths")
		}
		t.valptr[l] = k
		t.mincode[l] = code
		if n == 0 {
			t.maxcode[l] = -1
		} else {
			for i := int32(0); i < n; i++ {
				if l <= lookBits {
					c := (code + i) << (lookBits - l)
					for j := int32(0); j < 1<<(lookBits-l); j++ {
						t.look[c+j] = uint16(l)<<8 | uint16(vals[k+i])
					}
				}
			}
			code += n
			k += n
			t.maxcode[l] = code - 1
		}
		code <<= 1
	}
	t.maxcode[17] = 1<<31 - 1 // sentinel
	return nil
}

// bitReader reads the entropy-coded segment of a scan, removing stuffed
// zero bytes and stopping at a marker (after which it supplies zeros).
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64 // the next bits, left-aligned; the bits below the top n are zero
	n      uint   // valid bits in acc (the top n)
	marker byte   // the marker that stopped the reader, 0 if none
	zeros  int    // zero bytes supplied past the data
}

// fill tops acc up to at least 57 bits.
func (r *bitReader) fill() {
	if r.marker == 0 && r.pos+8 <= len(r.data) {
		// Eight bytes at once when none of them is 0xFF (no stuffing and
		// no marker to handle): as many whole bytes as fit in acc.
		w := binary.BigEndian.Uint64(r.data[r.pos:])
		if x := ^w; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			k := (64 - r.n) >> 3
			n := r.n + 8*k
			r.acc |= w >> r.n & (^uint64(0) << (64 - n))
			r.n = n
			r.pos += int(k)
			return
		}
	}
	for r.n <= 56 {
		var b byte
		switch {
		case r.marker != 0 || r.pos >= len(r.data):
			r.zeros++
		case r.data[r.pos] != 0xFF:
			b = r.data[r.pos]
			r.pos++
		case r.pos+1 < len(r.data) && r.data[r.pos+1] == 0:
			b = 0xFF
			r.pos += 2
		default:
			if r.pos+1 < len(r.data) {
				r.marker = r.data[r.pos+1]
			} else {
				r.marker = 0xFF
			}
			r.zeros++
		}
		r.acc |= uint64(b) << (56 - r.n)
		r.n += 8
	}
}

// bits reads n (≤ 16) bits.
func (r *bitReader) bits(n uint) uint32 {
	if n == 0 {
		return 0
	}
	if r.n < n {
		r.fill()
	}
	v := uint32(r.acc >> (64 - n))
	r.acc <<= n
	r.n -= n
	return v
}

// decode reads one Huffman-coded value.
func (r *bitReader) decode(t *huffTable) (byte, error) {
	if r.n < 16 {
		r.fill()
	}
	if e := t.look[r.acc>>(64-lookBits)]; e != 0 {
		l := uint(e >> 8)
		r.acc <<= l
		r.n -= l
		return byte(e), nil
	}
	for l := lookBits + 1; l <= 16; l++ {
		code := int32(r.acc >> (64 - uint(l)))
		if code <= t.maxcode[l] {
			r.acc <<= uint(l)
			r.n -= uint(l)
			return t.vals[t.valptr[l]+code-t.mincode[l]], nil
		}
	}
	return 0, errors.New("bad Huffman code")
}

// restart discards the bits to the next byte and expects RSTn (n = next).
func (r *bitReader) restart(next int) error {
	r.acc, r.n = 0, 0
	if r.marker == 0 {
		// The marker the reader has not reached yet must be next.
		for r.pos < len(r.data) && r.data[r.pos] != 0xFF {
			r.pos++
		}
		if r.pos+1 < len(r.data) {
			r.marker = r.data[r.pos+1]
		}
	}
	if r.marker != byte(mRST0+next%8) {
		return fmt.Errorf("expected RST%d marker, found 0x%02X", next%8, r.marker)
	}
	r.pos += 2
	r.marker, r.zeros = 0, 0
	return nil
}

// diffBits is how many bits of the entropy-coded data the difference
// table looks at: a Huffman code and its extra bits that together fit are
// decoded by one lookup (most of a CT's differences: a code of 2 to 5
// bits and a category up to 6).
const diffBits = 11

// diffTable maps the next diffBits bits to the difference they code,
// diff << 8 | bits used; 0 where the code and its extra bits are longer
// (or the category is invalid), which diff then decodes bit by bit.
type diffTable [1 << diffBits]int32

// build fills d from the Huffman table of the differences' categories.
func (d *diffTable) build(t *huffTable) {
	*d = diffTable{}
	code, k := 0, 0
	for l := 1; l <= 16; l++ {
		n := 0
		if t.maxcode[l] >= 0 {
			n = int(t.maxcode[l]-t.mincode[l]) + 1
		}
		for i := 0; i < n; i++ {
			c, s := code+i, int(t.vals[k+i])
			total := l + s
			if s == 16 {
				total = l // 32768, no extra bits
			}
			if s > 16 || total > diffBits {
				continue
			}
			extras := 1
			if s < 16 {
				extras = 1 << s
			}
			for v := 0; v < extras; v++ {
				diff := int32(0)
				switch {
				case s == 16:
					diff = 32768
				case s > 0:
					diff = int32(v)
					if diff < 1<<(s-1) {
						diff += -1<<s + 1
					}
				}
				e := diff<<8 | int32(total)
				base := (c<<s | v) << (diffBits - total)
				if s == 16 {
					base = c << (diffBits - total)
				}
				for j := 0; j < 1<<(diffBits-total); j++ {
					d[base+j] = e
				}
			}
		}
		code = (code + n) << 1
		k += n
	}
}

// diff reads one difference: its Huffman-coded category and extra bits.
func (r *bitReader) diff(t *huffTable, d *diffTable) (int32, error) {
	if r.n < 32 {
		r.fill()
	}
	if e := d[r.acc>>(64-diffBits)]; e != 0 {
		l := uint(e & 0xFF)
		r.acc <<= l
		r.n -= l
		return e >> 8, nil
	}
	s, err := r.decode(t)
	if err != nil {
		return 0, err
	}
	switch {
	case s == 0:
		return 0, nil
	case s == 16:
		return 32768, nil
	case s > 16:
		return 0, fmt.Errorf("difference category %d", s)
	}
	v := int32(r.bits(uint(s)))
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v, nil
}

// jpegLLHeader is what the frame and scan headers say.
type jpegLLHeader struct {
	precision, rows, cols int
	predictor, pt         int
	restart               int
	table                 *huffTable
}

// decodeJPEGLossless decodes one process 14 greyscale JPEG frame.
func decodeJPEGLossless(data []byte, fs frameSpec, raw []uint32) (bool, error) {
	h, scan, err := parseJPEGLossless(data, fs)
	if err != nil {
		return false, err
	}
	rows, cols := h.rows, h.cols
	r := &bitReader{data: scan}
	d := new(diffTable)
	d.build(h.table)
	prec := h.precision - h.pt
	initial := int32(1) << (prec - 1)
	left := h.restart // samples left in the restart interval; 0: none
	rst := 0
	first := true // the first sample of the image or of a restart interval
	for y := 0; y < rows; y++ {
		row := raw[y*cols : (y+1)*cols]
		var above []uint32
		if y > 0 {
			above = raw[(y-1)*cols : y*cols]
		}
		for x := 0; x < cols; {
			end := cols
			if h.restart > 0 {
				if left == 0 {
					if err := r.restart(rst); err != nil {
						return false, fmt.Errorf("JPEG lossless row %d: %w", y+1, err)
					}
					rst++
					left = h.restart
					// A restart interval starts like the image: its
					// first sample from the initial value, the rest of
					// its first line from the left.
					first, above = true, nil
				}
				end = min(cols, x+left)
				left -= end - x
			}
			if err := decodeRun(r, h, d, row[:end], above, x, first, initial); err != nil {
				return false, fmt.Errorf("JPEG lossless row %d: %w", y+1, err)
			}
			first = false
			x = end
		}
		if r.zeros > 64 {
			return false, fmt.Errorf("JPEG lossless: data ends at row %d of %d", y+1, rows)
		}
	}
	if h.pt > 0 {
		for i, v := range raw {
			raw[i] = v << h.pt
		}
	}
	return false, nil
}

// decodeRun decodes the samples x0 to len(row)-1 of a row (above: the
// previous row, nil on the first line of the image or of a restart
// interval; first: x0 is the first sample of either) with the predictor
// rules of T.81 H.1.2.1.
func decodeRun(r *bitReader, h *jpegLLHeader, d *diffTable, row, above []uint32, x0 int, first bool, initial int32) error {
	// The run's first sample, whose prediction depends on where it is.
	var pred int32
	switch {
	case first || (above == nil && x0 == 0):
		pred = initial
	case above == nil:
		pred = int32(row[x0-1])
	case x0 == 0:
		pred = int32(above[0])
	default:
		pred = predict(h.predictor, int32(row[x0-1]), int32(above[x0]), int32(above[x0-1]))
	}
	diff, err := r.diff(h.table, d)
	if err != nil {
		return err
	}
	row[x0] = uint32(pred+diff) & 0xFFFF
	if above != nil && h.predictor != 1 {
		above = above[:len(row)]
		for x := x0 + 1; x < len(row); x++ {
			diff, err := r.diff(h.table, d)
			if err != nil {
				return err
			}
			p := predict(h.predictor, int32(row[x-1]), int32(above[x]), int32(above[x-1]))
			row[x] = uint32(p+diff) & 0xFFFF
		}
		return nil
	}
	// From the left: predictor 1 (SV1, what DICOM's JPEG Lossless SV1
	// holds), and every predictor on the first line.
	prev := row[x0]
	acc, n, pos, data := r.acc, r.n, r.pos, r.data
	for x := x0 + 1; x < len(row); x++ {
		if n < 32 {
			// fill's fast path, inline: eight bytes none of which is
			// 0xFF (a stopped reader sits on the marker's 0xFF).
			var w uint64
			if pos+8 <= len(data) {
				w = binary.BigEndian.Uint64(data[pos:])
			}
			if x := ^w; pos+8 <= len(data) && (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
				k := (64 - n) >> 3
				acc |= w >> n & (^uint64(0) << ((64 - n) & 7))
				n += 8 * k
				pos += int(k)
			} else {
				r.acc, r.n, r.pos = acc, n, pos
				r.fill()
				acc, n, pos = r.acc, r.n, r.pos
			}
		}
		var diff int32
		if e := d[acc>>(64-diffBits)]; e != 0 {
			l := uint(e & 0xFF)
			acc <<= l
			n -= l
			diff = e >> 8
		} else {
			r.acc, r.n, r.pos = acc, n, pos
			v, err := r.diff(h.table, d)
			if err != nil {
				return err
			}
			acc, n, pos = r.acc, r.n, r.pos
			diff = v
		}
		prev = uint32(int32(prev)+diff) & 0xFFFF
		row[x] = prev
	}
	r.acc, r.n, r.pos = acc, n, pos
	return nil
}

// predict is the prediction of predictor 1–7 from the samples to the
// left (ra), above (rb) and above left (rc).
func predict(predictor int, ra, rb, rc int32) int32 {
	switch predictor {
	case 1:
		return ra
	case 2:
		return rb
	case 3:
		return rc
	case 4:
		return ra + rb - rc
	case 5:
		return ra + ((rb - rc) >> 1)
	case 6:
		return rb + ((ra - rc) >> 1)
	}
	return (ra + rb) >> 1
}

// parseJPEGLossless reads the markers up to the first scan and returns the
// headers and the bytes after the scan header, having checked that the
// frame is greyscale, process 14 and the size the DICOM header declares.
func parseJPEGLossless(data []byte, fs frameSpec) (*jpegLLHeader, []byte, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != mSOI {
		return nil, nil, errors.New("JPEG lossless: no SOI marker")
	}
	p := &jpegLLParser{fs: fs}
	scan, err := walkJPEGSegments(data, "JPEG lossless", p.segment)
	if err != nil {
		return nil, nil, err
	}
	return &p.h, scan, nil
}

// jpegLLParser is what parseJPEGLossless has read so far.
type jpegLLParser struct {
	fs     frameSpec
	h      jpegLLHeader
	tables [4]huffTable
	sof    bool // the SOF3 frame header was read
}

// segment reads one marker segment; it is the last after the scan header.
func (p *jpegLLParser) segment(m byte, seg []byte) (bool, error) {
	switch {
	case m == mSOF3:
		return false, p.frameHeader(seg)
	case isSOF(m):
		return false, fmt.Errorf("JPEG lossless: SOF%d frame; only process 14 (SOF3) is lossless", m-mSOF0)
	case m == mDHT:
		return false, readDHT(seg, "JPEG lossless", &p.tables, nil)
	case m == mDRI:
		restart, err := readDRI(seg, "JPEG lossless")
		p.h.restart = restart
		return false, err
	case m == mSOS:
		return true, p.scanHeader(seg)
	}
	return false, nil
}

// frameHeader reads the SOF3 segment and checks it against the DICOM
// header.
func (p *jpegLLParser) frameHeader(seg []byte) error {
	h, fs := &p.h, p.fs
	if len(seg) < 6 {
		return errors.New("JPEG lossless: short SOF3")
	}
	h.precision = int(seg[0])
	h.rows = int(binary.BigEndian.Uint16(seg[1:]))
	h.cols = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if nc != 1 {
		return fmt.Errorf("JPEG lossless: %d components; only greyscale is supported", nc)
	}
	if h.precision < 2 || h.precision > 16 {
		return fmt.Errorf("JPEG lossless: precision %d (2 to 16)", h.precision)
	}
	if h.precision > fs.bitsAllocated {
		return fmt.Errorf("JPEG lossless: precision %d exceeds BitsAllocated %d", h.precision, fs.bitsAllocated)
	}
	if h.rows != fs.rows || h.cols != fs.cols {
		return fmt.Errorf("JPEG lossless: frame is %d×%d, header says %d×%d", h.cols, h.rows, fs.cols, fs.rows)
	}
	p.sof = true
	return nil
}

// scanHeader reads the SOS segment: one component, its Huffman table, the
// predictor and the point transform.
func (p *jpegLLParser) scanHeader(seg []byte) error {
	h := &p.h
	if !p.sof {
		return errors.New("JPEG lossless: scan before the SOF3 frame header")
	}
	if len(seg) < 6 || seg[0] != 1 {
		return errors.New("JPEG lossless: the scan must hold one component")
	}
	td := seg[2] >> 4
	h.predictor = int(seg[3])
	h.pt = int(seg[5] & 15)
	if td > 3 || !p.tables[td].defined {
		return fmt.Errorf("JPEG lossless: Huffman table %d is not defined", td)
	}
	if h.predictor < 1 || h.predictor > 7 {
		return fmt.Errorf("JPEG lossless: predictor %d (1 to 7)", h.predictor)
	}
	if h.pt >= h.precision {
		return fmt.Errorf("JPEG lossless: point transform %d for precision %d", h.pt, h.precision)
	}
	h.table = &p.tables[td]
	return nil
}
