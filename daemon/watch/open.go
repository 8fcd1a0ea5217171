package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrReplaced says that the file at a path is not the one the watcher checked.
var ErrReplaced = errors.New("not the file whose size was checked (replaced, or a symbolic link)")

// Open opens the file ev names without following a symbolic link
// (nor blocking on a FIFO) and checks, on the opened descriptor, that it
// is a regular file and the very file whose size the watcher found stable
// (same device, inode and size). A mismatch wraps ErrReplaced.
func Open(ev FileEvent) (*os.File, error) {
	f, err := os.OpenFile(ev.Path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("opening %s: %w", ev.Path, ErrReplaced)
		}
		return nil, fmt.Errorf("opening %s: %w", ev.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", ev.Path, err)
	}
	dev, ino := fileID(st)
	if !st.Mode().IsRegular() || st.Size() != ev.Size || (ev.Ino != 0 && (dev != ev.Dev || ino != ev.Ino)) {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", ev.Path, ErrReplaced)
	}
	return f, nil
}

// EventOf is the event for the file at path (under the watched folder
// root) as info, from os.Lstat, describes it.
func EventOf(root, path string, info fs.FileInfo) FileEvent {
	dev, ino := fileID(info)
	return FileEvent{Root: root, Path: path, Size: info.Size(), ModTime: info.ModTime(), Dev: dev, Ino: ino}
}
