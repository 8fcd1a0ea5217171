package writer

import (
	"bytes"
	"fmt"
)

// MaskSet is the segmentation EncodeSEG and WriteSEG encode, indexed by
// segment (Description.Segments) and source frame (Series.Frames). It is
// implemented by Masks (one byte per pixel; BINARY or FRACTIONAL) and
// BitMasks (bit-packed; BINARY only, the fast path). The interface is
// closed: its methods are unexported.
type MaskSet interface {
	// validate checks the shape against the description and the source.
	validate(segments, frames, pixels int) error
	// nonEmpty reports whether segment s has any pixel set on frame f.
	nonEmpty(s, f, pixels int) bool
	// numSegments and numFrames give the (validated) shape.
	numSegments() int
	numFrames(s int) int
}

// Masks is the segmentation to encode with one byte per pixel: Masks[s][f]
// is segment s+1 (Description.Segments[s]) on source frame f
// (Series.Frames[f]), Rows × Columns bytes, row-major. For BINARY any
// nonzero byte is "in the segment"; for FRACTIONAL the byte is the
// probability scaled to 0..255. A nil frame means all zero, which saves
// memory for empty slices. BINARY SEGs are written faster from BitMasks.
type Masks [][][]byte

// validate checks the shape of the masks against the source and segments.
func (m Masks) validate(segments, frames, pixels int) error {
	if len(m) != segments {
		return fmt.Errorf("writer: masks have %d segments, the description %d", len(m), segments)
	}
	for s := range m {
		if len(m[s]) != frames {
			return fmt.Errorf("writer: masks of segment %d have %d frames, the source series %d", s+1, len(m[s]), frames)
		}
		for f, fr := range m[s] {
			if fr != nil && len(fr) != pixels {
				return fmt.Errorf("writer: mask of segment %d frame %d has %d pixels, want rows*columns = %d", s+1, f, len(fr), pixels)
			}
		}
	}
	return nil
}

func (m Masks) nonEmpty(s, f, _ int) bool {
	fr := m[s][f]
	return fr != nil && !isEmpty(fr)
}

func (m Masks) numSegments() int    { return len(m) }
func (m Masks) numFrames(s int) int { return len(m[s]) }

// BitMasks is the segmentation to encode, bit-packed: BitMasks[s][f] is
// segment s+1 on source frame f, Rows × Columns pixels row-major packed 8
// per byte with the first pixel in the least significant bit, exactly the
// DICOM BINARY layout of one frame: PackedLen(Rows*Columns) bytes. Bits past
// Rows*Columns in the last byte are ignored. A nil frame means all zero.
// PackFrame and ThresholdPack produce frames in this layout. BitMasks is for
// BINARY SEGs only.
type BitMasks [][][]byte

// PackedLen is the number of bytes of one bit-packed frame of pixels pixels.
func PackedLen(pixels int) int { return (pixels + 7) / 8 }

func (m BitMasks) validate(segments, frames, pixels int) error {
	if len(m) != segments {
		return fmt.Errorf("writer: bit masks have %d segments, the description %d", len(m), segments)
	}
	want := PackedLen(pixels)
	for s := range m {
		if len(m[s]) != frames {
			return fmt.Errorf("writer: bit masks of segment %d have %d frames, the source series %d", s+1, len(m[s]), frames)
		}
		for f, fr := range m[s] {
			if fr != nil && len(fr) != want {
				return fmt.Errorf("writer: bit mask of segment %d frame %d has %d bytes, want (rows*columns+7)/8 = %d", s+1, f, len(fr), want)
			}
		}
	}
	return nil
}

func (m BitMasks) nonEmpty(s, f, pixels int) bool {
	fr := m[s][f]
	if fr == nil {
		return false
	}
	full := pixels / 8
	if !isEmpty(fr[:full]) {
		return true
	}
	if r := pixels % 8; r != 0 {
		return fr[full]&(1<<r-1) != 0
	}
	return false
}

func (m BitMasks) numSegments() int    { return len(m) }
func (m BitMasks) numFrames(s int) int { return len(m[s]) }

var zeroPage = make([]byte, 4096)

// isEmpty reports whether fr has no nonzero byte. bytes.Equal compiles to
// the runtime's vectorised memequal, so this is a wide-word scan.
func isEmpty(fr []byte) bool {
	for len(fr) > 0 {
		n := min(len(fr), len(zeroPage))
		if !bytes.Equal(fr[:n], zeroPage[:n]) {
			return false
		}
		fr = fr[n:]
	}
	return true
}
