package dicomio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file decodes sequential DCT JPEG with Huffman coding (ITU T.81
// processes 1, 2 and 4: baseline and extended), 8- or 12-bit precision, one
// component: the JPEG Baseline and JPEG Extended transfer syntaxes. Go's
// image/jpeg reads 8 bits only and Debian's libjpeg-turbo is built for 8
// bits, so 12-bit JPEG (CT, MR, CR) needs this decoder. The inverse DCT is
// IJG's accurate integer one (jidctint.c, jpeg_idct_islow), with its
// rounding and its range limiting, so that the samples are those dcmtk's
// dcmdjpeg (IJG 6b) and libjpeg-turbo return, bit for bit.

// More JPEG markers, beside those of jpegll.go.
const (
	mSOF1 = 0xC1
	mSOF2 = 0xC2
	mDQT  = 0xDB
)

// jpegNaturalOrder maps the zigzag index of a coefficient to its place in
// the block, row by row; the 16 entries past 63 keep a corrupt run length
// inside the block, as IJG's table does.
var jpegNaturalOrder = [64 + 16]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
	63, 63, 63, 63, 63, 63, 63, 63,
	63, 63, 63, 63, 63, 63, 63, 63,
}

// jpegDCTHeader is what the frame and scan headers of a sequential DCT
// JPEG say, with the tables its one scan uses.
type jpegDCTHeader struct {
	precision, rows, cols int
	restart               int
	quant                 [64]int32 // in natural order
	dc, ac                *huffTable
}

// decodeJPEGDCT decodes one greyscale baseline or extended (Huffman) JPEG
// frame of 8 or 12 bits into raw.
func decodeJPEGDCT(data []byte, fs frameSpec, raw []uint32) (bool, error) {
	h, scan, err := parseJPEGDCT(data, fs)
	if err != nil {
		return false, err
	}
	r := &bitReader{data: scan}
	idct := newIDCT(h.precision)
	bw, bh := (h.cols+7)/8, (h.rows+7)/8
	var coef [64]int16
	var out [64]int32
	var dc int32
	left := h.restart // blocks left in the restart interval; 0: none
	rst := 0
	for by := 0; by < bh; by++ {
		for bx := 0; bx < bw; bx++ {
			if h.restart > 0 {
				if left == 0 {
					if err := r.restart(rst); err != nil {
						return false, fmt.Errorf("JPEG block row %d: %w", by+1, err)
					}
					rst++
					left = h.restart
					dc = 0
				}
				left--
			}
			if err := decodeBlock(r, h, &coef, &dc); err != nil {
				return false, fmt.Errorf("JPEG block %d of row %d: %w", bx+1, by+1, err)
			}
			idct.block(&coef, &h.quant, &out)
			x0, y0 := 8*bx, 8*by
			for y := 0; y < 8 && y0+y < h.rows; y++ {
				row := raw[(y0+y)*h.cols+x0 : (y0+y+1)*h.cols]
				for x := 0; x < 8 && x < len(row); x++ {
					row[x] = uint32(out[8*y+x])
				}
			}
		}
		if r.zeros > 64 {
			return false, fmt.Errorf("JPEG: data ends at block row %d of %d", by+1, bh)
		}
	}
	return false, nil
}

// decodeBlock reads one block's Huffman-coded coefficients (T.81 F.2.2)
// into coef, in natural order, undequantised; dc is the DC predictor.
func decodeBlock(r *bitReader, h *jpegDCTHeader, coef *[64]int16, dc *int32) error {
	*coef = [64]int16{}
	s, err := r.decode(h.dc)
	if err != nil {
		return fmt.Errorf("DC: %w", err)
	}
	if s > 15 {
		return fmt.Errorf("DC difference category %d", s)
	}
	*dc += extend(r.bits(uint(s)), s)
	coef[0] = int16(*dc)
	for k := 1; k < 64; k++ {
		rs, err := r.decode(h.ac)
		if err != nil {
			return fmt.Errorf("AC: %w", err)
		}
		run, size := int(rs>>4), rs&15
		if size == 0 {
			if run != 15 {
				break // end of block
			}
			k += 15
			continue
		}
		k += run
		coef[jpegNaturalOrder[k]] = int16(extend(r.bits(uint(size)), size))
	}
	return nil
}

// extend turns the s low bits v of a Huffman-coded value into the signed
// value they stand for (T.81 F.2.2.1, EXTEND).
func extend(v uint32, s byte) int32 {
	if s == 0 {
		return 0
	}
	if v < 1<<(s-1) {
		return int32(v) - 1<<s + 1
	}
	return int32(v)
}

// idct is IJG's jpeg_idct_islow for one sample precision: a separable
// 8×8 inverse DCT in integer arithmetic, constants scaled by 2^13, the
// columns' results kept with pass1 extra bits.
type idct struct {
	pass1  uint  // PASS1_BITS: 2 for 8-bit samples, 1 for 12-bit
	center int32 // CENTERJSAMPLE
	max    int32 // MAXJSAMPLE
	mask   int32 // RANGE_MASK: 4 × (MAXJSAMPLE+1) − 1
}

