package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"tmcad/dicomio"
)

// quarantine copies files into a new folder under the quarantine folder
// with a reason.txt beside them, and returns the folder. The originals stay
// where they are: nothing is lost, and the operator decides. The folder is
// named <UTC time>-<kind>-<id>: kind is a fixed label ("series", a reason),
// id may come from a DICOM attribute (a Series Instance UID) and is made
// one safe path component, never a path of its own. reason must not carry
// PHI.
func (d *Daemon) quarantine(kind, id string, paths []string, reason string) (string, error) {
	return d.quarantineOpened(kind, id, paths, nil, reason)
}

// quarantineOpened is quarantine with some files already opened (and
// checked) by the caller: opened[i], when not nil, is read instead of
// opening paths[i] again.
func (d *Daemon) quarantineOpened(kind, id string, paths []string, opened []*os.File, reason string) (string, error) {
	root := d.config().QuarantineDir()
	dir := filepath.Join(root, time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+dicomio.SafePathComponent(kind)+"-"+dicomio.SafePathComponent(id))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tmcad quarantine, %s\n%s\nfiles:\n", time.Now().UTC().Format(time.RFC3339), strings.TrimRight(reason, "\n"))
	var firstErr error
	used := map[string]int{}
	for i, p := range paths {
		base := filepath.Base(p)
		if n := used[base]; n > 0 {
			base = fmt.Sprintf("%d-%s", n, base)
		}
		used[filepath.Base(p)]++
		var err error
		if i < len(opened) && opened[i] != nil {
			err = copyFrom(opened[i], filepath.Join(dir, base))
		} else {
			err = copyFile(p, filepath.Join(dir, base))
		}
		if err != nil {
			fmt.Fprintf(&b, "  %s (NOT COPIED: %v)\n", p, err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fmt.Fprintf(&b, "  %s -> %s\n", p, base)
	}
	if err := os.WriteFile(filepath.Join(dir, "reason.txt"), []byte(b.String()), 0o640); err != nil {
		return dir, fmt.Errorf("quarantine: writing reason.txt: %w", err)
	}
	return dir, firstErr
}

// quarantineFile quarantines one drop-folder file, read from f (opened
// from path and checked), and logs the outcome naming the file as name
// (a report file by its key).
func (d *Daemon) quarantineFile(path, name string, f *os.File, reason, msg string) {
	sum := sha256.Sum256([]byte(path))
	dir, err := d.quarantineOpened(reason, hex.EncodeToString(sum[:6]), []string{path}, []*os.File{f}, "reason: "+reason+"\n"+msg)
	if err != nil {
		d.log.Error().Err(d.reportKeys.Redact(err, path, name)).Str("path", name).Msg("quarantining file failed; it stays in the drop folder")
		return
	}
	d.log.Warn().Str("path", name).Str("reason", reason).Str("quarantine", dir).Msg("file quarantined")
}

// copyFile copies the regular file src to dst (which must not exist) and
// syncs it. A symbolic link at src is not followed: it is an error, so
// that a link swapped into a drop folder cannot copy a file from
// elsewhere.
func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	return copyFrom(in, dst)
}

// copyFrom copies the regular file in, from its start, to dst (which must
// not exist) and syncs it. The copy is no more readable than the source:
// its mode is the source's, at most 0640.
func copyFrom(in *os.File, dst string) error {
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", in.Name())
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm()&0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, 0, st.Size())); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
