package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"tmcad/daemon/watch"
	"tmcad/dicomio"
)

// writeOutbox stores a SEG in the outbox atomically and durably.
func (d *Daemon) writeOutbox(sop string, data []byte) (string, error) {
	if sop == "" {
		return "", errors.New("outbox: the SEG has no SOP Instance UID")
	}
	dir := d.outboxDir()
	// The SOP Instance UID is a DICOM attribute: one safe path component.
	final := filepath.Join(dir, dicomio.SafePathComponent(sop)+".dcm")
	tmp, err := os.CreateTemp(dir, ".seg-*.part")
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("outbox: writing %s: %w", final, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("outbox: syncing %s: %w", final, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	if df, err := os.Open(dir); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return final, nil
}

// sweepOutbox removes what a crash left in the outbox: temporary files of
// an interrupted write, SEGs (and the objects made with them) written by
// a job that died before it recorded its SEG (the job runs again and makes
// them anew), and objects already confirmed stored whose removal was cut
// short. It runs at start, before any job, while this daemon alone holds
// the state_dir. Every SEG the catalog still waits to export stays, with
// its objects.
func (d *Daemon) sweepOutbox(ctx context.Context) (int, error) {
	dir := d.outboxDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	removed := 0
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		if filepath.Ext(name) == ".dcm" && !watch.IgnoredName(name) {
			// A SEG waiting for export, or an object made with one.
			p, sop := filepath.Join(dir, name), strings.TrimSuffix(name, ".dcm")
			waiting, err := d.cat.InOutbox(ctx, p, sop)
			if err != nil {
				return removed, fmt.Errorf("outbox: %w", err)
			}
			if waiting {
				continue
			}
		} else if !strings.HasPrefix(name, ".seg-") {
			continue // not ours
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("outbox: %w", err)
		}
		removed++
	}
	return removed, nil
}
