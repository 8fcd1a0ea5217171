package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// startWatcher runs a watcher on a new folder with short timings and
// returns it and the folder; it stops when the test ends.
func startWatcher(t *testing.T) (*Watcher, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := New(Options{Roots: []string{dir}, SizeStableFor: 100 * time.Millisecond, RescanEvery: time.Hour, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); _ = w.Close() })
	return w, dir
}

// next waits for the next event, failing after within.
func next(t *testing.T, w *Watcher, within time.Duration) FileEvent {
	t.Helper()
	select {
	case ev := <-w.Events():
		return ev
	case <-time.After(within):
		t.Fatalf("no file sent within %v", within)
	}
	return FileEvent{}
}

// waitUntil polls cond until it holds, failing after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OldestUnhandled names the first time a file was seen while it waits
// for its size to settle and while it is being handled; Done clears it.
func TestOldestUnhandled(t *testing.T) {
	w, dir := startWatcher(t)
	if !w.OldestUnhandled().IsZero() {
		t.Fatal("an empty folder has an unhandled file")
	}
	before := time.Now()
	if err := os.WriteFile(filepath.Join(dir, "a.dcm"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the new file counted as unhandled", func() bool { return !w.OldestUnhandled().IsZero() })
	if got := w.OldestUnhandled(); got.Before(before.Add(-time.Second)) || got.After(time.Now()) {
		t.Errorf("OldestUnhandled = %v, want about when the file appeared (%v)", got, before)
	}
	ev := next(t, w, 5*time.Second)
	if w.OldestUnhandled().IsZero() {
		t.Error("a file sent but not yet Done no longer counts as unhandled")
	}
	w.Done(ev, nil)
	waitUntil(t, 5*time.Second, "no unhandled file once Done", func() bool { return w.OldestUnhandled().IsZero() })
}

// While paused the watcher sends nothing; files wait on disk and are sent
// in path order once it resumes.
func TestPausedSendsNothing(t *testing.T) {
	w, dir := startWatcher(t)
	w.SetPaused(true)
	for _, n := range []string{"c.dcm", "a.dcm", "b.dcm"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ev := <-w.Events():
		t.Fatalf("%s sent while paused", ev.Path)
	case <-time.After(time.Second):
	}
	w.SetPaused(false)
	for _, want := range []string{"a.dcm", "b.dcm", "c.dcm"} {
		ev := next(t, w, 5*time.Second)
		if filepath.Base(ev.Path) != want {
			t.Errorf("sent %s, want %s (path order)", filepath.Base(ev.Path), want)
		}
		w.Done(ev, nil)
	}
}
