package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	root := d.config().QuarantineDir()
	dir := filepath.Join(root, time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+dicomio.SafePathComponent(kind)+"-"+dicomio.SafePathComponent(id))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tmcad quarantine, %s\n%s\nfiles:\n", time.Now().UTC().Format(time.RFC3339), strings.TrimRight(reason, "\n"))
	var firstErr error
	used := map[string]int{}
	for _, p := range paths {
		base := filepath.Base(p)
		if n := used[base]; n > 0 {
			base = fmt.Sprintf("%d-%s", n, base)
		}
		used[filepath.Base(p)]++
		if err := copyFile(p, filepath.Join(dir, base)); err != nil {
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

// quarantineFile quarantines one drop-folder file and logs the outcome.
func (d *Daemon) quarantineFile(path, reason, msg string) {
	sum := sha256.Sum256([]byte(path))
	dir, err := d.quarantine(reason, hex.EncodeToString(sum[:6]), []string{path}, "reason: "+reason+"\n"+msg)
	if err != nil {
		d.log.Error().Err(err).Str("path", path).Msg("quarantining file failed; it stays in the drop folder")
		return
	}
	d.log.Warn().Str("path", path).Str("reason", reason).Str("quarantine", dir).Msg("file quarantined")
}

// copyFile copies src to dst (which must not exist) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
