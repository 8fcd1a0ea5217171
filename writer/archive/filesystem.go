package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrArchiveMissing is wrapped by a filesystem sink's errors when its root
// folder is gone (an unmounted share): a transient failure, since the sink
// never creates its root and the object is stored once the root is back.
var ErrArchiveMissing = errors.New("archive root folder is missing")

// FilesystemSink stores objects under a root folder as
// <study>/<series>/<sop>.dcm. Each file is written to a temporary file in the
// target folder, fsynced, and linked into place without overwriting; the
// folder is fsynced after. An existing file with the same content is
// success; with different content it is an ErrConflict. The sink creates
// the folders below its root, never the root itself.
type FilesystemSink struct {
	root string
}

// NewFilesystemSink returns a sink rooted at root, which must exist and be a
// folder (it is not created, so that a typo does not silently archive into a
// new place).
func NewFilesystemSink(root string) (*FilesystemSink, error) {
	if root == "" {
		return nil, errors.New("writer: filesystem sink: root folder is empty")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("writer: filesystem sink root %q: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("writer: filesystem sink root %q: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("writer: filesystem sink root %q is not a folder", root)
	}
	return &FilesystemSink{root: abs}, nil
}

// Name returns "filesystem:<root>".
func (s *FilesystemSink) Name() string { return "filesystem:" + s.root }

// Path returns where an object with these UIDs is (or would be) stored.
func (s *FilesystemSink) Path(study, series, sop string) (string, error) {
	return s.path(study, series, sop, ".dcm")
}

func (s *FilesystemSink) path(study, series, sop, ext string) (string, error) {
	parts := make([]string, 3)
	for i, p := range []struct{ name, v string }{{"study", study}, {"series", series}, {"sop", sop}} {
		c, err := sanitizeComponent(p.v)
		if err != nil {
			return "", fmt.Errorf("writer: filesystem sink: %s UID: %w", p.name, err)
		}
		parts[i] = c
	}
	return filepath.Join(s.root, parts[0], parts[1], parts[2]+ext), nil
}

// sanitizeComponent makes one path component from a UID: characters other
// than letters, digits, '.', '-' and '_' become '_'; empty, "." and ".."
// (after sanitising) and overlong components are rejected.
func sanitizeComponent(v string) (string, error) {
	if v == "" {
		return "", errors.New("empty")
	}
	if len(v) > 128 {
		return "", fmt.Errorf("longer than 128 characters")
	}
	b := []byte(v)
	for i, c := range b {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_'
		if !ok {
			b[i] = '_'
		}
	}
	out := string(b)
	if strings.Trim(out, ".") == "" {
		return "", fmt.Errorf("%q is not a usable path component", out)
	}
	return out, nil
}

// Put stores data as <study>/<series>/<sop>.dcm.
func (s *FilesystemSink) Put(ctx context.Context, study, series, sop string, data []byte) error {
	p, err := s.path(study, series, sop, ".dcm")
	if err != nil {
		return err
	}
	return s.putFile(ctx, p, data)
}

// PutPreview stores a preview PNG beside the SEG, as <study>/<series>/<sop>.png.
func (s *FilesystemSink) PutPreview(ctx context.Context, study, series, sop string, png []byte) error {
	p, err := s.path(study, series, sop, ".png")
	if err != nil {
		return err
	}
	return s.putFile(ctx, p, png)
}

func (s *FilesystemSink) putFile(ctx context.Context, final string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rel, _ := filepath.Rel(s.root, final)
	dir := filepath.Dir(final)
	if err := s.mkdirBelowRoot(dir); err != nil {
		return fmt.Errorf("writer: filesystem sink: creating folder for %s: %w", rel, err)
	}
	if same, err := sameContent(final, data); err == nil {
		if same {
			return nil
		}
		return fmt.Errorf("writer: filesystem sink: %s: %w", rel, ErrConflict)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("writer: filesystem sink: checking %s: %w", rel, err)
	}

	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("writer: filesystem sink: temporary file for %s: %w", rel, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op once linked and removed, or renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writer: filesystem sink: writing %s: %w", rel, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writer: filesystem sink: fsync %s: %w", rel, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writer: filesystem sink: closing %s: %w", rel, err)
	}
	if err := os.Chmod(tmpName, 0o640); err != nil {
		return fmt.Errorf("writer: filesystem sink: chmod %s: %w", rel, err)
	}
	// Link refuses to replace an existing file, so two writers racing on the
	// same SOP cannot overwrite each other; fall back to rename where hard
	// links are not supported.
	if err := os.Link(tmpName, final); err != nil {
		if errors.Is(err, os.ErrExist) {
			same, cerr := sameContent(final, data)
			if cerr != nil {
				return fmt.Errorf("writer: filesystem sink: checking %s: %w", rel, cerr)
			}
			if !same {
				return fmt.Errorf("writer: filesystem sink: %s: %w", rel, ErrConflict)
			}
			return nil
		}
		if rerr := os.Rename(tmpName, final); rerr != nil {
			return fmt.Errorf("writer: filesystem sink: moving %s into place: %w", rel, rerr)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("writer: filesystem sink: fsync folder of %s: %w", rel, err)
	}
	return nil
}

// mkdirBelowRoot creates dir and the folders between it and the root, one
// at a time, never the root itself: if the root disappears (even while
// this runs) the first Mkdir below it fails, and the error wraps
// ErrArchiveMissing.
func (s *FilesystemSink) mkdirBelowRoot(dir string) error {
	rel, err := filepath.Rel(s.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is not below the archive root %s", dir, s.root)
	}
	if st, err := os.Stat(s.root); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", s.root, ErrArchiveMissing)
		}
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("%s is not a folder: %w", s.root, ErrArchiveMissing)
	}
	if rel == "." {
		return nil
	}
	cur := s.root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		err := os.Mkdir(cur, 0o750)
		switch {
		case err == nil, errors.Is(err, os.ErrExist):
		case errors.Is(err, os.ErrNotExist):
			// The folder above vanished: the root went away meanwhile.
			return fmt.Errorf("%s: %w", s.root, ErrArchiveMissing)
		default:
			return err
		}
	}
	return nil
}

// sameContent compares the file at path with data without reading it all
// into memory; the error wraps os.ErrNotExist when there is no file.
func sameContent(path string, data []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() != int64(len(data)) {
		return false, nil
	}
	buf := make([]byte, 64*1024)
	off := 0
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if off+n > len(data) || !bytes.Equal(buf[:n], data[off:off+n]) {
				return false, nil
			}
			off += n
		}
		if err == io.EOF {
			return off == len(data), nil
		}
		if err != nil {
			return false, err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
