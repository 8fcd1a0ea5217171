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

	"tmcad/internal/testpeers"
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

// TestStateDirFull puts state_dir on a small tmpfs (mounted for the test)
// and fills it up while the daemon runs: a study arriving meanwhile cannot
// be catalogued and /readyz says so; once space is freed a few seconds
// later the study is processed and its SEG stored, without a restart.
// Mounting needs root: without it the test runs itself again in a user
// and mount namespace of its own (unshare), where it may mount.
func TestStateDirFull(t *testing.T) {
	if os.Geteuid() != 0 {
		rerunAsNamespaceRoot(t)
		return
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

// rerunAsNamespaceRoot runs the current test again, alone, in a new user
// namespace whose root is this user and a new mount namespace (util-linux
// unshare; the kernel must allow unprivileged user namespaces), with the
// tmcad binary already built, and fails when that run fails.
func rerunAsNamespaceRoot(t *testing.T) {
	t.Helper()
	bin := testpeers.RequireTool(t, "unshare")
	cmd := exec.Command(bin, "--user", "--map-root-user", "--mount", os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envPrebuiltBin+"="+tmcadBin)
	cmd.Dir, _ = os.Getwd()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s as root of its own user and mount namespace: %v\n%s", t.Name(), err, out)
	}
	t.Logf("ran as root of its own user and mount namespace:\n%s", out)
}
