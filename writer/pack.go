package writer

import (
	"encoding/binary"
	"math/bits"
)

// bitPacker packs BINARY frames 8 pixels per byte, first pixel in the least
// significant bit (PS3.5 §8.1.1), continuing across frame boundaries: a
// frame whose pixel count is not a multiple of 8 shares its last byte with
// the next frame.
type bitPacker struct {
	out  []byte
	nbit int // total pixels packed so far
}

func newBitPacker(totalPixels int) *bitPacker {
	n := (totalPixels + 7) / 8
	n += n % 2 // even length for the Pixel Data value
	return &bitPacker{out: make([]byte, 0, n)}
}

// nonzeroBits maps each byte of x to 1 when it is nonzero, 0 otherwise.
func nonzeroBits(x uint64) uint64 {
	const lo7 = 0x7f7f7f7f7f7f7f7f
	return ((((x & lo7) + lo7) | x) >> 7) & 0x0101010101010101
}

// pack8 packs 8 mask bytes (any nonzero value is 1) into one byte, LSB first.
func pack8(b []byte) byte {
	// Each byte k holds 0/1 at bit 8k; the multiplication gathers bit 8k into
	// bit 56+k without carries (the partial products land on distinct bits).
	return byte((nonzeroBits(binary.LittleEndian.Uint64(b)) * 0x0102040810204080) >> 56)
}

const ones8 = 0x0101010101010101

// packAligned packs len(dst)*8 mask bytes from src into the zeroed dst.
// Masks are mostly background with solid regions, so runs of 64 zero
// pixels are skipped and words of 0x01 bytes become 0xFF without the
// multiplication.
func packAligned(dst, src []byte) {
	j := 0
	for ; j+8 <= len(dst); j += 8 {
		s := src[j*8 : j*8+64]
		var or uint64
		for k := 0; k < 64; k += 8 {
			or |= binary.LittleEndian.Uint64(s[k:])
		}
		if or == 0 {
			continue
		}
		for k := 0; k < 8; k++ {
			x := binary.LittleEndian.Uint64(s[k*8:])
			switch x {
			case 0:
			case ones8:
				dst[j+k] = 0xFF
			default:
				dst[j+k] = byte((nonzeroBits(x) * 0x0102040810204080) >> 56)
			}
		}
	}
	for ; j < len(dst); j++ {
		dst[j] = pack8(src[j*8 : j*8+8])
	}
}

// PackFrame packs one byte-per-pixel mask into dst in the BINARY layout of
// BitMasks (8 pixels per byte, first pixel in the least significant bit;
// any nonzero byte is a set pixel) and returns the number of set pixels.
// dst must hold PackedLen(len(mask)) bytes (it panics otherwise); every one
// of them is overwritten, and the unused high bits of a last partial byte
// are zero.
func PackFrame(dst []byte, mask []uint8) int {
	n := len(mask)
	if n == 0 {
		return 0
	}
	nb := n / 8
	_ = dst[PackedLen(n)-1]
	set := 0
	j := 0
	for ; j+8 <= nb; j += 8 {
		s := mask[j*8 : j*8+64]
		var or uint64
		for k := 0; k < 64; k += 8 {
			or |= binary.LittleEndian.Uint64(s[k:])
		}
		var w uint64
		if or != 0 {
			for k := 0; k < 8; k++ {
				x := binary.LittleEndian.Uint64(s[k*8:])
				w |= ((nonzeroBits(x) * 0x0102040810204080) >> 56) << (8 * k)
			}
			set += bits.OnesCount64(w)
		}
		binary.LittleEndian.PutUint64(dst[j:], w)
	}
	for ; j < nb; j++ {
		b := pack8(mask[j*8 : j*8+8])
		dst[j] = b
		set += bits.OnesCount8(b)
	}
	if r := n % 8; r != 0 {
		var b byte
		for i, v := range mask[nb*8:] {
			if v != 0 {
				b |= 1 << i
			}
		}
		dst[nb] = b
		set += bits.OnesCount8(b)
	}
	return set
}

// ThresholdPack thresholds one frame of probabilities straight into dst in
// the BINARY layout of BitMasks: pixel i is set when prob[i] >= threshold
// (NaN is never set), as segment.ProbToMask thresholds. It returns the
// number of set pixels. dst must hold PackedLen(len(prob)) bytes (it panics
// otherwise); every one of them is overwritten, and the unused high bits of
// a last partial byte are zero.
func ThresholdPack(dst []byte, prob []float32, threshold float32) int {
	n := len(prob)
	if n == 0 {
		return 0
	}
	_ = dst[PackedLen(n)-1]
	set := 0
	for j := 0; j < n; j += 8 {
		p := prob[j:min(j+8, n)]
		var b byte
		for k, v := range p {
			if v >= threshold {
				b |= 1 << k
			}
		}
		dst[j/8] = b
		set += bits.OnesCount8(b)
	}
	return set
}

// add appends one frame's pixels; a nil frame is all zero, n pixels long.
func (p *bitPacker) add(frame []byte, n int) {
	off := p.nbit & 7
	i := 0
	if off != 0 { // finish the partly filled byte first
		last := len(p.out) - 1
		for ; i < n && (p.nbit&7) != 0; i++ {
			if frame != nil && frame[i] != 0 {
				p.out[last] |= 1 << (p.nbit & 7)
			}
			p.nbit++
		}
	}
	// Now byte aligned: whole bytes, 8 pixels at a time.
	full := (n - i) / 8
	if frame == nil {
		p.out = append(p.out, make([]byte, full)...)
	} else {
		start := len(p.out)
		p.out = append(p.out, make([]byte, full)...)
		packAligned(p.out[start:], frame[i:i+full*8])
	}
	i += full * 8
	p.nbit += full * 8
	if i < n { // tail: start a new, partly filled byte
		var b byte
		for k := 0; i < n; i, k = i+1, k+1 {
			if frame != nil && frame[i] != 0 {
				b |= 1 << k
			}
			p.nbit++
		}
		p.out = append(p.out, b)
	}
}

// bytes returns the packed data, padded with a zero byte to even length.
func (p *bitPacker) bytes() []byte {
	if len(p.out)%2 == 1 {
		p.out = append(p.out, 0)
	}
	return p.out
}

// UnpackBits unpacks frames frames of n pixels each from BINARY Pixel Data
// (LSB first, packed across frame boundaries) into one byte per pixel (0/1).
// It returns nil when data is too short.
func UnpackBits(data []byte, frames, n int) [][]byte {
	if frames < 0 || n < 0 || len(data)*8 < frames*n {
		return nil
	}
	out := make([][]byte, frames)
	bit := 0
	for f := range out {
		fr := make([]byte, n)
		for i := range fr {
			fr[i] = (data[bit>>3] >> (bit & 7)) & 1
			bit++
		}
		out[f] = fr
	}
	return out
}