func newIDCT(precision int) idct {
	if precision == 8 {
		return idct{pass1: 2, center: 128, max: 255, mask: 1023}
	}
	return idct{pass1: 1, center: 2048, max: 4095, mask: 16383}
}

// The constants of jidctint.c: FIX(x) = round(x × 2^13).
const (
	idctBits = 13
	fix0_298 = 2446
	fix0_390 = 3196
	fix0_541 = 4433
	fix0_765 = 6270
	fix0_899 = 7373
	fix1_175 = 9633
	fix1_501 = 12299
	fix1_847 = 15137
	fix1_961 = 16069
	fix2_053 = 16819
	fix2_562 = 20995
	fix3_072 = 25172
)

// descale is IJG's DESCALE: x / 2^n rounded, by an arithmetic shift.
func descale(x int32, n uint) int32 { return (x + 1<<(n-1)) >> n }

// limit is IJG's post-IDCT range limiting (sample_range_limit indexed with
// & RANGE_MASK): v + CENTERJSAMPLE clamped to [0, MAXJSAMPLE], with v
// taken modulo 4 × (MAXJSAMPLE+1) first, as IJG's table does.
func (d *idct) limit(v int32) int32 {
	v &= d.mask
	if v > d.mask>>1 {
		v -= d.mask + 1
	}
	v += d.center
	return min(max(v, 0), d.max)
}

// idct1D is the even/odd butterfly of jidctint.c on eight values (s[0] is
// the DC term); it returns the eight outputs scaled by 2^13 before
// descaling, in order 0..7.
func idct1D(s0, s1, s2, s3, s4, s5, s6, s7 int32) (o [8]int32) {
	// Even part.
	z1 := (s2 + s6) * fix0_541
	tmp2 := z1 + s6*-fix1_847
	tmp3 := z1 + s2*fix0_765
	tmp0 := (s0 + s4) << idctBits
	tmp1 := (s0 - s4) << idctBits
	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2
	// Odd part.
	tmp0, tmp1, tmp2, tmp3 = s7, s5, s3, s1
	z1 = tmp0 + tmp3
	z2 := tmp1 + tmp2
	z3 := tmp0 + tmp2
	z4 := tmp1 + tmp3
	z5 := (z3 + z4) * fix1_175
	tmp0 *= fix0_298
	tmp1 *= fix2_053
	tmp2 *= fix3_072
	tmp3 *= fix1_501
	z1 *= -fix0_899
	z2 *= -fix2_562
	z3 *= -fix1_961
	z4 *= -fix0_390
	z3 += z5
	z4 += z5
	tmp0 += z1 + z3
	tmp1 += z2 + z4
	tmp2 += z2 + z3
	tmp3 += z1 + z4
	return [8]int32{tmp10 + tmp3, tmp11 + tmp2, tmp12 + tmp1, tmp13 + tmp0, tmp13 - tmp0, tmp12 - tmp1, tmp11 - tmp2, tmp10 - tmp3}
}

// block dequantises coef with quant and writes the 64 samples of the
// block, row by row, to out.
func (d *idct) block(coef *[64]int16, quant *[64]int32, out *[64]int32) {
	var ws [64]int32
	// Pass 1: the columns, into ws with pass1 extra bits.
	for c := 0; c < 8; c++ {
		var in [8]int32
		ac := false
		for r := 0; r < 8; r++ {
			in[r] = int32(coef[8*r+c]) * quant[8*r+c]
			ac = ac || (r > 0 && in[r] != 0)
		}
		if !ac {
			// A column of DC only: the butterfly gives DC × 2^pass1.
			for r := 0; r < 8; r++ {
				ws[8*r+c] = in[0] << d.pass1
			}
			continue
		}
		o := idct1D(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7])
		for r := 0; r < 8; r++ {
			ws[8*r+c] = descale(o[r], idctBits-d.pass1)
		}
	}
	// Pass 2: the rows, descaled by the pass1 bits and the 8 of the
	// transform's normalisation, range limited.
	for r := 0; r < 8; r++ {
		w := ws[8*r : 8*r+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := d.limit(descale(w[0], d.pass1+3))
			for c := 0; c < 8; c++ {
				out[8*r+c] = v
			}
			continue
		}
		o := idct1D(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
		for c := 0; c < 8; c++ {
			out[8*r+c] = d.limit(descale(o[c], idctBits+d.pass1+3))
		}
	}
}

// parseJPEGDCT reads the markers up to the first scan and returns the
// headers and the bytes after the scan header, having checked that the
// frame is greyscale, sequential DCT with Huffman coding, 8 or 12 bits,
// and the size the DICOM header declares.
func parseJPEGDCT(data []byte, fs frameSpec) (*jpegDCTHeader, []byte, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != mSOI {
		return nil, nil, errors.New("JPEG: missing SOI marker")
	}
	p := &jpegDCTParser{fs: fs}
	scan, err := walkJPEGSegments(data, "JPEG", p.segment)
	if err != nil {
		return nil, nil, err
	}
	return &p.h, scan, nil
}

