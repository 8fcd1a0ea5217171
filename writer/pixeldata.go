package writer

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// The Pixel Data element is written by this package, not by the DICOM
// library: the library's unprocessed-value path copies the whole value into
// an internal buffer before writing it. Pixel Data (7FE0,0010) is the last
// element of the top-level dataset of a SEG (nothing with a higher tag is
// ever added), so appending it after the library has written the rest keeps
// the elements sorted. The File Meta group is unaffected: its group length
// covers group 0002 only.

// pixelDataLength is the length of the Pixel Data value of the selected
// frames, padded to even length.
func pixelDataLength(typ SegmentationType, frames, pixels int) uint64 {
	var n uint64
	if typ == Fractional {
		n = uint64(frames) * uint64(pixels)
	} else {
		n = (uint64(frames)*uint64(pixels) + 7) / 8
	}
	return n + n%2
}

// pixelDataHeader is the (7FE0,0010) element header in Explicit VR Little
// Endian: tag, "OB", two reserved bytes, 4-byte value length.
func pixelDataHeader(length uint32) [12]byte {
	var h [12]byte
	binary.LittleEndian.PutUint16(h[0:], 0x7FE0)
	binary.LittleEndian.PutUint16(h[2:], 0x0010)
	h[4], h[5] = 'O', 'B'
	binary.LittleEndian.PutUint32(h[8:], length)
	return h
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// writeZeros writes n zero bytes.
func writeZeros(w io.Writer, n int) error {
	for n > 0 {
		k := min(n, len(zeroPage))
		if _, err := w.Write(zeroPage[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// writePixelData writes the whole Pixel Data element (header and value) of
// the selected frames to w, streaming the frames where it can.
func writePixelData(w io.Writer, masks MaskSet, typ SegmentationType, frames []segFrame, pixels int) error {
	length := pixelDataLength(typ, len(frames), pixels)
	if length >= math.MaxUint32 { // 0xFFFFFFFF would mean undefined length
		return fmt.Errorf("pixel data of %d bytes exceeds the 4 GiB DICOM limit", length)
	}
	h := pixelDataHeader(uint32(length))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	cw := &countingWriter{w: w}
	var err error
	switch m := masks.(type) {
	case BitMasks:
		err = streamBits(cw, m, frames, pixels)
	case Masks:
		if typ == Fractional {
			err = streamBytes(cw, m, frames, pixels)
		} else {
			// Byte-per-pixel BINARY input: pack it (in parallel) first.
			_, err = cw.Write(packMasks(m, frames, pixels))
		}
	default:
		err = fmt.Errorf("unsupported mask type %T", masks)
	}
	if err != nil {
		return err
	}
	if cw.n%2 == 1 {
		if err := writeZeros(cw, 1); err != nil {
			return err
		}
	}
	if cw.n != length {
		return fmt.Errorf("internal: wrote %d bytes of pixel data, declared %d", cw.n, length)
	}
	return nil
}

// streamBytes writes FRACTIONAL frames, one byte per pixel, unpadded.
func streamBytes(w io.Writer, m Masks, frames []segFrame, pixels int) error {
	for _, sf := range frames {
		fr := m[sf.segment][sf.frame]
		if fr == nil {
			if err := writeZeros(w, pixels); err != nil {
				return err
			}
			continue
		}
		if _, err := w.Write(fr); err != nil {
			return err
		}
	}
	return nil
}

// streamBits writes bit-packed frames of pixels bits each, continuing
// across frame boundaries (the first pixel of a frame follows the last of
// the previous one), unpadded. When pixels is a multiple of 8 every frame
// starts on a byte boundary and is written as it is, without a copy;
// otherwise frames are shifted into a chunk buffer.
func streamBits(w io.Writer, m BitMasks, frames []segFrame, pixels int) error {
	if pixels%8 == 0 {
		for _, sf := range frames {
			fr := m[sf.segment][sf.frame]
			if fr == nil {
				if err := writeZeros(w, pixels/8); err != nil {
					return err
				}
				continue
			}
			if _, err := w.Write(fr[:pixels/8]); err != nil {
				return err
			}
		}
		return nil
	}
	bw := bitWriter{w: w, buf: make([]byte, 0, 64<<10)}
	for _, sf := range frames {
		bw.add(m[sf.segment][sf.frame], pixels)
	}
	return bw.flush()
}

// bitWriter appends bit strings LSB first to a chunk buffer and writes the
// buffer out whenever it is full.
type bitWriter struct {
	w    io.Writer
	buf  []byte
	acc  byte // pending low bits of the next output byte
	nacc uint // how many bits of acc are valid (0..7)
	err  error
}

// put appends one output byte built from the pending bits and b.
func (b *bitWriter) put(x byte) {
	b.buf = append(b.buf, x)
	if len(b.buf) == cap(b.buf) && b.err == nil {
		_, b.err = b.w.Write(b.buf)
		b.buf = b.buf[:0]
	}
}

// add appends the first n bits of frame (nil: n zero bits).
func (b *bitWriter) add(frame []byte, n int) {
	full, r := n/8, uint(n%8)
	s := b.nacc
	for i := 0; i < full; i++ {
		var x byte
		if frame != nil {
			x = frame[i]
		}
		if s == 0 {
			b.put(x)
		} else {
			b.put(b.acc | x<<s)
			b.acc = x >> (8 - s)
		}
	}
	if r == 0 {
		return
	}
	var t byte
	if frame != nil {
		t = frame[full] & (1<<r - 1)
	}
	// Merge r more bits into the s pending ones.
	v := uint16(b.acc) | uint16(t)<<s
	if s+r >= 8 {
		b.put(byte(v))
		b.acc = byte(v >> 8)
		b.nacc = s + r - 8
	} else {
		b.acc = byte(v)
		b.nacc = s + r
	}
}

// flush writes the pending partial byte (zero-filled) and the buffer.
func (b *bitWriter) flush() error {
	if b.nacc > 0 {
		b.buf = append(b.buf, b.acc)
		b.acc, b.nacc = 0, 0
	}
	if b.err == nil && len(b.buf) > 0 {
		_, b.err = b.w.Write(b.buf)
		b.buf = b.buf[:0]
	}
	return b.err
}
