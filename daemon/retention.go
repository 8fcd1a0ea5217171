package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// applyRetention handles a series' input files once its SEG is confirmed
// stored: retention.inputs keep (nothing), move (to done_dir/<study>/<series>/)
// or delete. It is never called before the SEG is stored.
func (d *Daemon) applyRetention(ctx context.Context, seriesUID string) error {
	cfg := d.config()
	if cfg.Retention.Inputs == "keep" {
		return nil
	}
	s, err := d.cat.series(ctx, seriesUID)
	if err != nil {
		return err
	}
	paths, err := d.cat.instancePaths(ctx, seriesUID)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range paths {
		switch cfg.Retention.Inputs {
		case "delete":
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("retention: deleting %s: %w", p, err))
			}
		case "move":
			dir := filepath.Join(cfg.Retention.DoneDir, safeName(s.StudyUID), safeName(seriesUID))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			dst := filepath.Join(dir, filepath.Base(p))
			if err := moveFile(p, dst); err != nil {
				if os.IsNotExist(err) {
					continue
				}
				errs = append(errs, fmt.Errorf("retention: moving %s: %w", p, err))
				continue
			}
			if err := d.cat.moveInstance(ctx, p, dst); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
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
