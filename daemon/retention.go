package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"tmcad/daemon/catalog"
)

// applyRetention handles the input files of the SEG seg once it is
// confirmed stored: retention.inputs keep (nothing), move (to done_dir,
// under the same relative path they had in the drop folder) or delete. It
// is never called before the SEG is stored, and it touches only the
// instances the SEG was made from: files still in the DICOM drop folder
// that were catalogued before the job fixed its inputs (an instance that
// arrived later is in no stored SEG and stays where it is).
func (d *Daemon) applyRetention(ctx context.Context, seg catalog.SEG) error {
	cfg := d.config()
	if cfg.Retention.Inputs != "move" && cfg.Retention.Inputs != "delete" {
		return nil
	}
	paths, err := d.cat.SEGInputs(ctx, seg.SourceSeriesUID, seg.CreatedAt)
	if err != nil {
		return err
	}
	drop := absOrSelf(cfg.Watch.DICOMDir)
	var errs []error
	for _, p := range paths {
		rel, ok := relUnder(drop, p)
		if !ok {
			// Not in the drop folder (already moved by an earlier SEG of
			// the series): not an input to retain any more.
			continue
		}
		switch cfg.Retention.Inputs {
		case "delete":
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("retention: deleting %s: %w", p, err))
				continue
			}
			if err := d.cat.RetireInstance(ctx, p); err != nil {
				errs = append(errs, err)
			}
		case "move":
			dst, err := moveInto(p, filepath.Join(absOrSelf(cfg.Retention.DoneDir), rel))
			if err != nil {
				if os.IsNotExist(err) {
					continue
				}
				errs = append(errs, fmt.Errorf("retention: moving %s: %w", p, err))
				continue
			}
			if err := d.cat.MoveInstance(ctx, p, dst); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// relUnder returns p relative to root when p lies inside root.
func relUnder(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// moveInto moves src to dst, creating dst's folder. When dst exists with
// the same content src is removed; with other content src goes to a free
// name beside it ("name-1.dcm", ...): nothing is overwritten. It returns
// where src now is.
func moveInto(src, dst string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return "", err
	}
	ext := filepath.Ext(dst)
	stem := strings.TrimSuffix(dst, ext)
	for i := 0; ; i++ {
		cand := dst
		if i > 0 {
			cand = stem + "-" + strconv.Itoa(i) + ext
		}
		switch same, err := sameFile(src, cand); {
		case err == nil && same:
			return cand, os.Remove(src)
		case err == nil:
			continue // taken by other content
		case !os.IsNotExist(err):
			return "", err
		}
		if _, err := os.Stat(src); err != nil {
			return "", err
		}
		return cand, moveFile(src, cand)
	}
}

// sameFile reports whether two files have the same content; the error is
// about b (os.IsNotExist when b does not exist).
func sameFile(a, b string) (bool, error) {
	bb, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	ab, err := os.ReadFile(a)
	if err != nil {
		return false, nil
	}
	return bytes.Equal(ab, bb), nil
}

// moveFile renames src to dst, copying across file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	} else if os.IsNotExist(err) {
		return err
	}
	if err := copyFile(src, dst); err != nil {
		return err
	}
	return os.Remove(src)
}
