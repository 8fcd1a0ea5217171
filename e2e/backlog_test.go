package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// growSlowly writes src to dst in n pieces with pause between them: a
// file a slow sender is still writing, whose size keeps changing for
// n × pause.
func growSlowly(t *testing.T, src, dst string, n int, pause time.Duration) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := f.Write(b[i*len(b)/n : (i+1)*len(b)/n]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSeriesWaitsForFilesOnTheirWay: the last instance of a CT series
// appears in the drop folder right after the others but is still being
// written long after the others were catalogued (longer than
// watch.stable_after). The series must wait for it: its SEG references
// every instance, and no instance arrives after the series was queued.
// Judging stability by the catalogue alone (as under a backlog, when
// files wait to be catalogued) would process the series without it.
func TestSeriesWaitsForFilesOnTheirWay(t *testing.T) {
	var s exampleSeries
	for _, x := range examples {
		if len(x.Files) > 3 {
			s = x
			break
		}
	}
	if s.SeriesUID == "" {
		t.Fatal("no example series with more than three instances")
	}
	e := newEnv(t)
	e.cfg.StableAfter, e.cfg.SizeStableFor = "1s", "400ms"
	p := e.start()
	e.dropReport(s)
	srcs := s.paths()
	last := len(srcs) - 1
	for i, src := range srcs[:last] {
		copyFile(t, src, filepath.Join(e.cfg.DICOMDir, s.Files[i][len("dicom/"):]))
	}
	// Written in 15 pieces 200 ms apart: its size changes for 3 s, never
	// staying put for size_stable_for, while the others are catalogued
	// within a second.
	growSlowly(t, srcs[last], filepath.Join(e.cfg.DICOMDir, s.Files[last][len("dicom/"):]), 15, 200*time.Millisecond)

	p.waitLog(120*time.Second, "SEG of series "+s.SeriesUID+" stored", seriesMsg(msgStored, s.SeriesUID))
	segs := archiveSEGs(t, e.cfg.ArchiveDir)
	if len(segs) != 1 {
		t.Fatalf("%d SEGs in the archive, want 1", len(segs))
	}
	for _, sop := range s.SOPUIDs {
		if !slices.Contains(segs[0].ReferencedSOPs, sop) {
			t.Errorf("the SEG does not reference instance %s: the series was processed before all its files were catalogued", sop)
		}
	}
	if late := p.matching(msgIs("instance arrived after its series was queued; it is catalogued but not in the SEG (use tmcad reprocess --series)")); len(late) > 0 {
		t.Errorf("%d instance(s) arrived after the series was queued", len(late))
	}
	p.stop()
}
