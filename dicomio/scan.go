package dicomio

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// This file finds where things are in a DICOM file without decoding values:
// the end of the File Meta group, the transfer syntax, and the offset of the
// top-level Pixel Data element. It also checks that every element length
// fits in its container, so that the DICOM library, which allocates a value's
// length before reading it, is never handed a length larger than the file.

const (
	undefinedLength = 0xFFFFFFFF
	maxNesting      = 32 // deeper sequence nesting is refused (hostile files)
	// maxInflated bounds the size of an inflated (deflate transfer syntax)
	// data set, so that a deflate bomb cannot exhaust memory.
	maxInflated = 1 << 30
	windowSize  = 64 << 10
)

var (
	tagPixelData = tagOf(0x7FE0, 0x0010)
	// Extended Offset Table and its lengths (PS3.5 A.4, PS3.3 C.7.6.3).
	tagExtendedOffsetTable        = tagOf(0x7FE0, 0x0001)
	tagExtendedOffsetTableLengths = tagOf(0x7FE0, 0x0002)
	tagItem                       = tagOf(0xFFFE, 0xE000)
	tagItemDelim                  = tagOf(0xFFFE, 0xE00D)
	tagSequenceDelim              = tagOf(0xFFFE, 0xE0DD)
	errNotDICOM                   = errors.New("not a DICOM file (no DICM preamble, no recognisable data set)")
	errTooDeep                    = errors.New("sequences nested too deeply")
	errPastEndOfValue             = errors.New("element runs past the end of its container")
)

func tagOf(g, e uint16) uint32 { return uint32(g)<<16 | uint32(e) }

// windowPool recycles window buffers between files (LoadSeries scans
// hundreds of files; see scratch).
var windowPool = sync.Pool{New: func() any { b := make([]byte, windowSize); return &b }}

// window is a buffered view of an io.ReaderAt for random access reads of
// small pieces (element headers).
type window struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // file offset of buf[0]
}

// at returns n bytes at off; the slice is valid until the next call.
func (w *window) at(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > w.size {
		return nil, io.ErrUnexpectedEOF
	}
	if off >= w.off && off+int64(n) <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+int64(n)], nil
	}
	size := windowSize
	if n > size {
		size = n
	}
	if rem := w.size - off; int64(size) > rem {
		size = int(rem)
	}
	if cap(w.buf) < size {
		w.buf = make([]byte, size)
	}
	w.buf = w.buf[:size]
	if _, err := w.r.ReadAt(w.buf, off); err != nil && !(errors.Is(err, io.EOF) && size > 0) {
		w.buf = w.buf[:0]
		return nil, err
	}
	w.off = off
	return w.buf[:n], nil
}

// layout is where a file's parts are.
type layout struct {
	TransferSyntaxUID string
	MetaSOPClassUID   string
	MetaSOPInstUID    string
	// data is the data set (after the File Meta group): the file itself, or
	// the inflated bytes for the deflate transfer syntax.
	data     io.ReaderAt
	dataOff  int64 // offset of the data set in data
	dataSize int64 // end of data in data
	bo       binary.ByteOrder
	implicit bool
	// Pixel Data element, when HasPixels: value offset (in data) and length,
	// its VR, and whether it is encapsulated (undefined length).
	HasPixels    bool
	pixelElemOff int64 // offset of the Pixel Data element header
	pixelOff     int64
	pixelLen     int64 // native: value length; encapsulated: up to the sequence delimiter
	pixelVR      string
	pixelEncaps  bool
	// Extended Offset Table (7FE0,0001) and its lengths (7FE0,0002), when
	// present before the Pixel Data: value offsets and lengths in data.
	eotOff, eotLen   int64
	eotlOff, eotlLen int64
	// eotElemOff is the offset of the first of those elements' headers
	// (0 when absent): the header pass hands the DICOM library the data
	// set up to there, as it does not know their 64-bit VR (OV).
	eotElemOff int64
	// index, for an encapsulated multi-frame instance decoded in ranges
	// of frames (frameRangeLayout), is where its frames lie, shared by
	// the ranges; nil otherwise.
	index *encapsIndex
}

