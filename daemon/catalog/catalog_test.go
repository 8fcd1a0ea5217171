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

// AddInstanceFile records the instance and its file together, the file
// with the outcome's kind; when the file cannot be recorded, the instance
// is not either (one transaction), so the file is handled again whole.
func TestAddInstanceFileOneTransaction(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	cat := New(st, time.Now)
	mtime := time.Unix(1700000000, 0)
	h := dicomio.Header{Path: "/drop/a.dcm", SOPInstanceUID: "1.2.3.1", SeriesInstanceUID: "1.2.3", StudyInstanceUID: "1.2", Modality: "CR"}
	if out, _, err := cat.AddInstanceFile(ctx, h, "sum-a", "/drop/a.dcm", 10, mtime); err != nil || out != AddedNew {
		t.Fatalf("first add: %v, %v", out, err)
	}
	if seen, err := cat.FileSeen(ctx, "/drop/a.dcm", 10, mtime); err != nil || !seen {
		t.Fatalf("the file is not recorded with its instance: %v, %v", seen, err)
	}
	h.Path = "/drop/b.dcm"
	if out, _, err := cat.AddInstanceFile(ctx, h, "sum-b", "/drop/b.dcm", 11, mtime); err != nil || out != AddedConflict {
		t.Fatalf("conflicting copy: %v, %v", out, err)
	}
	var kind string
	if err := st.queryRow(ctx, `SELECT kind FROM tmcad_file WHERE path = ?`, "/drop/b.dcm").Scan(&kind); err != nil || kind != "conflict" {
		t.Fatalf("the conflicting file is recorded as %q (%v), want conflict", kind, err)
	}

	// A failing file record rolls the instance back.
	if _, err := st.exec(ctx, `CREATE TRIGGER fail_file BEFORE INSERT ON tmcad_file BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	h2 := dicomio.Header{Path: "/drop/c.dcm", SOPInstanceUID: "1.2.3.2", SeriesInstanceUID: "1.2.3", StudyInstanceUID: "1.2", Modality: "CR"}
	if _, _, err := cat.AddInstanceFile(ctx, h2, "sum-c", "/drop/c.dcm", 12, mtime); err == nil {
		t.Fatal("AddInstanceFile succeeded although the file could not be recorded")
	}
	var n int
	if err := st.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_instance WHERE sop_uid = ?`, "1.2.3.2").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d instance rows (%v) after the failed add, want 0 (rolled back)", n, err)
	}
}
