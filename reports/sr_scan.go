package reports

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// The DICOM library allocates a value's declared length before reading it,
// so a hostile file declaring a 4 GiB text would make it allocate 4 GiB.
// checkSRLengths walks the data set first and rejects any element, item or
// sequence whose declared length runs past the end of the file.

// errSRLength is returned for a declared length beyond the file's end.
var errSRLength = errors.New("an element's declared length runs past the end of the file")

// checkSRLengths validates the element lengths of a Part 10 file whose
// meta group ends at metaEnd, with the data set in the given encoding.
func checkSRLengths(data []byte, metaEnd int64, bo binary.ByteOrder, implicit bool) error {
	end := int64(len(data))
	pixelItems := false // inside encapsulated pixel data: items hold bytes
	for pos := metaEnd; pos < end; {
		if pos+8 > end {
			return errSRLength
		}
		group, elem := bo.Uint16(data[pos:]), bo.Uint16(data[pos+2:])
		if group == 0xFFFE { // item and delimiters: tag + 4-byte length
			vl := int64(bo.Uint32(data[pos+4:]))
			pos += 8
			switch {
			case elem == 0xE0DD:
				pixelItems = false
			case elem == 0xE000 && vl != 0xFFFFFFFF:
				if pos+vl > end {
					return errSRLength
				}
				if pixelItems {
					pos += vl // a fragment of bytes
				} // else descend into the item's elements
			}
			continue
		}
		var vr string
		var vl, hdr int64
		if implicit {
			vl, hdr = int64(bo.Uint32(data[pos+4:])), 8
			if info, err := tag.Find(tag.Tag{Group: group, Element: elem}); err == nil {
				vr = info.VRs[0]
			}
		} else {
			vr = string(data[pos+4 : pos+6])
			if longVR(vr) {
				if pos+12 > end {
					return errSRLength
				}
				vl, hdr = int64(bo.Uint32(data[pos+8:])), 12
			} else {
				vl, hdr = int64(bo.Uint16(data[pos+6:])), 8
			}
		}
		pos += hdr
		if vl == 0xFFFFFFFF {
			if group == 0x7FE0 && elem == 0x0010 {
				pixelItems = true
			}
			continue // undefined length: its items follow
		}
		if pos+vl > end {
			return errSRLength
		}
		if strings.HasPrefix(vr, "SQ") {
			continue // descend into the sequence's items
		}
		pos += vl
	}
	return nil
}