// scanLayout reads the File Meta group of r (size bytes) and walks the data
// set up to the top-level Pixel Data element.
func scanLayout(r io.ReaderAt, size int64) (*layout, error) {
	bp := windowPool.Get().(*[]byte)
	defer windowPool.Put(bp)
	w := &window{r: r, size: size, buf: (*bp)[:0]}
	l := &layout{data: r, dataSize: size}
	var start int64
	if pre, err := w.at(128, 4); err == nil && string(pre) == "DICM" {
		end, err := scanMeta(w, 132, l)
		if err != nil {
			return nil, fmt.Errorf("file meta information: %w", err)
		}
		start = end
	} else if g, err := w.at(0, 8); err == nil && binary.LittleEndian.Uint16(g) == 0x0002 && isVR(g[4:6]) {
		// File Meta group without the 128-byte preamble.
		end, err := scanMeta(w, 0, l)
		if err != nil {
			return nil, fmt.Errorf("file meta information: %w", err)
		}
		start = end
	} else {
		// No File Meta (old ACR-NEMA style): implicit VR little endian
		// unless the first element clearly has an explicit VR.
		if g == nil {
			return nil, errNotDICOM
		}
		grp := binary.LittleEndian.Uint16(g)
		if grp == 0 || grp > 0x7FE0 {
			return nil, errNotDICOM
		}
		l.TransferSyntaxUID = ImplicitVRLittleEndian
		if isVR(g[4:6]) {
			l.TransferSyntaxUID = ExplicitVRLittleEndian
		}
	}
	var deflated bool
	l.bo, l.implicit, deflated = datasetEncoding(l.TransferSyntaxUID)
	l.dataOff = start
	if deflated {
		inflated, err := inflate(io.NewSectionReader(r, start, size-start))
		if err != nil {
			return nil, fmt.Errorf("deflated data set: %w", err)
		}
		l.data = bytes.NewReader(inflated)
		l.dataOff = 0
		l.dataSize = int64(len(inflated))
		w = &window{r: l.data, size: l.dataSize, buf: (*bp)[:0]}
	}
	s := &walker{w: w, bo: l.bo, implicit: l.implicit, l: l}
	if _, err := s.elements(l.dataOff, l.dataSize, false, 0); err != nil {
		return nil, err
	}
	return l, nil
}

// inflate reads a raw deflate stream (PS3.5 Annex A.5), bounded by maxInflated.
func inflate(r io.Reader) ([]byte, error) {
	fr := flate.NewReader(r)
	defer fr.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(fr, maxInflated+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	if n > maxInflated {
		return nil, fmt.Errorf("inflates to more than %d bytes", maxInflated)
	}
	return buf.Bytes(), nil
}

// scanMeta walks the group 0002 elements (explicit VR little endian) from
// off, records the transfer syntax and returns where the data set starts.
func scanMeta(w *window, off int64, l *layout) (int64, error) {
	for {
		h, err := w.at(off, 8)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && off == w.size {
				return off, nil
			}
			return 0, err
		}
		if binary.LittleEndian.Uint16(h) != 0x0002 {
			break
		}
		t := tagOf(0x0002, binary.LittleEndian.Uint16(h[2:]))
		vr := string(h[4:6])
		var vl int64
		hdr := int64(8)
		if longLengthVR(vr) {
			b, err := w.at(off, 12)
			if err != nil {
				return 0, err
			}
			vl = int64(binary.LittleEndian.Uint32(b[8:]))
			hdr = 12
		} else {
			vl = int64(binary.LittleEndian.Uint16(h[6:]))
		}
		if vl == undefinedLength || off+hdr+vl > w.size {
			return 0, fmt.Errorf("element (0002,%04X): %w", uint16(t), errPastEndOfValue)
		}
		if t == tagOf(0x0002, 0x0010) || t == tagOf(0x0002, 0x0002) || t == tagOf(0x0002, 0x0003) {
			if vl > 256 {
				return 0, fmt.Errorf("element (0002,%04X) too long for a UID", uint16(t))
			}
			b, err := w.at(off+hdr, int(vl))
			if err != nil {
				return 0, err
			}
			v := strings.TrimRight(string(b), " \x00")
			switch t {
			case tagOf(0x0002, 0x0010):
				l.TransferSyntaxUID = v
			case tagOf(0x0002, 0x0002):
				l.MetaSOPClassUID = v
			case tagOf(0x0002, 0x0003):
				l.MetaSOPInstUID = v
			}
		}
		off += hdr + vl
	}
	if l.TransferSyntaxUID == "" {
		return 0, errors.New("no TransferSyntaxUID (0002,0010)")
	}
	return off, nil
}