// jpegDCTParser is what parseJPEGDCT has read so far.
type jpegDCTParser struct {
	fs       frameSpec
	h        jpegDCTHeader
	dcTables [4]huffTable
	acTables [4]huffTable
	quant    [4][64]int32 // in natural order
	quantSet [4]bool
	sof      bool // the frame header was read
	tq       int  // the frame's quantisation table
}

// segment reads one marker segment; it is the last after the scan header.
func (p *jpegDCTParser) segment(m byte, seg []byte) (bool, error) {
	switch {
	case m == mSOF0 || m == mSOF1:
		return false, p.frameHeader(m, seg)
	case isSOF(m):
		return false, fmt.Errorf("JPEG: SOF%d frame; only sequential DCT with Huffman coding (SOF0, SOF1) is supported", m-mSOF0)
	case m == mDQT:
		return false, p.readDQT(seg)
	case m == mDHT:
		return false, readDHT(seg, "JPEG", &p.dcTables, &p.acTables)
	case m == mDRI:
		restart, err := readDRI(seg, "JPEG")
		p.h.restart = restart
		return false, err
	case m == mSOS:
		return true, p.scanHeader(seg)
	}
	return false, nil
}

// frameHeader reads the SOF0 or SOF1 segment and checks it against the
// DICOM header.
func (p *jpegDCTParser) frameHeader(m byte, seg []byte) error {
	h, fs := &p.h, p.fs
	if p.sof {
		return errors.New("JPEG: two frame headers")
	}
	if len(seg) < 9 {
		return errors.New("JPEG: short SOF")
	}
	h.precision = int(seg[0])
	h.rows = int(binary.BigEndian.Uint16(seg[1:]))
	h.cols = int(binary.BigEndian.Uint16(seg[3:]))
	if nc := int(seg[5]); nc != 1 {
		return fmt.Errorf("JPEG: %d components; only greyscale is supported", nc)
	}
	if h.precision != 8 && (h.precision != 12 || m == mSOF0) {
		return fmt.Errorf("JPEG: SOF%d with precision %d (baseline: 8, extended: 8 or 12)", m-mSOF0, h.precision)
	}
	if h.precision > fs.bitsAllocated {
		return fmt.Errorf("JPEG: precision %d exceeds BitsAllocated %d", h.precision, fs.bitsAllocated)
	}
	if h.rows != fs.rows || h.cols != fs.cols {
		return fmt.Errorf("JPEG: frame is %d×%d, header says %d×%d", h.cols, h.rows, fs.cols, fs.rows)
	}
	p.tq = int(seg[8])
	if p.tq > 3 {
		return fmt.Errorf("JPEG: quantisation table %d (0 to 3)", p.tq)
	}
	p.sof = true
	return nil
}

// readDQT reads the quantisation tables of a DQT segment (8- or 16-bit
// values, in zigzag order) into p.quant.
func (p *jpegDCTParser) readDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, id := seg[0]>>4, seg[0]&15
		size := 65
		if pq == 1 {
			size = 129
		}
		if pq > 1 || id > 3 || len(seg) < size {
			return fmt.Errorf("JPEG: bad DQT (precision %d, id %d, %d bytes)", pq, id, len(seg))
		}
		for i := 0; i < 64; i++ {
			v := int32(seg[1+i])
			if pq == 1 {
				v = int32(binary.BigEndian.Uint16(seg[1+2*i:]))
			}
			p.quant[id][jpegNaturalOrder[i]] = v
		}
		p.quantSet[id] = true
		seg = seg[size:]
	}
	return nil
}

// scanHeader reads the SOS segment: one component, its Huffman tables,
// and the spectral selection of a sequential scan.
func (p *jpegDCTParser) scanHeader(seg []byte) error {
	if !p.sof {
		return errors.New("JPEG: scan before the frame header")
	}
	if len(seg) < 6 || seg[0] != 1 {
		return errors.New("JPEG: the scan must hold one component")
	}
	td, ta := seg[2]>>4, seg[2]&15
	if td > 3 || !p.dcTables[td].defined || ta > 3 || !p.acTables[ta].defined {
		return fmt.Errorf("JPEG: Huffman tables DC %d / AC %d are not defined", td, ta)
	}
	if !p.quantSet[p.tq] {
		return fmt.Errorf("JPEG: quantisation table %d is not defined", p.tq)
	}
	if ss, se, a := seg[3], seg[4], seg[5]; ss != 0 || se != 63 || a != 0 {
		return fmt.Errorf("JPEG: scan of spectral selection %d..%d, approximation 0x%02X; sequential DCT needs 0..63, 0", ss, se, a)
	}
	p.h.quant = p.quant[p.tq]
	p.h.dc, p.h.ac = &p.dcTables[td], &p.acTables[ta]
	return nil
}
