package dicomio

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// codecCase is one entry of testdata/codecs/cases.json (written by
// testdata/gen/dicomio/gen_codecs.py): a file encoded by a real encoder,
// and the values an independent decoder returns for it.
type codecCase struct {
	File     string `json:"file"`
	Ref      string `json:"ref"`
	TS       string `json:"ts"`
	Frames   int    `json:"frames"`
	Rows     int    `json:"rows"`
	Columns  int    `json:"columns"`
	Lossless bool   `json:"lossless"`
	Source   string `json:"source"`
	// Tolerance: the largest difference from the reference allowed (lossy
	// HTJ2K: OpenJPEG's and OpenJPH's floating-point 9/7 wavelets round a
	// few samples to the neighbouring level); 0: exact.
	Tolerance float64 `json:"tolerance"`
}

func codecCases(t testing.TB) []codecCase {
	t.Helper()
	b, err := os.ReadFile(td("codecs/cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []codecCase
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// refValues reads a reference: float32 little endian values, gzipped.
func refValues(t testing.TB, name string) []float32 {
	t.Helper()
	f, err := os.Open(td("codecs/" + name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func assertSame(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: value %d = %v, want %v", name, i, got[i], want[i])
		}
	}
}

// TestCodecFixtures decodes every compressed fixture and compares it
// exactly with its reference decoder's values.
func TestCodecFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range codecCases(t) {
		seen[c.TS] = true
		t.Run(strings.TrimSuffix(c.File, ".dcm"), func(t *testing.T) {
			t.Parallel()
			s, err := LoadSeries([]string{td("codecs/" + c.File)}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if s.TransferSyntaxUID != c.TS || len(s.Frames) != c.Frames || s.Rows != c.Rows || s.Columns != c.Columns {
				t.Fatalf("got %s %d frames %d×%d, want %s %d frames %d×%d", s.TransferSyntaxUID, len(s.Frames), s.Rows, s.Columns, c.TS, c.Frames, c.Rows, c.Columns)
			}
			got, want := voxels(s), refValues(t, c.Ref)
			if c.Tolerance == 0 {
				assertSame(t, c.File, got, want)
				return
			}
			assertClose(t, c.File, got, float64s(want), c.Tolerance)
			differ := 0
			for i := range got {
				if got[i] != want[i] {
					differ++
				}
			}
			// Rounding differences are rare: most samples agree exactly.
			if differ > len(got)/20 {
				t.Errorf("%s: %d of %d values differ from the reference, want at most 5%%", c.File, differ, len(got))
			}
			t.Logf("%s: %d of %d values differ from the reference by at most %v", c.File, differ, len(got), c.Tolerance)
		})
	}
	for _, ts := range []string{JPEGBaseline8Bit, JPEGExtended12Bit, RLELossless, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless,
		JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K} {
		if !seen[ts] {
			t.Errorf("no fixture for %s (%s)", ts, TransferSyntaxName(ts))
		}
	}
}

// TestCodecCRMatchesNative: the CR example re-encoded in every lossless
// syntax loads to the same float32 frames as the native original.
func TestCodecCRMatchesNative(t *testing.T) {
	orig := filepath.Join("..", "examples", "dicom", "study-001", "series-1", "0001.dcm")
	want, err := LoadSeries([]string{orig}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range codecCases(t) {
		if c.Source != "cr" || !c.Lossless {
			continue
		}
		n++
		got, err := LoadSeries([]string{td("codecs/" + c.File)}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Monochrome1 != want.Monochrome1 || got.Rows != want.Rows {
			t.Errorf("%s: photometric/size differ from the original", c.File)
		}
		assertSame(t, c.File, voxels(got), voxels(want))
	}
	if n < 4 {
		t.Errorf("%d lossless CR fixtures, want RLE, JPEG lossless, JPEG-LS and JPEG 2000", n)
	}
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// frameBytes returns frame k of an encapsulated fixture's codestreams.
func frameBytes(t testing.TB, file string, k int) ([]byte, frameSpec) {
	t.Helper()
	b, err := os.ReadFile(td("codecs/" + file))
	if err != nil {
		t.Fatal(err)
	}
	in, err := parseInstance(file, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := scanLayout(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := encapsulatedFrames(l, in.Frames(), codecs[l.TransferSyntaxUID].starts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := readFrame(l, groups[k], new([]byte))
	if err != nil {
		t.Fatal(err)
	}
	return data, frameSpec{rows: in.Rows, cols: in.Columns, bitsAllocated: in.BitsAllocated, bitsStored: in.BitsStored, signed: in.PixelRepresentation == 1}
}

// TestCodecsRejectOtherSize: every decoder checks its codestream's size
// against the DICOM header before it decodes (and allocates): a header
// that says less than the codestream holds is an error, not an overrun.
func TestCodecsRejectOtherSize(t *testing.T) {
	for _, f := range []string{"rle_u8.dcm", "sv1_u8.dcm", "jls_u8.dcm", "j2k_u8.dcm", "jpegext_u8.dcm", "htj2k_u8.dcm",
		"rle_s16.dcm", "sv1_s16.dcm", "jls_s16.dcm", "j2k_s16.dcm", "jpegext_s16.dcm", "htj2k_s16.dcm"} {
		data, fs := frameBytes(t, f, 0)
		c := codecs[map[string]string{"rle": RLELossless, "sv1": JPEGLosslessSV1, "jls": JPEGLSLossless, "j2k": JPEG2000Lossless,
			"jpegext": JPEGExtended12Bit, "htj2k": HTJ2KLossless}[strings.Split(f, "_")[0]]]
		raw := make([]uint32, fs.rows*fs.cols)
		if _, err := c.decode(data, fs, raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		small := fs
		small.rows--
		if _, err := c.decode(data, small, raw[:small.rows*small.cols]); err == nil && !strings.HasPrefix(f, "rle") {
			t.Errorf("%s: a frame of %d rows decoded as %d rows", f, fs.rows, small.rows)
		}
		narrow := fs
		narrow.bitsAllocated = 8
		if fs.bitsAllocated == 16 {
			if _, err := c.decode(data, narrow, raw); err == nil {
				t.Errorf("%s: 16-bit frame decoded as 8-bit", f)
			}
		}
		// A truncated codestream fails cleanly.
		for _, n := range []int{0, 1, 10, len(data) / 2} {
			_, _ = c.decode(data[:n], fs, raw)
		}
	}
}

// TestEncapsulatedFramesErrors: broken offset tables and fragment counts
// are errors naming what is wrong.
func TestEncapsulatedFramesErrors(t *testing.T) {
	b, err := os.ReadFile(td("codecs/rle_ctmf_nobot.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := scanLayout(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encapsulatedFrames(l, 2, nil); err == nil || !strings.Contains(err.Error(), "fragments for 2 frames") {
		t.Errorf("3 fragments read as 2 RLE frames: %v", err)
	}
	b, err = os.ReadFile(td("codecs/jls_ctmf_eot.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	l, err = scanLayout(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if l.eotLen != 24 || l.eotlLen != 24 {
		t.Fatalf("extended offset table not found: %d, %d bytes", l.eotLen, l.eotlLen)
	}
	if _, err := encapsulatedFrames(l, 4, jpegStart); err == nil || !strings.Contains(err.Error(), "extended offset table") {
		t.Errorf("extended offset table of 3 frames read for 4: %v", err)
	}
}

// TestHuffmanTableOverfull: a DHT with more codes of a length than fit is
// refused before the lookup table is filled (found by fuzzing).
func TestHuffmanTableOverfull(t *testing.T) {
	var h huffTable
	if err := h.build([16]int{3}, []byte{0, 1, 2}); err == nil {
		t.Error("three 1-bit codes accepted")
	}
	if err := h.build([16]int{1, 3}, []byte{0, 1, 2, 3}); err == nil {
		t.Error("a 1-bit code and three 2-bit codes accepted")
	}
	if err := h.build([16]int{2}, []byte{0, 1}); err != nil {
		t.Errorf("two 1-bit codes: %v", err)
	}
}

// TestJPEG2000AssertionIsAnError: a corrupt HT code-block on which
// OpenJPEG 2.5.0 fails an assert() (mel_init, found by fuzzing: two bytes
// of htj2k_ctmf's first codestream set to FF) fails the frame with an
// error; the process goes on, and decodes the intact codestream after it.
func TestJPEG2000AssertionIsAnError(t *testing.T) {
	data, fs := frameBytes(t, "htj2k_ctmf.dcm", 0)
	bad := bytes.Clone(data)
	bad[276], bad[277] = 0xFF, 0xFF
	raw := make([]uint32, fs.rows*fs.cols)
	for i := 0; i < 3; i++ {
		if _, err := decodeJPEG2000(bad, fs, raw); err == nil || !strings.Contains(err.Error(), "aborted") {
			t.Fatalf("corrupt HT code-block: %v, want OpenJPEG's abort as an error", err)
		}
	}
	if _, err := decodeJPEG2000(data, fs, raw); err != nil {
		t.Fatalf("the intact codestream after an abort: %v", err)
	}
}

// TestJPEGDCTRejectsOtherProcesses: the DCT decoder takes sequential
// Huffman frames of 8 or 12 bits only, and says what it found otherwise:
// the 12-bit extended fixture's frame header changed to progressive
// (SOF2), to baseline (SOF0, which is 8-bit only), and to 16 bits.
func TestJPEGDCTRejectsOtherProcesses(t *testing.T) {
	data, fs := frameBytes(t, "jpegext_s16.dcm", 0)
	sof := bytes.Index(data, []byte{0xFF, mSOF1})
	if sof < 0 {
		t.Fatal("no SOF1 in the 12-bit extended fixture")
	}
	raw := make([]uint32, fs.rows*fs.cols)
	if _, err := decodeJPEGDCT(data, fs, raw); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   int
		to   byte
		want string
	}{
		{sof + 1, mSOF2, "SOF2"},
		{sof + 1, mSOF0, "precision 12"},
		{sof + 4, 16, "precision 16"},
	} {
		b := bytes.Clone(data)
		b[tc.at] = tc.to
		if _, err := decodeJPEGDCT(b, fs, raw); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("byte %d set to 0x%02X: %v, want an error about %s", tc.at, tc.to, err, tc.want)
		}
	}
}
