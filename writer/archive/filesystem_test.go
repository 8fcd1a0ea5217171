package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tmcad/writer"
)

func TestFilesystemSink(t *testing.T) {
	root := t.TempDir()
	s, err := NewFilesystemSink(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte("DICM-ish content")
	if err := s.Put(ctx, "1.2.3", "1.2.3.4", "1.2.3.4.5", data); err != nil {
		t.Fatalf("first Put: %v", err)
	}
	p := filepath.Join(root, "1.2.3", "1.2.3.4", "1.2.3.4.5.dcm")
	got, err := os.ReadFile(p)
	if err != nil || string(got) != string(data) {
		t.Fatalf("stored file: %q, %v", got, err)
	}
	// Same content again: success, one file, no temporary left over.
	if err := s.Put(ctx, "1.2.3", "1.2.3.4", "1.2.3.4.5", data); err != nil {
		t.Fatalf("second Put with same content: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("folder holds %d entries, want 1", len(entries))
	}
	// Different content: conflict, original untouched.
	err = s.Put(ctx, "1.2.3", "1.2.3.4", "1.2.3.4.5", []byte("other content"))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Put with different content: err = %v, want ErrConflict", err)
	}
	got, _ = os.ReadFile(p)
	if string(got) != string(data) {
		t.Fatal("conflicting Put changed the stored file")
	}
}

func TestFilesystemSinkSanitises(t *testing.T) {
	root := t.TempDir()
	s, err := NewFilesystemSink(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "../../etc", "a/b", "x y", []byte("x")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ".._.._etc", "a_b", "x_y.dcm")); err != nil {
		t.Fatalf("sanitised path missing: %v", err)
	}
	for _, bad := range []string{"", ".", ".."} {
		if err := s.Put(ctx, bad, "1", "2", []byte("x")); err == nil || !strings.Contains(err.Error(), "study") {
			t.Errorf("study %q: err = %v, want an error naming the study UID", bad, err)
		}
	}
	if _, err := NewFilesystemSink(filepath.Join(root, "missing")); err == nil {
		t.Error("NewFilesystemSink on a missing folder succeeded")
	}
}

func TestFilesystemSinkConcurrent(t *testing.T) {
	s, err := NewFilesystemSink(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Put(context.Background(), "1", "2", "3", []byte("same bytes"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Put of identical content: %v", err)
		}
	}
}

func TestFilesystemSinkStoresSEG(t *testing.T) {
	c := testCases(t)[1]
	seg, err := writer.EncodeSEG(c.src, c.input(), c.desc)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s, err := NewFilesystemSink(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // reprocessing: same UIDs, same bytes
		again, err := writer.EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		if err := PutSEG(context.Background(), s, again); err != nil {
			t.Fatalf("PutSEG #%d: %v", i+1, err)
		}
	}
	p, _ := s.Path(seg.StudyInstanceUID, seg.SeriesInstanceUID, seg.SOPInstanceUID)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}

// TestFilesystemSinkRootMissing: a root that goes away (an unmounted
// share) is not re-created: Put fails with ErrArchiveMissing, and stores
// again (sub-folders included) once the root is back.
func TestFilesystemSinkRootMissing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "archive")
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := NewFilesystemSink(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = s.Put(ctx, "1.2.3", "1.2.3.4", "1.2.3.4.5", []byte("x"))
	if !errors.Is(err, ErrArchiveMissing) {
		t.Fatalf("Put with the root gone: %v, want ErrArchiveMissing", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("Put re-created the root (%v)", err)
	}
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "1.2.3", "1.2.3.4", "1.2.3.4.5", []byte("x")); err != nil {
		t.Fatalf("Put with the root back: %v", err)
	}
}
