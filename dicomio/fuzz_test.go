package dicomio

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// FuzzReadHeader feeds arbitrary bytes to the header path (scan, library
// parse, extraction). It must never panic and every error must name the file.
// The seed corpus is in testdata/fuzz/FuzzReadHeader (regenerate with
// testdata/gen/dicomio/fuzzseed).
func FuzzReadHeader(f *testing.F) {
	for _, p := range []string{"ts/explicit.dcm", "ts/implicit.dcm", "ts/deflated.dcm", "enhanced/ct_enhanced.dcm"} {
		b, err := os.ReadFile(td(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseInstance("fuzz.dcm", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.dcm") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		_ = in.Header.Frames()
	})
}

// TestReadHeaderCorpus runs ReadHeader (through a real file) on every
// committed fuzz seed.
func TestReadHeaderCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzReadHeader", "*"))
	if len(files) == 0 {
		t.Fatal("no committed seed corpus in testdata/fuzz/FuzzReadHeader")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data, ok := decodeCorpusEntry(b)
		if !ok {
			t.Fatalf("%s: not a go fuzz v1 []byte entry", f)
		}
		p := filepath.Join(t.TempDir(), "seed.dcm")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadHeader(p); err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not name the file: %v", f, err)
		}
	}
}

// FuzzDecodePixels runs the whole single-file load path (header, checks,
// limits, pixel decoding) on arbitrary bytes, with small limits.
func FuzzDecodePixels(f *testing.F) {
	for _, p := range []string{"ts/explicit.dcm", "ts/bigendian.dcm", "ts/jpeg_baseline.dcm", "pixel/padding_signed.dcm", "enhanced/ct_enhanced.dcm",
		"codecs/rle_u8.dcm", "codecs/sv1_s16.dcm", "codecs/jls_u8.dcm", "codecs/j2k_s16.dcm", "codecs/jls_ctmf_eot.dcm",
		"codecs/jpegext_s16.dcm", "codecs/jpegbl_u8.dcm", "codecs/htj2k_u8.dcm", "codecs/htj2k_s16.dcm"} {
		b, err := os.ReadFile(td(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := Limits{MaxRows: 64, MaxColumns: 64, MaxFrames: 16, MaxBytes: 1 << 20}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseInstance("fuzz.dcm", bytes.NewReader(data), int64(len(data)))
		if err != nil || checkDecodable(in) != nil || lim.checkImage(in.Header) != nil {
			return
		}
		npix := in.Rows * in.Columns
		dst := make([][]float32, in.Frames())
		for i := range dst {
			dst[i] = make([]float32, npix)
		}
		_, err = decodeFrom(in, bytes.NewReader(data), int64(len(data)), dst, nil)
		if err != nil && !strings.Contains(err.Error(), "fuzz.dcm") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// fuzzFrameSpec is the frame format of the codec fuzz targets' seeds
// (testdata/gen/dicomio/gen_codecs.py writes them): 32×24, 8-bit unsigned
// or 16-bit signed.
func fuzzFrameSpec(u8 bool) frameSpec {
	if u8 {
		return frameSpec{rows: 24, cols: 32, bitsAllocated: 8, bitsStored: 8}
	}
	return frameSpec{rows: 24, cols: 32, bitsAllocated: 16, bitsStored: 16, signed: true}
}

// fuzzCodec runs a frame codec on arbitrary bytes: it must not panic, and
// its Go allocations stay within a small multiple of the frame the DICOM
// header declares and of the codestream (a forged codestream header must
// not make it allocate what it declares).
func fuzzCodec(f *testing.F, decode frameCodec) {
	f.Fuzz(func(t *testing.T, data []byte, u8 bool) {
		fs := fuzzFrameSpec(u8)
		raw := make([]uint32, fs.rows*fs.cols)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _ = decode(data, fs, raw)
		runtime.ReadMemStats(&after)
		if n, lim := after.TotalAlloc-before.TotalAlloc, uint64(4*len(data)+16*len(raw)+1<<20); n > lim {
			t.Fatalf("decoding %d bytes for a %d×%d frame allocated %d bytes (bound %d)", len(data), fs.cols, fs.rows, n, lim)
		}
	})
}

// FuzzDecodeRLE fuzzes the RLE Lossless decoder. Seeds: testdata/fuzz/FuzzDecodeRLE.
func FuzzDecodeRLE(f *testing.F) { fuzzCodec(f, decodeRLE) }

// FuzzDecodeJPEGLossless fuzzes the JPEG lossless (process 14) decoder.
// Seeds: testdata/fuzz/FuzzDecodeJPEGLossless.
func FuzzDecodeJPEGLossless(f *testing.F) { fuzzCodec(f, decodeJPEGLossless) }

// FuzzDecodeJPEGLS fuzzes the JPEG-LS decoder (CharLS). Seeds:
// testdata/fuzz/FuzzDecodeJPEGLS.
func FuzzDecodeJPEGLS(f *testing.F) { fuzzCodec(f, decodeJPEGLS) }

// FuzzDecodeJPEG2000 fuzzes the JPEG 2000 decoder (OpenJPEG). Seeds:
// testdata/fuzz/FuzzDecodeJPEG2000.
func FuzzDecodeJPEG2000(f *testing.F) { fuzzCodec(f, decodeJPEG2000) }

// FuzzDecodeJPEGDCT fuzzes the sequential DCT JPEG decoder (baseline and
// extended, 8 and 12 bits). Seeds: testdata/fuzz/FuzzDecodeJPEGDCT.
func FuzzDecodeJPEGDCT(f *testing.F) { fuzzCodec(f, decodeJPEGDCT) }

// FuzzDecodeHTJ2K fuzzes the JPEG 2000 decoder (OpenJPEG) with
// High-Throughput codestreams (OpenJPH's). Seeds:
// testdata/fuzz/FuzzDecodeHTJ2K.
func FuzzDecodeHTJ2K(f *testing.F) { fuzzCodec(f, decodeJPEG2000) }

// FuzzLoadFrameRanges runs the ranged pixel path of multi-frame files
// (native and encapsulated: frameRangeLayout, the shared frame index,
// decodeFrameRange) on arbitrary bytes written to a file, one frame per
// range, with small limits: it must not panic, every error must name the
// file, and the Go allocations stay within a small multiple of the file
// and of the frames the limits admit.
func FuzzLoadFrameRanges(f *testing.F) {
	for _, p := range []string{"enhanced/ct_enhanced.dcm", "codecs/jls_ctmf_eot.dcm", "codecs/sv1_ctmf_split_nobot.dcm", "codecs/j2k_ctmf_nobot.dcm",
		"codecs/htj2k_ctmf_split_bot.dcm", "codecs/jpegext_ctmf12u_eot.dcm", "codecs/rle_ctmf_nobot.dcm", "codecs/jpegext_u8.dcm", "codecs/htj2k_s16.dcm"} {
		b, err := os.ReadFile(td(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := Limits{MaxRows: 128, MaxColumns: 128, MaxFrames: 16, MaxBytes: 1 << 20}.withDefaults()
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.dcm")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		in, err := readInstance(p)
		if err != nil || checkDecodable(in) != nil || lim.checkImage(in.Header) != nil {
			return
		}
		in.layout = frameRangeLayout(in)
		if in.layout == nil {
			return
		}
		npix := in.Rows * in.Columns
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		dst := make([]float32, npix)
		sc := &scratch{}
		for k := 0; k < in.Frames(); k++ {
			if _, err := decodeFrameRange(in, k, [][]float32{dst}, sc); err != nil {
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("error does not name the file: %v", err)
				}
				break
			}
		}
		runtime.ReadMemStats(&after)
		if n, bound := after.TotalAlloc-before.TotalAlloc, uint64(8*len(data)+32*npix*in.Frames()+1<<20); n > bound {
			t.Fatalf("decoding %d frames of %d×%d from %d bytes allocated %d bytes (bound %d)", in.Frames(), in.Columns, in.Rows, len(data), n, bound)
		}
	})
}
