package dicomio

/*
#cgo pkg-config: charls
#include <stdlib.h>
#include <charls/charls.h>

// tm_jls_decode decodes a greyscale JPEG-LS codestream into dst after
// checking, from its header, that it is cols × rows, one component, at most
// max_bits bits, and that dst (dst_size bytes) holds it. It returns a CharLS
// error code, or -1 when the header does not match (info then says what it
// holds: width, height, bits per sample, components).
static int tm_jls_decode(const void *src, size_t src_size, uint32_t rows, uint32_t cols,
                         int32_t max_bits, void *dst, size_t dst_size, int32_t info[4]) {
	charls_jpegls_decoder *d = charls_jpegls_decoder_create();
	if (d == NULL) {
		return (int)CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY;
	}
	charls_jpegls_errc e = charls_jpegls_decoder_set_source_buffer(d, src, src_size);
	if (e == CHARLS_JPEGLS_ERRC_SUCCESS) {
		e = charls_jpegls_decoder_read_header(d);
	}
	charls_frame_info fi = {0};
	if (e == CHARLS_JPEGLS_ERRC_SUCCESS) {
		e = charls_jpegls_decoder_get_frame_info(d, &fi);
	}
	if (e != CHARLS_JPEGLS_ERRC_SUCCESS) {
		charls_jpegls_decoder_destroy(d);
		return (int)e;
	}
	info[0] = (int32_t)fi.width;
	info[1] = (int32_t)fi.height;
	info[2] = fi.bits_per_sample;
	info[3] = fi.component_count;
	size_t need = (size_t)cols * rows * (fi.bits_per_sample > 8 ? 2 : 1);
	if (fi.width != cols || fi.height != rows || fi.component_count != 1 ||
	    fi.bits_per_sample < 2 || fi.bits_per_sample > max_bits || need > dst_size) {
		charls_jpegls_decoder_destroy(d);
		return -1;
	}
	e = charls_jpegls_decoder_decode_to_buffer(d, dst, need, 0);
	charls_jpegls_decoder_destroy(d);
	return (int)e;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// endsWithEOI reports whether data ends with the EOI marker (FF D9),
// allowing for up to two bytes of padding after it.
func endsWithEOI(data []byte) bool {
	for pad := 0; pad <= 2 && len(data)-pad >= 2; pad++ {
		if data[len(data)-pad-2] == 0xFF && data[len(data)-pad-1] == 0xD9 {
			return true
		}
	}
	return false
}

// decodeJPEGLS decodes one greyscale JPEG-LS frame (lossless or
// near-lossless) with CharLS.
// jlsBuffers recycles CharLS's output buffers between frames, so that a
// series does not leave one frame's worth of garbage per frame.
var jlsBuffers sync.Pool

// jlsBuffer returns a recycled buffer of n bytes, or a new one.
func jlsBuffer(n int) *[]byte {
	if p, ok := jlsBuffers.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

func decodeJPEGLS(data []byte, fs frameSpec, raw []uint32) (bool, error) {
	if len(data) == 0 {
		return false, errors.New("JPEG-LS: empty codestream")
	}
	// CharLS can spend seconds on a codestream cut short (it decodes
	// runs of the missing data): a frame must end with EOI, followed at
	// most by the padding an even-length fragment needs.
	if !endsWithEOI(data) {
		return false, errors.New("JPEG-LS: codestream does not end with an EOI marker (truncated)")
	}
	npix := fs.rows * fs.cols
	maxBits := min(fs.bitsAllocated, 16)
	bpp := 1
	if maxBits > 8 {
		bpp = 2
	}
	// Sized by the DICOM header (already within the limits); CharLS
	// writes into it only after its header matched that size. The buffer
	// is recycled: the samples are copied out right below.
	bp := jlsBuffer(npix * bpp)
	defer jlsBuffers.Put(bp)
	buf := *bp
	var info [4]C.int32_t
	rc := C.tm_jls_decode(unsafe.Pointer(&data[0]), C.size_t(len(data)), C.uint32_t(fs.rows), C.uint32_t(fs.cols),
		C.int32_t(maxBits), unsafe.Pointer(&buf[0]), C.size_t(len(buf)), &info[0])
	switch {
	case rc == -1:
		return false, fmt.Errorf("JPEG-LS: codestream is %d×%d, %d bits, %d components; the header says %d×%d, one component, at most %d bits",
			info[0], info[1], info[2], info[3], fs.cols, fs.rows, maxBits)
	case rc != 0:
		return false, fmt.Errorf("JPEG-LS: CharLS error %d: %s", int(rc), C.GoString(C.charls_get_error_message(C.charls_jpegls_errc(rc))))
	}
	if info[2] > 8 { // CharLS writes 16-bit samples in native byte order
		for i := range raw {
			raw[i] = uint32(binary.NativeEndian.Uint16(buf[2*i:]))
		}
	} else {
		for i := range raw {
			raw[i] = uint32(buf[i])
		}
	}
	return false, nil
}
