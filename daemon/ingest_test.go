package daemon

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tmcad/config"
	"tmcad/daemon/catalog"
	"tmcad/daemon/watch"
)

// readyz returns /readyz's status code and body.
func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCatalogueOutageRetried makes the catalogue refuse new instances
// (as a full disk would) while a series arrives: /readyz says why, and once
// the catalogue takes writes again the files are catalogued and the series
// is processed, without a restart and without the files changing.
func TestCatalogueOutageRetried(t *testing.T) {
	cfg := testConfig(t)
	cfg.Watch.RescanEvery.Duration = 500 * time.Millisecond
	proc := newFakeProcessor()
	sink := &fakeSink{puts: map[string]int{}}
	d, _ := runDaemon(t, cfg, proc, sink)
	execSQL(t, cfg, `CREATE TRIGGER test_full BEFORE INSERT ON tmcad_instance
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
	writeReport(t, cfg, "1.7.1", "FINDINGS: left lower lobe opacity.")
	for i, in := range testSeries("1.7.1", "1.7.1.1", 3) {
		writeInstance(t, filepath.Join(cfg.Watch.DICOMDir, "s"), fmt.Sprintf("IM%d", i), in)
	}
	waitFor(t, 10*time.Second, "/readyz not ready", func() bool {
		code, _ := readyz(t, d.HTTPAddr())
		return code == http.StatusServiceUnavailable
	})
	code, body := readyz(t, d.HTTPAddr())
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "catalogue cannot be written") || !strings.Contains(body, "disk is full") {
		t.Errorf("/readyz during the outage: %d %q, want 503 naming the catalogue and the cause", code, body)
	}
	if strings.Contains(body, cfg.Watch.DICOMDir) {
		t.Errorf("/readyz names a drop-folder path: %q", body)
	}
	// Longer than a rescan: the files must still come back.
	time.Sleep(2 * time.Second)
	execSQL(t, cfg, `DROP TRIGGER test_full`)
	waitFor(t, 30*time.Second, "series stored after the outage", func() bool { return sink.stored("1.7.1.1.99.1") == 1 })
	waitFor(t, 10*time.Second, "/readyz ready again", func() bool {
		code, _ := readyz(t, d.HTTPAddr())
		return code == http.StatusOK
	})
	if n := proc.count("1.7.1.1"); n != 1 {
		t.Errorf("series processed %d times, want 1", n)
	}
	paths, err := d.cat.InstancePaths(context.Background(), "1.7.1.1")
	if err != nil || len(paths) != 3 {
		t.Errorf("catalogued instances %v (%v), want 3", paths, err)
	}
}

// execSQL runs one statement on the daemon's embedded database through a
// connection of its own, as an operator's tool would.
func execSQL(t *testing.T, cfg *config.Config, stmt string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.StateDir, catalog.QueueDBName)+"?_pragma=busy_timeout(15000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
}

// eventFor is what the watcher sends for the file at path once its size is
// stable.
func eventFor(t *testing.T, path string) watch.FileEvent {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return watch.EventOf("", path, info)
}

// quarantined returns the files copied into quarantine (reason.txt aside).
func quarantined(t *testing.T, cfg *config.Config) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(cfg.QuarantineDir(), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() != "reason.txt" {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A regular file swapped for a symbolic link between its size check and
// its ingest is not followed: the link's target (outside the drop folder,
// mode 0600) is neither read nor copied into quarantine. A file that is
// quarantined keeps its mode at most.
func TestIngestSymlinkSwap(t *testing.T) {
	cfg := testConfig(t)
	d, _ := runDaemon(t, cfg, newFakeProcessor(), &fakeSink{puts: map[string]int{}})
	ctx := context.Background()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("not DICOM, and not for the quarantine"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "IM1")
	if err := os.WriteFile(path, []byte("garbage, not DICOM either"), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := eventFor(t, path)
	ev.Size = int64(len("not DICOM, and not for the quarantine")) // as if the sizes matched
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, path); err != nil {
		t.Fatal(err)
	}
	if err := d.ingest(ctx, ev, ev.Path); err != nil {
		t.Fatalf("ingest of a swapped file: %v, want it skipped", err)
	}
	if q := quarantined(t, cfg); len(q) != 0 {
		t.Fatalf("the symbolic link's target was copied into quarantine: %v", q)
	}
	if seen, _ := d.cat.FileSeen(ctx, path, ev.Size, ev.ModTime); seen {
		t.Error("the swapped file was catalogued")
	}

	// An unreadable regular file, mode 0600: quarantined as 0600, not 0640.
	own := filepath.Join(dir, "IM2")
	if err := os.WriteFile(own, []byte("garbage, not DICOM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.ingest(ctx, eventFor(t, own), own); err != nil {
		t.Fatal(err)
	}
	q := quarantined(t, cfg)
	if len(q) != 1 {
		t.Fatalf("quarantine holds %v, want the one unreadable file", q)
	}
	st, err := os.Stat(q[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&^0o600 != 0 {
		t.Errorf("quarantine copy has mode %v, more than its source's 0600", st.Mode().Perm())
	}
}

// A DICOM file written by a slow sender that pauses longer than
// watch.size_stable_for is waited for, not quarantined (once per pause);
// one that stays truncated is quarantined once watch.incomplete_wait has
// passed.
func TestIncompleteFileWaitedFor(t *testing.T) {
	cfg := testConfig(t)
	cfg.Watch.IncompleteWait.Duration = 3 * time.Second
	proc := newFakeProcessor()
	sink := &fakeSink{puts: map[string]int{}}
	runDaemon(t, cfg, proc, sink)
	writeReport(t, cfg, "1.8.1", "FINDINGS: left lower lobe opacity.")
	dir := filepath.Join(cfg.Watch.DICOMDir, "slow")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := testSeries("1.8.1", "1.8.1.1", 1)[0].bytes()
	f, err := os.Create(filepath.Join(dir, "IM1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Three pauses, each far longer than size_stable_for (100ms).
	for _, end := range []int{len(b) / 4, len(b) / 2, len(b) - 10, len(b)} {
		start, _ := f.Seek(0, io.SeekCurrent)
		if _, err := f.Write(b[start:end]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond)
	}
	waitFor(t, 20*time.Second, "series stored", func() bool { return sink.stored("1.8.1.1.99.1") == 1 })
	if q := quarantined(t, cfg); len(q) != 0 {
		t.Fatalf("a file still being written was quarantined: %v", q)
	}

	// Truncated for good: quarantined once, after incomplete_wait.
	cut := testSeries("1.8.2", "1.8.2.1", 1)[0].bytes()
	if err := os.WriteFile(filepath.Join(dir, "IM2"), cut[:len(cut)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if q := quarantined(t, cfg); len(q) != 0 {
		t.Fatalf("quarantined before watch.incomplete_wait: %v", q)
	}
	waitFor(t, 20*time.Second, "truncated file quarantined", func() bool { return len(quarantined(t, cfg)) == 1 })
	time.Sleep(3 * time.Second)
	if q := quarantined(t, cfg); len(q) != 1 {
		t.Fatalf("quarantine holds %v, want the truncated file once", q)
	}
}
