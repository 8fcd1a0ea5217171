package dicomio

import (
	"encoding/binary"
	"fmt"
)

// This file holds what the two JPEG decoders (jpegdct.go, jpegll.go) read
// alike: the marker segments before the first scan, and the DHT and DRI
// segments. prefix starts each error ("JPEG", "JPEG lossless"), so that an
// error names the decoder that met it.

// walkJPEGSegments calls fn with the marker and the contents (after the
// length) of each marker segment that follows the SOI of data, skipping
// garbage between segments and fill bytes, until fn says the segment was
// the last it needs (the scan header); it returns the bytes after that
// segment. Reaching the end of the data or an EOI first is an error.
func walkJPEGSegments(data []byte, prefix string, fn func(marker byte, seg []byte) (last bool, err error)) ([]byte, error) {
	p := 2
	for {
		for p < len(data) && data[p] != 0xFF {
			p++ // tolerate garbage between segments
		}
		for p+1 < len(data) && data[p+1] == 0xFF {
			p++ // fill bytes
		}
		if p+4 > len(data) {
			return nil, fmt.Errorf("%s: no scan before the end of the data", prefix)
		}
		m := data[p+1]
		if m == mEOI {
			return nil, fmt.Errorf("%s: EOI before any scan", prefix)
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 || p+2+n > len(data) {
			return nil, fmt.Errorf("%s: marker 0x%02X: length %d past the end of the data", prefix, m, n)
		}
		seg := data[p+4 : p+2+n]
		p += 2 + n
		last, err := fn(m, seg)
		if err != nil {
			return nil, err
		}
		if last {
			return data[p:], nil
		}
	}
}

// isSOF reports whether m is a start-of-frame marker (SOF0 to SOF15; 0xC4,
// 0xC8 and 0xCC in that range are DHT, JPG and DAC).
func isSOF(m byte) bool {
	return m >= mSOF0 && m <= 0xCF && m != mDHT && m != 0xC8 && m != 0xCC
}

// readDHT builds the Huffman tables a DHT segment defines, those of class
// 0 (DC, or lossless) into dc and those of class 1 (AC) into ac; with ac
// nil, class 1 is refused as class 2 and above are.
func readDHT(seg []byte, prefix string, dc, ac *[4]huffTable) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return fmt.Errorf("%s: short DHT", prefix)
		}
		class, id := seg[0]>>4, seg[0]&15
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if class > 1 || (class == 1 && ac == nil) || id > 3 || total > 256 || len(seg) < 17+total {
			return fmt.Errorf("%s: bad DHT (class %d, id %d, %d values)", prefix, class, id, total)
		}
		t := &dc[id]
		if class == 1 {
			t = &ac[id]
		}
		if err := t.build(counts, seg[17:17+total]); err != nil {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		seg = seg[17+total:]
	}
	return nil
}

// readDRI returns the restart interval a DRI segment sets.
func readDRI(seg []byte, prefix string) (int, error) {
	if len(seg) < 2 {
		return 0, fmt.Errorf("%s: short DRI", prefix)
	}
	return int(binary.BigEndian.Uint16(seg)), nil
}
