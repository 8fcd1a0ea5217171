package dicomio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// decodeRLE decodes one RLE Lossless frame (PS3.5 Annex G): a 64-byte
// header with the number of segments and their offsets, then one PackBits
// segment per byte plane of the pixel cell, most significant plane first.
// Only one sample per pixel is accepted.
func decodeRLE(data []byte, fs frameSpec, raw []uint32) (bool, error) {
	if len(data) < 64 {
		return false, fmt.Errorf("RLE header: %d bytes, want 64", len(data))
	}
	bpp := fs.bitsAllocated / 8
	nseg := int(binary.LittleEndian.Uint32(data))
	if nseg != bpp {
		return false, fmt.Errorf("RLE header: %d segments, %d-bit greyscale pixels need %d", nseg, fs.bitsAllocated, bpp)
	}
	var offs [16]int
	for i := 0; i < nseg; i++ {
		offs[i] = int(binary.LittleEndian.Uint32(data[4+4*i:]))
	}
	offs[nseg] = len(data)
	npix := fs.rows * fs.cols
	for i := range raw {
		raw[i] = 0
	}
	plane := make([]byte, npix)
	for s := 0; s < nseg; s++ {
		lo, hi := offs[s], offs[s+1]
		if lo < 64 || hi < lo || hi > len(data) {
			return false, fmt.Errorf("RLE segment %d: offsets %d..%d outside the frame's %d bytes", s+1, lo, hi, len(data))
		}
		if err := unpackBits(plane, data[lo:hi]); err != nil {
			return false, fmt.Errorf("RLE segment %d: %w", s+1, err)
		}
		sh := uint(8 * (nseg - 1 - s))
		for i, b := range plane {
			raw[i] |= uint32(b) << sh
		}
	}
	return false, nil
}

// unpackBits decodes a PackBits segment into dst, which it must fill;
// what is left over once dst is full (an encoder's padding) is ignored.
func unpackBits(dst, src []byte) error {
	o, i := 0, 0
	for o < len(dst) {
		if i >= len(src) {
			return fmt.Errorf("segment ends after %d of %d bytes", o, len(dst))
		}
		n := int(int8(src[i]))
		i++
		switch {
		case n >= 0: // n+1 literal bytes
			if i+n+1 > len(src) {
				return errors.New("literal run past the end of the segment")
			}
			// A run past the end of the plane is cut there, as other
			// decoders do, rather than refused.
			o += copy(dst[o:], src[i:i+n+1])
			i += n + 1
		case n > -128: // the next byte 1-n times
			if i >= len(src) {
				return errors.New("replicate run past the end of the segment")
			}
			b := src[i]
			i++
			for k := min(o+1-n, len(dst)); o < k; o++ {
				dst[o] = b
			}
		}
	}
	return nil
}
