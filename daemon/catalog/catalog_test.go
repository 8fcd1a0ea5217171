package catalog

import (
	"context"
	"slices"
	"testing"
	"time"

	"tmcad/dicomio"
)

// An instance whose file retention deleted is recorded as such (the series
// counts deleted inputs, which makes Reprocess skip it); the same instance
// sent again takes the deleted one's place, and the series has all its
// inputs again.
func TestCatalogRetiredInstanceReadopted(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	cat := New(st, time.Now)
	h := dicomio.Header{Path: "/drop/a.dcm", SOPInstanceUID: "1.2.3.1", SeriesInstanceUID: "1.2.3", StudyInstanceUID: "1.2", Modality: "CT"}
	if out, _, err := cat.AddInstance(ctx, h, "sum-a"); err != nil || out != AddedNew {
		t.Fatalf("first add: %v, %v", out, err)
	}
	if err := cat.RetireInstance(ctx, "/drop/a.dcm"); err != nil {
		t.Fatal(err)
	}
	if n, err := cat.DeletedInputs(ctx, "1.2.3"); err != nil || n != 1 {
		t.Fatalf("deleted inputs after retiring: %d, %v; want 1", n, err)
	}
	// Different content under the same SOP Instance UID is still a conflict.
	h.Path = "/drop/other.dcm"
	if out, _, err := cat.AddInstance(ctx, h, "sum-other"); err != nil || out != AddedConflict {
		t.Fatalf("conflicting copy: %v, %v; want a conflict", out, err)
	}
	h.Path = "/drop/again/a.dcm"
	if out, _, err := cat.AddInstance(ctx, h, "sum-a"); err != nil || out != AddedLate {
		t.Fatalf("the same instance sent again: %v, %v; want it catalogued (late)", out, err)
	}
	paths, err := cat.InstancePaths(ctx, "1.2.3")
	if err != nil || !slices.Equal(paths, []string{"/drop/again/a.dcm"}) {
		t.Fatalf("paths %v, %v; want the copy sent again", paths, err)
	}
	if n, _ := cat.DeletedInputs(ctx, "1.2.3"); n != 0 {
		t.Fatalf("%d deleted inputs after the copy came back, want 0", n)
	}
	// A plain duplicate keeps the first path.
	h.Path = "/drop/third.dcm"
	if out, existing, err := cat.AddInstance(ctx, h, "sum-a"); err != nil || out != AddedDuplicate || existing != "/drop/again/a.dcm" {
		t.Fatalf("duplicate: %v %q %v", out, existing, err)
	}
}
