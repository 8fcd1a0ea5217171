package e2e

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fillUp writes zeros into path until the file system holding it is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64*1024)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatalf("filling %s: %v", path, err)
		}
	}
	// Whatever space a smaller write could still take.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	_ = f.Sync()
}

// TestStateDirFull puts state_dir on a small tmpfs (mounted for the test;
// it needs root) and fills it up while the daemon runs: a study arriving
// meanwhile cannot be catalogued and /readyz says so; once space is freed
// a few seconds later the study is processed and its SEG stored, without
// a restart.
func TestStateDirFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs for state_dir needs root")
	}
	e := newEnv(t)
	if err := os.MkdirAll(e.cfg.StateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m,mode=0750", "tmpfs", e.cfg.StateDir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs on %s: %v\n%s", e.cfg.StateDir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", e.cfg.StateDir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v\n%s", e.cfg.StateDir, err, out)
		}
	})
	p := e.start()
	s := examples[0]

	filler := filepath.Join(e.cfg.StateDir, "filler")
	fillUp(t, filler)
	e.dropReport(s)
	e.dropSeries(s, 0, 0)
	waitFor(t, 30*time.Second, "/readyz not ready while state_dir is full", func() bool {
		code, _ := e.readyzBody()
		return code == http.StatusServiceUnavailable
	})
	code, body := e.readyzBody()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "full") {
		t.Errorf("/readyz while state_dir is full: %d %q, want 503 saying the disk is full", code, body)
	}
	// Full for a few seconds.
	time.Sleep(3 * time.Second)
	if n := len(p.matching(msgIs(msgStored))); n != 0 {
		t.Fatalf("%d SEG(s) stored while state_dir was full", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.waitArchive(120*time.Second, 1)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), []exampleSeries{s})
	waitFor(t, 30*time.Second, "/readyz ready again", func() bool { return e.httpStatus("/readyz") == http.StatusOK })
	if p.cmd.ProcessState != nil {
		t.Fatalf("the daemon exited: %v", p.cmd.ProcessState)
	}
	p.stop()
}