// longLengthVR reports whether an explicit VR has a 2-byte reserved field and
// a 4-byte length, as the DICOM library decides it.
func longLengthVR(vr string) bool {
	switch vr {
	case "NA", "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UN", "UC", "UR", "UT", "UV":
		return true
	}
	return false
}

func isVR(b []byte) bool {
	return len(b) == 2 && b[0] >= 'A' && b[0] <= 'Z' && b[1] >= 'A' && b[1] <= 'Z'
}

// walker walks elements the way the DICOM library will read them, checking
// lengths, and stops at the top-level Pixel Data element.
type walker struct {
	w        *window
	bo       binary.ByteOrder
	implicit bool
	l        *layout
}

type elemHeader struct {
	tag uint32
	vr  string
	vl  uint32
	n   int64 // header length
}

func (s *walker) header(off, end int64) (elemHeader, error) {
	if end-off < 8 {
		return elemHeader{}, errPastEndOfValue
	}
	b, err := s.w.at(off, 8)
	if err != nil {
		return elemHeader{}, err
	}
	t := tagOf(s.bo.Uint16(b), s.bo.Uint16(b[2:]))
	if t>>16 == 0xFFFE || s.implicit {
		vr := ""
		if t>>16 != 0xFFFE {
			vr = implicitVR(t)
		}
		return elemHeader{tag: t, vr: vr, vl: s.bo.Uint32(b[4:]), n: 8}, nil
	}
	vr := string(b[4:6])
	if longLengthVR(vr) {
		if end-off < 12 {
			return elemHeader{}, errPastEndOfValue
		}
		b, err = s.w.at(off, 12)
		if err != nil {
			return elemHeader{}, err
		}
		return elemHeader{tag: t, vr: vr, vl: s.bo.Uint32(b[8:]), n: 12}, nil
	}
	vl := uint32(s.bo.Uint16(b[6:]))
	if vl == 0xFFFF {
		vl = undefinedLength // as the library reads it
	}
	return elemHeader{tag: t, vr: vr, vl: vl, n: 8}, nil
}

// implicitVR is the VR the DICOM library assumes for a tag in implicit VR.
func implicitVR(t uint32) string {
	tg := tag.Tag{Group: uint16(t >> 16), Element: uint16(t)}
	if t == tagPixelData || t == tagOf(0x6000, 0x3000) {
		return "OW"
	}
	if info, err := tag.Find(tg); err == nil && len(info.VRs) > 0 {
		return info.VRs[0]
	}
	return "UN"
}

func (s *walker) kind(t uint32, vr string) tag.VRKind {
	return tag.GetVRKind(tag.Tag{Group: uint16(t >> 16), Element: uint16(t)}, vr)
}

