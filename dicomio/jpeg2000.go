package dicomio

/*
#cgo pkg-config: libopenjp2
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <openjpeg.h>

// OpenJPEG 2.5.0's HTJ2K block decoder (ht_dec.c) checks codestream data
// with assert(), which aborts the process on a corrupt code-block (fixed
// upstream in 2.5.1 for mel_init; Debian 12 ships 2.5.0 built with
// asserts). While a thread decodes, tm_abort_jmp points to where it
// started, and the SIGABRT handler jumps back there: the frame fails with
// an error instead of the daemon dying. What OpenJPEG had allocated for
// that frame is left allocated (its state is not safe to free). A SIGABRT
// on any other thread, or outside a decode, goes to the handler this one
// replaced (Go's).
static __thread sigjmp_buf *tm_abort_jmp;
static struct sigaction tm_prev_abrt;
static pthread_once_t tm_abrt_once = PTHREAD_ONCE_INIT;

static void tm_on_abort(int sig, siginfo_t *info, void *uctx) {
	sigjmp_buf *j = tm_abort_jmp;
	if (j != NULL) {
		tm_abort_jmp = NULL;
		siglongjmp(*j, 1);
	}
	if (tm_prev_abrt.sa_flags & SA_SIGINFO) {
		tm_prev_abrt.sa_sigaction(sig, info, uctx);
	} else if (tm_prev_abrt.sa_handler != SIG_DFL && tm_prev_abrt.sa_handler != SIG_IGN) {
		tm_prev_abrt.sa_handler(sig);
	} else {
		signal(SIGABRT, SIG_DFL);
		raise(SIGABRT);
	}
}

static void tm_install_abrt(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = tm_on_abort;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigaction(SIGABRT, &sa, &tm_prev_abrt);
}

// tm_mem is a codestream in memory, read through an OpenJPEG stream.
typedef struct {
	const OPJ_BYTE *data;
	OPJ_SIZE_T size, pos;
	char msg[256]; // OpenJPEG's last error message
} tm_mem;

static OPJ_SIZE_T tm_read(void *buf, OPJ_SIZE_T n, void *user) {
	tm_mem *m = user;
	if (m->pos >= m->size) {
		return (OPJ_SIZE_T)-1;
	}
	if (n > m->size - m->pos) {
		n = m->size - m->pos;
	}
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return n;
}

static OPJ_OFF_T tm_skip(OPJ_OFF_T n, void *user) {
	tm_mem *m = user;
	if (n < 0) {
		if ((OPJ_SIZE_T)(-n) > m->pos) {
			n = -(OPJ_OFF_T)m->pos;
		}
	} else if ((OPJ_SIZE_T)n > m->size - m->pos) {
		n = (OPJ_OFF_T)(m->size - m->pos);
	}
	m->pos += n;
	return n;
}

static OPJ_BOOL tm_seek(OPJ_OFF_T n, void *user) {
	tm_mem *m = user;
	if (n < 0 || (OPJ_SIZE_T)n > m->size) {
		return OPJ_FALSE;
	}
	m->pos = (OPJ_SIZE_T)n;
	return OPJ_TRUE;
}

static void tm_error(const char *msg, void *user) {
	tm_mem *m = user;
	strncpy(m->msg, msg, sizeof m->msg - 1);
	m->msg[sizeof m->msg - 1] = 0;
	size_t l = strlen(m->msg);
	if (l > 0 && m->msg[l - 1] == '\n') {
		m->msg[l - 1] = 0;
	}
}

static void tm_quiet(const char *msg, void *user) { (void)msg; (void)user; }

// tm_j2k_decode_guarded decodes a greyscale JPEG 2000 codestream (J2K, or a JP2
// file when jp2) into dst (rows × cols values) after checking, from its
// header, that it is cols × rows, one component, at most max_bits bits, and
// not split into more than max_tiles tiles. It returns 0 on success, -1
// when the header does not match (info: width, height, components,
// precision, signedness, tiles), or -2 when OpenJPEG fails (m.msg says why).
static int tm_j2k_decode_guarded(tm_mem *m, int jp2, uint32_t rows, uint32_t cols, int max_bits,
                                 uint32_t max_tiles, int32_t *dst, int32_t info[6]) {
	opj_codec_t *codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
	if (codec == NULL) {
		strcpy(m->msg, "cannot create a decoder");
		return -2;
	}
	opj_set_error_handler(codec, tm_error, m);
	opj_set_warning_handler(codec, tm_quiet, m);
	opj_set_info_handler(codec, tm_quiet, m);
	opj_dparameters_t p;
	opj_set_default_decoder_parameters(&p);
	opj_stream_t *s = opj_stream_create(1 << 16, OPJ_TRUE);
	opj_image_t *img = NULL;
	int rc = -2;
	if (s == NULL || !opj_setup_decoder(codec, &p)) {
		strcpy(m->msg, "cannot set up the decoder");
		goto done;
	}
	opj_stream_set_user_data(s, m, NULL);
	opj_stream_set_user_data_length(s, m->size);
	opj_stream_set_read_function(s, tm_read);
	opj_stream_set_skip_function(s, tm_skip);
	opj_stream_set_seek_function(s, tm_seek);
	if (!opj_read_header(s, codec, &img)) {
		goto done;
	}
	opj_codestream_info_v2_t *ci = opj_get_cstr_info(codec);
	uint32_t tiles = ci ? ci->tw * ci->th : 0;
	if (ci) {
		opj_destroy_cstr_info(&ci);
	}
	info[0] = (int32_t)(img->x1 - img->x0);
	info[1] = (int32_t)(img->y1 - img->y0);
	info[2] = (int32_t)img->numcomps;
	info[3] = img->numcomps > 0 ? (int32_t)img->comps[0].prec : 0;
	info[4] = img->numcomps > 0 ? (int32_t)img->comps[0].sgnd : 0;
	info[5] = (int32_t)tiles;
	if (img->x1 - img->x0 != cols || img->y1 - img->y0 != rows || img->numcomps != 1 ||
	    img->comps[0].dx != 1 || img->comps[0].dy != 1 || img->comps[0].prec < 1 ||
	    (int)img->comps[0].prec > max_bits || tiles == 0 || tiles > max_tiles) {
		rc = -1;
		goto done;
	}
	if (!opj_decode(codec, s, img) || !opj_end_decompress(codec, s)) {
		goto done;
	}
	if (img->comps[0].data == NULL || img->comps[0].w != cols || img->comps[0].h != rows) {
		strcpy(m->msg, "decoded component does not have the image's size");
		goto done;
	}
	memcpy(dst, img->comps[0].data, (size_t)rows * cols * sizeof(int32_t));
	rc = 0;
done:
	if (img) {
		opj_image_destroy(img);
	}
	if (s) {
		opj_stream_destroy(s);
	}
	opj_destroy_codec(codec);
	return rc;
}

// tm_j2k_decode is tm_j2k_decode_guarded on the codestream src (size
// bytes) with OpenJPEG's aborts turned into errors (-2, m.msg says so).
// m points to src only during the call (src is Go memory).
static int tm_j2k_decode(tm_mem *m, const OPJ_BYTE *src, OPJ_SIZE_T size, int jp2, uint32_t rows,
                         uint32_t cols, int max_bits, uint32_t max_tiles, int32_t *dst, int32_t info[6]) {
	pthread_once(&tm_abrt_once, tm_install_abrt);
	m->data = src;
	m->size = size;
	m->pos = 0;
	sigjmp_buf jb;
	if (sigsetjmp(jb, 1) != 0) {
		m->data = NULL;
		strcpy(m->msg, "aborted on a corrupt code-block (assertion in OpenJPEG)");
		return -2;
	}
	tm_abort_jmp = &jb;
	int rc = tm_j2k_decode_guarded(m, jp2, rows, cols, max_bits, max_tiles, dst, info);
	tm_abort_jmp = NULL;
	m->data = NULL;
	return rc;
}
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"
)

// maxJ2KTiles bounds the tiles of a JPEG 2000 frame: OpenJPEG allocates
// per tile before decoding, and DICOM encoders write one or a few.
const maxJ2KTiles = 4096

// jp2Signature starts a JP2 file (a JPEG 2000 codestream in boxes), which
// some encoders put in DICOM instead of the bare codestream.
var jp2Signature = []byte{0, 0, 0, 0x0C, 'j', 'P', ' ', ' '}

// decodeJPEG2000 decodes one greyscale JPEG 2000 frame (lossless or lossy)
// with OpenJPEG, read from memory.
func decodeJPEG2000(data []byte, fs frameSpec, raw []uint32) (bool, error) {
	if len(data) == 0 {
		return false, errors.New("JPEG 2000: empty codestream")
	}
	jp2 := 0
	if bytes.HasPrefix(data, jp2Signature) {
		jp2 = 1
	}
	maxBits := min(fs.bitsAllocated, 31)
	// The stream's user data is C memory; it points to the codestream (Go
	// memory, pinned for the call) only while tm_j2k_decode runs, as cgo
	// allows, so the codestream is not copied.
	m := (*C.tm_mem)(C.calloc(1, C.size_t(unsafe.Sizeof(C.tm_mem{}))))
	if m == nil {
		return false, errors.New("JPEG 2000: out of memory")
	}
	defer C.free(unsafe.Pointer(m))
	var info [6]C.int32_t
	rc := C.tm_j2k_decode(m, (*C.OPJ_BYTE)(unsafe.Pointer(&data[0])), C.OPJ_SIZE_T(len(data)), C.int(jp2),
		C.uint32_t(fs.rows), C.uint32_t(fs.cols), C.int(maxBits), C.uint32_t(maxJ2KTiles),
		(*C.int32_t)(unsafe.Pointer(&raw[0])), &info[0])
	switch rc {
	case 0:
		// OpenJPEG returns the values in the codestream's precision and
		// sign, which may exceed BitsStored (lossy overshoot): they are
		// taken as they are, like other DICOM readers do. Only unsigned
		// samples of signed pixel data (an encoder's common choice) are
		// bit patterns to sign-extend at BitsStored.
		return info[4] != 0 || !fs.signed, nil
	case -1:
		return false, fmt.Errorf("JPEG 2000: codestream is %d×%d, %d components of %d bits (signed %d), %d tiles; the header says %d×%d, one component, at most %d bits (and at most %d tiles)",
			info[0], info[1], info[2], info[3], info[4], info[5], fs.cols, fs.rows, maxBits, maxJ2KTiles)
	}
	msg := C.GoString(&m.msg[0])
	if msg == "" {
		msg = "decoding failed"
	}
	return false, fmt.Errorf("JPEG 2000: OpenJPEG: %s", msg)
}
