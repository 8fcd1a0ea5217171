package dicomio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadSingleFilesAgainstPydicom(t *testing.T) {
	exp := loadExpected(t)
	for _, tc := range []struct {
		file string
		tol  float64
	}{
		{"ts/implicit.dcm", 0},
		{"ts/explicit.dcm", 0},
		{"ts/bigendian.dcm", 0},
		{"ts/deflated.dcm", 0},
		{"ts/jpeg_baseline.dcm", 0}, // lossy: the IJG islow IDCT, as libjpeg(-turbo) decodes it for pydicom
		{"ts/jpeg_extended8.dcm", 0},
		{"pixel/signed12_garbage.dcm", 0},
		{"pixel/signed16_rescale.dcm", 0},
		{"pixel/unsigned16_rescale.dcm", 0},
		{"pixel/cr_monochrome1.dcm", 0},
		{"pixel/padding_signed.dcm", 0},
		{"pixel/padding_range.dcm", 0},
		{"pixel/signed32.dcm", 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, ok := exp[tc.file]
			if !ok {
				t.Fatalf("no expected values for %s", tc.file)
			}
			s, err := LoadSeries([]string{td(tc.file)}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != want.Rows || s.Columns != want.Columns || len(s.Frames) != want.Frames {
				t.Fatalf("size %d×%d×%d, want %d×%d×%d", s.Rows, s.Columns, len(s.Frames), want.Rows, want.Columns, want.Frames)
			}
			assertClose(t, tc.file, voxels(s), want.Values, tc.tol)
		})
	}
}