// elements walks elements from off to end (or to an item delimiter when
// untilDelim) and returns the offset after them. At depth 0 it stops at
// Pixel Data and records it in s.l.
func (s *walker) elements(off, end int64, untilDelim bool, depth int) (int64, error) {
	if depth > maxNesting {
		return 0, errTooDeep
	}
	for off < end {
		h, err := s.header(off, end)
		if err != nil {
			return 0, fmt.Errorf("element at offset %d: %w", off, err)
		}
		if h.tag == tagItemDelim {
			if untilDelim {
				return off + h.n, nil
			}
			return 0, fmt.Errorf("unexpected item delimiter at offset %d", off)
		}
		if h.tag>>16 == 0xFFFE {
			return 0, fmt.Errorf("unexpected item tag (%04X,%04X) at offset %d", h.tag>>16, h.tag&0xFFFF, off)
		}
		val := off + h.n
		if depth == 0 && h.tag == tagPixelData {
			s.l.HasPixels = true
			s.l.pixelElemOff = off
			s.l.pixelOff = val
			s.l.pixelVR = h.vr
			if h.vl == undefinedLength {
				s.l.pixelEncaps = true
				e, err := s.rawItems(val, end)
				if err != nil {
					return 0, fmt.Errorf("pixel data: %w", err)
				}
				s.l.pixelLen = e - val
			} else {
				if int64(h.vl) > end-val {
					return 0, fmt.Errorf("pixel data: %d bytes declared, %d present: %w", h.vl, end-val, errPastEndOfValue)
				}
				s.l.pixelLen = int64(h.vl)
			}
			return off, nil
		}
		if depth == 0 && h.vl != undefinedLength && int64(h.vl) <= end-val {
			if (h.tag == tagExtendedOffsetTable || h.tag == tagExtendedOffsetTableLengths) && s.l.eotElemOff == 0 {
				s.l.eotElemOff = off
			}
			switch h.tag {
			case tagExtendedOffsetTable:
				s.l.eotOff, s.l.eotLen = val, int64(h.vl)
			case tagExtendedOffsetTableLengths:
				s.l.eotlOff, s.l.eotlLen = val, int64(h.vl)
			}
		}
		k := s.kind(h.tag, h.vr)
		if h.vl == undefinedLength {
			switch k {
			case tag.VRSequence, tag.VRUnknown:
				off, err = s.items(val, end, true, depth+1)
			case tag.VRBytes, tag.VRPixelData:
				off, err = s.rawItems(val, end)
			default:
				err = fmt.Errorf("undefined length for VR %q", h.vr)
			}
			if err != nil {
				return 0, fmt.Errorf("element (%04X,%04X): %w", h.tag>>16, h.tag&0xFFFF, err)
			}
			continue
		}
		if int64(h.vl) > end-val {
			return 0, fmt.Errorf("element (%04X,%04X) at offset %d: length %d: %w", h.tag>>16, h.tag&0xFFFF, off, h.vl, errPastEndOfValue)
		}
		if k == tag.VRSequence {
			if _, err := s.items(val, val+int64(h.vl), false, depth+1); err != nil {
				return 0, fmt.Errorf("element (%04X,%04X): %w", h.tag>>16, h.tag&0xFFFF, err)
			}
		}
		off = val + int64(h.vl)
	}
	if untilDelim {
		return 0, errors.New("missing item delimiter")
	}
	return off, nil
}

// items walks sequence items from off to end (or to a sequence delimiter).
func (s *walker) items(off, end int64, undefined bool, depth int) (int64, error) {
	if depth > maxNesting {
		return 0, errTooDeep
	}
	for off < end {
		if end-off < 8 {
			return 0, errPastEndOfValue
		}
		b, err := s.w.at(off, 8)
		if err != nil {
			return 0, err
		}
		t := tagOf(s.bo.Uint16(b), s.bo.Uint16(b[2:]))
		vl := s.bo.Uint32(b[4:])
		switch {
		case t == tagSequenceDelim && undefined:
			return off + 8, nil
		case t != tagItem:
			return 0, fmt.Errorf("expected an item at offset %d, found (%04X,%04X)", off, t>>16, t&0xFFFF)
		case vl == undefinedLength:
			off, err = s.elements(off+8, end, true, depth)
			if err != nil {
				return 0, err
			}
		default:
			if int64(vl) > end-off-8 {
				return 0, fmt.Errorf("item at offset %d: %w", off, errPastEndOfValue)
			}
			if _, err := s.elements(off+8, off+8+int64(vl), false, depth); err != nil {
				return 0, err
			}
			off += 8 + int64(vl)
		}
	}
	if undefined {
		return 0, errors.New("missing sequence delimiter")
	}
	return off, nil
}

// rawItems walks the items of an encapsulated value up to its sequence
// delimiter and returns the offset after the delimiter.
func (s *walker) rawItems(off, end int64) (int64, error) {
	_, e, err := fragments(s.w, s.bo, off, end)
	return e, err
}

// fragment is one item of an encapsulated value: offset and length of its bytes.
type fragment struct{ off, len int64 }

// fragments lists the items of an encapsulated value starting at off (the
// first one is the Basic Offset Table) and returns the offset after the
// sequence delimiter.
func fragments(w *window, bo binary.ByteOrder, off, end int64) ([]fragment, int64, error) {
	var out []fragment
	for {
		if end-off < 8 {
			return nil, 0, errors.New("missing sequence delimiter after encapsulated fragments")
		}
		b, err := w.at(off, 8)
		if err != nil {
			return nil, 0, err
		}
		t := tagOf(bo.Uint16(b), bo.Uint16(b[2:]))
		vl := bo.Uint32(b[4:])
		if t == tagSequenceDelim {
			return out, off + 8, nil
		}
		if t != tagItem || vl == undefinedLength || int64(vl) > end-off-8 {
			return nil, 0, fmt.Errorf("bad encapsulated item at offset %d", off)
		}
		out = append(out, fragment{off + 8, int64(vl)})
		off += 8 + int64(vl)
	}
}
