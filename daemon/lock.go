package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockName is the lock file inside state_dir. While a daemon runs it holds
// an exclusive flock(2) on it, so that a second `tmcad run` on the same
// state_dir refuses to start instead of sharing the outbox and handing
// back the first one's running jobs as orphans. The kernel drops the lock
// when the process dies, so a crash never leaves a stale lock behind.
const LockName = "tmcad.lock"

// ErrStateDirLocked is returned (wrapped) by New when another daemon holds
// the state_dir lock.
var ErrStateDirLocked = errors.New("state_dir is in use by another tmcad run")

// stateLock is a held flock on state_dir/tmcad.lock.
type stateLock struct {
	f *os.File
}

// lockStateDir takes the exclusive lock on dir/tmcad.lock without waiting,
// and writes this process's ID into the file (for the error a second
// daemon prints; the lock, not the ID, is what counts).
func lockStateDir(dir string) (*stateLock, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state_dir: opening lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s: %s is locked; stop the other daemon or give this one its own state_dir", ErrStateDirLocked, holder, path)
		}
		return nil, fmt.Errorf("state_dir: locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &stateLock{f: f}, nil
}

// release drops the lock. The file stays: removing it would let a third
// daemon lock a new file while a second one still waits on the old one.
func (l *stateLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
