package dicomio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// StartLoadSeries hands out frames in series order while it decodes: the
// units are scheduled by their first frame (the files of ct_shuffled are
// not in slice order), every prefix a waiter is released for holds its
// pixels, and the result equals LoadSeries'.
func TestStartLoadStreamsInFrameOrder(t *testing.T) {
	files := seriesFiles(t, "ct_shuffled")
	want, err := LoadSeries(files, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := StartLoadSeries(files, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	firsts := make([]int, len(l.order))
	for k, u := range l.order {
		firsts[k] = u.frames[0]
	}
	if !slices.IsSorted(firsts) {
		t.Errorf("decoding order by first frame %v, want ascending", firsts)
	}
	s := l.Series()
	checkEachPrefix(t, l, want, "LoadSeries'")
	if err := l.WaitFrames(context.Background(), len(s.Frames)+1); err == nil || !strings.Contains(err.Error(), "frames asked for") {
		t.Fatalf("WaitFrames past the last frame: %v, want an error", err)
	}
}

// Padding becomes the minimum real value of its own frame, so padded
// frames stream like the others; a frame that is all padding takes the
// series' minimum and is released only when every frame is in. Values
// against the generator's expectation (testdata/gen/dicomio/gen.py).
func TestLoadPaddingPerFrame(t *testing.T) {
	want := loadExpected(t)["series/ct_padded"]
	files := seriesFiles(t, "ct_padded")
	s, err := LoadSeries(files, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "ct_padded", voxels(s), want.Values, 0)
	if s.PaddedPixels != 8+8+64 {
		t.Errorf("PaddedPixels = %d, want 80", s.PaddedPixels)
	}

	l, err := StartLoadSeries(files, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitFrames(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	for f := 0; f < 2; f++ {
		assertClose(t, "ct_padded frame", l.Series().Frames[f].Pixels, want.Values[f*64:(f+1)*64], 0)
	}
	if err := l.Wait(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.allPadding, []int{2}) {
		t.Errorf("frames held back as all padding: %v, want [2]", l.allPadding)
	}
	assertClose(t, "ct_padded all-padding frame", l.Series().Frames[2].Pixels, want.Values[128:], 0)
}

// A file whose header reads but whose pixel data does not decode fails the
// loading: waiters, Wait and LoadSeries get the error naming the file.
func TestStartLoadDecodeErrorReachesWaiters(t *testing.T) {
	b, err := os.ReadFile(td("ts/jpeg_baseline.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "\xff\xd8\xff")
	if i < 0 {
		t.Fatal("no JPEG start of image in the fixture")
	}
	b[i], b[i+1] = 0, 0
	bad := filepath.Join(t.TempDir(), "bad.dcm")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := StartLoadSeries([]string{bad}, Limits{})
	if err != nil {
		t.Fatalf("the header pass should accept the file: %v", err)
	}
	werr := l.WaitFrames(context.Background(), 1)
	if werr == nil || !strings.Contains(werr.Error(), bad) || !strings.Contains(werr.Error(), "SOI") {
		t.Fatalf("WaitFrames: %v, want the decode error naming %s", werr, bad)
	}
	if err := l.Wait(); err == nil || err.Error() != werr.Error() {
		t.Fatalf("Wait: %v, want %v", err, werr)
	}
	if _, err := LoadSeries([]string{bad}, Limits{}); err == nil || err.Error() != werr.Error() {
		t.Fatalf("LoadSeries: %v, want %v", err, werr)
	}
}

// Waiting gives up with the context; a cancelled loading says so unless it
// had already finished.
func TestLoadingWaitAndCancel(t *testing.T) {
	stuck := &Loading{series: &Series{Frames: make([]Frame, 2)}, done: make([]bool, 2), changed: make(chan struct{}), finished: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := stuck.WaitFrames(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitFrames on a done context: %v", err)
	}
	files := seriesFiles(t, "ct_shuffled")
	l, err := StartLoadSeries(files, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	l.Cancel()
	switch err := l.Wait(); {
	case err == nil:
		for i, f := range l.Series().Frames {
			if len(f.Pixels) == 0 {
				t.Fatalf("Wait says complete, frame %d has no pixels", i)
			}
		}
	case !errors.Is(err, errLoadCancelled):
		t.Fatalf("Wait after Cancel: %v", err)
	}
	if err := l.WaitFrames(context.Background(), len(files)); err != nil && !errors.Is(err, errLoadCancelled) {
		t.Fatalf("WaitFrames after Cancel: %v", err)
	}
}

// A native multi-frame file is decoded in ranges of frames (units), each
// on its own, in series order: with units of two frames the five frames of
// the enhanced fixture (stored out of spatial order, with per-frame
// rescale) load as they do in one piece.
func TestLoadMultiFrameInRanges(t *testing.T) {
	file := []string{td("enhanced/ct_enhanced.dcm")}
	whole, err := LoadSeries(file, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer func(b int) { unitBytes = b }(unitBytes)
	unitBytes = 2 * whole.Rows * whole.Columns * 2 // two 16-bit frames
	l, err := StartLoadSeries(file, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(l.order) != 3 {
		t.Fatalf("%d decoding units for 5 frames of 2 per unit, want 3", len(l.order))
	}
	firsts := make([]int, len(l.order))
	for k, u := range l.order {
		firsts[k] = slices.Min(u.frames)
	}
	if !slices.IsSorted(firsts) {
		t.Errorf("units in series order by their first frame: %v", firsts)
	}
	for i, f := range l.Series().Frames {
		if !slices.Equal(f.Pixels, whole.Frames[i].Pixels) || f.FrameNumber != whole.Frames[i].FrameNumber {
			t.Fatalf("frame %d differs from the file decoded in one piece", i)
		}
	}
}

// checkEachPrefix waits for l's frames one more at a time, checks that
// every frame released equals want's (named so in a failure), then waits
// for the whole loading.
func checkEachPrefix(t *testing.T, l *Loading, want *Series, wantName string) {
	t.Helper()
	s := l.Series()
	for n := 1; n <= len(s.Frames); n++ {
		if err := l.WaitFrames(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if !slices.Equal(s.Frames[i].Pixels, want.Frames[i].Pixels) {
				t.Fatalf("after WaitFrames(%d), frame %d differs from %s", n, i, wantName)
			}
		}
	}
	if err := l.Wait(); err != nil {
		t.Fatal(err)
	}
}

// An encapsulated multi-frame file streams like a native one: with units
// of one frame, each frame of the compressed fixtures (offset tables
// present or not, frames in one or several fragments) is its own unit,
// released in series order, and the frames are those decoded in one
// piece.
func TestLoadEncapsulatedMultiFrameInRanges(t *testing.T) {
	for _, f := range []string{"jls_ctmf.dcm", "sv1_ctmf_split_nobot.dcm", "j2k_ctmf_eot.dcm", "htj2k_ctmf_nobot.dcm", "jpegext_ctmf12u_split_bot.dcm", "rle_ctmf_nobot.dcm"} {
		t.Run(f, func(t *testing.T) {
			file := []string{td("codecs/" + f)}
			whole, err := LoadSeries(file, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer func(b int) { unitBytes = b }(unitBytes)
			unitBytes = whole.Rows * whole.Columns * 2 // one 16-bit frame
			l, err := StartLoadSeries(file, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.order) != len(whole.Frames) {
				t.Fatalf("%d decoding units for %d frames of one per unit", len(l.order), len(whole.Frames))
			}
			if l.order[0].in.layout == nil || l.order[0].in.layout.index == nil {
				t.Fatal("the instance's frames are not indexed once for its units")
			}
			checkEachPrefix(t, l, whole, "the file decoded in one piece")
		})
	}
}

// A broken codestream in the middle of an encapsulated multi-frame file
// fails its loading with an error naming the file, the frame and the
// transfer syntax, whether the file is decoded in one unit or in ranges.
func TestLoadEncapsulatedFrameErrorNamesFrame(t *testing.T) {
	for _, tc := range []struct{ file, start, ts string }{
		{"jls_ctmf.dcm", "\xff\xd8\xff", JPEGLSLossless},
		{"jpegext_ctmf12u.dcm", "\xff\xd8\xff", JPEGExtended12Bit},
		{"htj2k_ctmf.dcm", "\xff\x4f\xff\x51", HTJ2KLosslessRPCL},
	} {
		b, err := os.ReadFile(td("codecs/" + tc.file))
		if err != nil {
			t.Fatal(err)
		}
		first := strings.Index(string(b), tc.start)
		second := strings.Index(string(b[first+1:]), tc.start)
		if first < 0 || second < 0 {
			t.Fatalf("%s: no second codestream", tc.file)
		}
		i := first + 1 + second
		b[i], b[i+1] = 0, 0 // frame 2 no longer starts a codestream
		bad := filepath.Join(t.TempDir(), tc.file)
		if err := os.WriteFile(bad, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, unit := range []int{unitBytes, 1} {
			func() {
				defer func(b int) { unitBytes = b }(unitBytes)
				unitBytes = unit
				_, err := LoadSeries([]string{bad}, Limits{})
				if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "frame 2") || !strings.Contains(err.Error(), tc.ts) {
					t.Errorf("%s (units of %d bytes): %v, want an error naming the file, frame 2 and %s", tc.file, unit, err, tc.ts)
				}
			}()
		}
	}
}