func TestLoadMonochrome1AndPadding(t *testing.T) {
	s, err := LoadSeries([]string{td("pixel/cr_monochrome1.dcm")}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Monochrome1 || s.Photometric != "MONOCHROME1" || s.HasGeometry || s.Modality != "CR" {
		t.Errorf("CR: mono1=%v photometric=%q geometry=%v modality=%q", s.Monochrome1, s.Photometric, s.HasGeometry, s.Modality)
	}
	if s.PixelSpacing != [2]float64{0.15, 0.15} {
		t.Errorf("CR spacing from ImagerPixelSpacing: %v", s.PixelSpacing)
	}
	if !slices.Equal(s.PatientOrientation, []string{"P", "F"}) {
		t.Errorf("CR PatientOrientation %q, want [P F]", s.PatientOrientation)
	}
	if s.PatientName != "Müller^Hans" || s.Frames[0].SOPClassUID != "1.2.840.10008.5.1.4.1.1.1" {
		t.Errorf("patient/study or SOP class not copied: %q %q", s.PatientName, s.Frames[0].SOPClassUID)
	}
	p, err := LoadSeries([]string{td("pixel/padding_signed.dcm")}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if p.PaddedPixels != 8 {
		t.Errorf("PaddedPixels = %d, want 8", p.PaddedPixels)
	}
}

func TestLoadRejectsUnsupportedTransferSyntax(t *testing.T) {
	// A JPEG 2000 file relabelled as Part 2 multi-component, a syntax no
	// decoder here reads (the UIDs have the same length).
	b, err := os.ReadFile(td("ts/jpeg2000.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte("1.2.840.10008.1.2.4.90"), []byte("1.2.840.10008.1.2.4.92"))
	p := filepath.Join(t.TempDir(), "part2.dcm")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSeries([]string{p}, Limits{})
	var ue *UnsupportedTransferSyntaxError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want UnsupportedTransferSyntaxError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "unsupported transfer syntax 1.2.840.10008.1.2.4.92 (JPEG 2000 Part 2") || !strings.Contains(msg, p) {
		t.Errorf("message %q", msg)
	}
	// A broken JPEG 2000 codestream: an error naming the file, the frame,
	// the transfer syntax and the decoder.
	_, err = LoadSeries([]string{td("ts/jpeg2000.dcm")}, Limits{})
	if err == nil || !strings.Contains(err.Error(), td("ts/jpeg2000.dcm")) || !strings.Contains(err.Error(), "frame 1") ||
		!strings.Contains(err.Error(), "1.2.840.10008.1.2.4.90") || !strings.Contains(err.Error(), "OpenJPEG") {
		t.Errorf("broken JPEG 2000: %v", err)
	}
}

// TestLoadJPEGExtended12: dcmtk's 12-bit JPEG extended copy of
// ts/explicit.dcm decodes to the original's values within the loss of the
// encoding (2 levels at dcmcjpeg's default quality 90); exactness against
// dcmdjpeg is TestCodecFixtures' (the jpeg12_* fixtures).
func TestLoadJPEGExtended12(t *testing.T) {
	want := loadExpected(t)["ts/explicit.dcm"]
	s, err := LoadSeries([]string{td("ts/jpeg_extended12.dcm")}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "ts/jpeg_extended12.dcm", voxels(s), want.Values, 2)
}

// TestLoadDcmtkCompressedMatchesNative: the RLE and JPEG lossless copies of
// ts/explicit.dcm that dcmtk wrote load to pydicom's values of the original.
func TestLoadDcmtkCompressedMatchesNative(t *testing.T) {
	want := loadExpected(t)["ts/explicit.dcm"]
	for _, f := range []string{"ts/rle.dcm", "ts/jpeg_lossless.dcm"} {
		s, err := LoadSeries([]string{td(f)}, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		assertClose(t, f, voxels(s), want.Values, 0)
	}
}

func TestLoadShuffledSeriesOrdered(t *testing.T) {
	s, err := LoadSeries(seriesFiles(t, "ct_shuffled"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasGeometry || len(s.Frames) != 6 || len(s.Warnings) != 0 {
		t.Fatalf("geometry=%v frames=%d warnings=%v", s.HasGeometry, len(s.Frames), s.Warnings)
	}
	for i, f := range s.Frames {
		if f.Position[2] != 2.5*float64(i) || f.InstanceNumber != i+1 || f.FrameNumber != 1 {
			t.Errorf("frame %d: z=%v instance=%d", i, f.Position[2], f.InstanceNumber)
		}
		// pixel (0,0) = 1000 + 7k - 1024
		if want := float32(1000 + 7*i - 1024); f.Pixels[0] != want {
			t.Errorf("frame %d pixel 0 = %v, want %v", i, f.Pixels[0], want)
		}
	}
	if s.SpacingBetweenSlices != 2.5 || s.SliceThickness != 2.5 || s.PixelSpacing != [2]float64{0.7, 0.8} ||
		s.Orientation != [6]float64{1, 0, 0, 0, 1, 0} || s.FrameOfReferenceUID == "" || s.Modality != "CT" {
		t.Errorf("series geometry: %+v", s)
	}
}

func TestLoadSagittalOrderedAlongNormal(t *testing.T) {
	s, err := LoadSeries(seriesFiles(t, "mr_sagittal"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// orientation (0,1,0)/(0,0,-1): normal = -x, so larger x comes first.
	for i := 1; i < len(s.Frames); i++ {
		if s.Frames[i].Position[0] >= s.Frames[i-1].Position[0] {
			t.Fatalf("not ordered along the normal: %v then %v", s.Frames[i-1].Position, s.Frames[i].Position)
		}
	}
}

func TestLoadNoGeometryByInstanceNumber(t *testing.T) {
	files := seriesFiles(t, "dx_pair")
	rev := []string{files[1], files[0]}
	s, err := LoadSeries(rev, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s.HasGeometry || s.Frames[0].InstanceNumber != 1 || s.Frames[1].InstanceNumber != 2 {
		t.Errorf("geometry=%v order=%d,%d", s.HasGeometry, s.Frames[0].InstanceNumber, s.Frames[1].InstanceNumber)
	}
}

func TestLoadDuplicateSlice(t *testing.T) {
	_, err := LoadSeries(seriesFiles(t, "ct_duplicate"), Limits{})
	if err == nil || !strings.Contains(err.Error(), "duplicate slice position") {
		t.Fatalf("error %v", err)
	}
	f := seriesFiles(t, "ct_shuffled")
	_, err = LoadSeries([]string{f[0], f[1], f[0]}, Limits{})
	if err == nil || !strings.Contains(err.Error(), "duplicate instance") {
		t.Fatalf("same file twice: %v", err)
	}
}

func TestLoadMissingSliceWarns(t *testing.T) {
	s, err := LoadSeries(seriesFiles(t, "ct_missing"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "missing 1 slice") {
		t.Fatalf("warnings %q", s.Warnings)
	}
	if s.SpacingBetweenSlices != 2.5 {
		t.Errorf("spacing %v", s.SpacingBetweenSlices)
	}
	for _, w := range s.Warnings {
		if strings.Contains(w, "PID-SECRET") || strings.Contains(w, "Müller") {
			t.Errorf("PHI in warning: %q", w)
		}
	}
}

func TestLoadMixedSize(t *testing.T) {
	_, err := LoadSeries(seriesFiles(t, "ct_mixedsize"), Limits{})
	if err == nil || !strings.Contains(err.Error(), "mixed image sizes") {
		t.Fatalf("error %v", err)
	}
}

func TestLoadLocalizerInSeries(t *testing.T) {
	files := seriesFiles(t, "ct_localizer")
	_, err := LoadSeries(files, Limits{})
	if err == nil || !strings.Contains(err.Error(), "mixed orientations") || !strings.Contains(err.Error(), "LOCALIZER") {
		t.Fatalf("loading with the localizer: %v", err)
	}
	var hs []Header
	for _, f := range files {
		h, err := ReadHeader(f)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	kept, skipped := Select(hs, Selector{})
	if len(kept) != 1 || len(kept[0].Headers) != 6 {
		t.Fatalf("kept %+v", kept)
	}
	if len(skipped) != 1 || skipped[0].SOPInstanceUID == "" || !strings.Contains(skipped[0].Reason, "LOCALIZER") {
		t.Fatalf("skipped %+v", skipped)
	}
	s, err := LoadSeries(kept[0].Paths(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Frames) != 6 || len(s.Warnings) != 0 {
		t.Errorf("frames %d warnings %v", len(s.Frames), s.Warnings)
	}
}

func TestLoadEnhancedMultiFrame(t *testing.T) {
	exp := loadExpected(t)["enhanced/ct_enhanced.dcm"]
	s, err := LoadSeries([]string{td("enhanced/ct_enhanced.dcm")}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasGeometry || len(s.Frames) != 5 || s.SpacingBetweenSlices != 1.25 || s.PixelSpacing != [2]float64{0.5, 0.5} {
		t.Fatalf("geometry=%v frames=%d spacing=%v %v", s.HasGeometry, len(s.Frames), s.SpacingBetweenSlices, s.PixelSpacing)
	}
	npix := exp.Rows * exp.Columns
	for i, f := range s.Frames {
		if f.Position[2] != 1.25*float64(i) {
			t.Errorf("frame %d at z=%v", i, f.Position[2])
		}
		// find the stored frame with this z
		k := -1
		for j, z := range exp.Z {
			if z == f.Position[2] {
				k = j
			}
		}
		if f.FrameNumber != k+1 {
			t.Errorf("frame %d: FrameNumber %d, want %d", i, f.FrameNumber, k+1)
		}
		assertClose(t, "enhanced frame", f.Pixels, exp.Values[k*npix:(k+1)*npix], 0)
	}
}

func TestLoadLimitsBeforeAllocating(t *testing.T) {
	files := seriesFiles(t, "ct_shuffled")
	for _, tc := range []struct {
		lim  Limits
		what string
	}{
		{Limits{MaxRows: 4}, "rows"},
		{Limits{MaxColumns: 4}, "columns"},
		{Limits{MaxFrames: 5}, "frames"},
		{Limits{MaxBytes: 6*8*8*4 - 1}, "bytes"},
	} {
		_, err := LoadSeries(files, tc.lim)
		var le *LimitError
		if !errors.As(err, &le) || le.What != tc.what {
			t.Errorf("%+v: %v", tc.lim, err)
		}
	}
	if _, err := LoadSeries(files, Limits{MaxBytes: 6 * 8 * 8 * 4}); err != nil {
		t.Errorf("exact limit: %v", err)
	}
}

func TestLoadMixedSeriesAndEmpty(t *testing.T) {
	if _, err := LoadSeries(nil, Limits{}); err == nil {
		t.Error("no files: no error")
	}
	a := seriesFiles(t, "ct_shuffled")
	b := seriesFiles(t, "ct_missing")
	if _, err := LoadSeries([]string{a[0], b[0]}, Limits{}); err == nil || !strings.Contains(err.Error(), "series") {
		t.Errorf("two series: %v", err)
	}
}
