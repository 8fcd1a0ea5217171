package writer

import (
	"bytes"
	"fmt"
)

// Masks is the segmentation to encode: Masks[s][f] is segment s+1
// (Description.Segments[s]) on source frame f (Series.Frames[f]), Rows ×
// Columns bytes, row-major. For BINARY any nonzero byte is "in the segment";
// for FRACTIONAL the byte is the probability scaled to 0..255. A nil frame
// means all zero, which saves memory for empty slices.
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

var zeroPage = make([]byte, 4096)

// isEmpty reports whether the frame has no nonzero byte.
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
