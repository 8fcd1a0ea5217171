package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"tmcad/dicomio"
	"tmcad/logging"
	"tmcad/reports"
)

// srClassPrefix is the SOP Class UID prefix of DICOM Structured Reports.
const srClassPrefix = "1.2.840.10008.5.1.4.1.1.88."

// ingestLoop catalogues the stable files the watcher sends.
func (d *Daemon) ingestLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-d.watcher.Events():
			if !ok {
				return nil
			}
			if err := d.ingest(ctx, ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d.metrics.errors.WithLabelValues("catalog").Inc()
				d.log.Error().Err(err).Str("path", ev.Path).Msg("cataloguing file failed; it is retried at the next rescan")
			}
		}
	}
}

// ingest catalogues one file: a DICOM instance, a DICOM SR report, or a
// report in the reports folder. Unreadable files and SOP Instance UID
// conflicts are copied to quarantine.
func (d *Daemon) ingest(ctx context.Context, ev FileEvent) error {
	seen, err := d.cat.fileSeen(ctx, ev.Path, ev.Size, ev.ModTime)
	if err != nil || seen {
		return err
	}
	cfg := d.config()
	if ev.Root != "" && ev.Root == absOrSelf(cfg.Watch.ReportsDir) && ev.Root != absOrSelf(cfg.Watch.DICOMDir) {
		return d.ingestReport(ctx, ev)
	}
	h, err := dicomio.ReadHeader(ev.Path)
	if err != nil {
		d.metrics.filesSeen.WithLabelValues("unreadable").Inc()
		d.metrics.errors.WithLabelValues("unreadable").Inc()
		d.quarantineFile(ev.Path, "unreadable", fmt.Sprintf("not a readable DICOM file: %v", err))
		return d.cat.markFile(ctx, ev.Path, ev.Size, ev.ModTime, "unreadable", "")
	}
	if strings.HasPrefix(h.SOPClassUID, srClassPrefix) || h.Modality == "SR" {
		return d.ingestReport(ctx, ev)
	}
	if !h.HasPixelData {
		d.metrics.filesSeen.WithLabelValues("ignored").Inc()
		return d.cat.markFile(ctx, ev.Path, ev.Size, ev.ModTime, "not_image", h.SOPInstanceUID)
	}
	if h.SOPInstanceUID == "" || h.SeriesInstanceUID == "" || h.StudyInstanceUID == "" {
		d.metrics.filesSeen.WithLabelValues("unreadable").Inc()
		d.metrics.errors.WithLabelValues("missing_uid").Inc()
		d.quarantineFile(ev.Path, "missing_uid", "the file lacks a SOP, Series or Study Instance UID")
		return d.cat.markFile(ctx, ev.Path, ev.Size, ev.ModTime, "unreadable", "")
	}
	sum, err := fileSHA256(ev.Path)
	if err != nil {
		return err
	}
	if abs, err := filepath.Abs(h.Path); err == nil {
		h.Path = abs
	}
	out, existing, err := d.cat.addInstance(ctx, h, sum)
	if err != nil {
		return err
	}
	log := logging.Series{StudyUID: h.StudyInstanceUID, SeriesUID: h.SeriesInstanceUID}.Logger(d.log)
	kind := "dicom"
	switch out {
	case addedConflict:
		kind = "conflict"
		d.metrics.errors.WithLabelValues("conflict").Inc()
		log.Warn().Str("sop_uid", h.SOPInstanceUID).Str("path", ev.Path).Str("catalogued_path", existing).
			Msg("SOP Instance UID already catalogued with different content; the new file is quarantined, not used")
		d.quarantineFile(ev.Path, "conflict", fmt.Sprintf("SOP Instance UID %s is already catalogued from %s with different content; the first one is kept", h.SOPInstanceUID, existing))
	case addedDuplicate:
		kind = "duplicate"
		log.Debug().Str("sop_uid", h.SOPInstanceUID).Str("path", ev.Path).Msg("duplicate instance ignored")
	case addedLate:
		log.Warn().Str("sop_uid", h.SOPInstanceUID).Msg("instance arrived after its series was queued; it is catalogued but not in the SEG (use tmcad reprocess --series)")
	}
	d.metrics.filesSeen.WithLabelValues(kind).Inc()
	return d.cat.markFile(ctx, ev.Path, ev.Size, ev.ModTime, kind, h.SOPInstanceUID)
}

// ingestReport catalogues the report(s) in one file.
func (d *Daemon) ingestReport(ctx context.Context, ev FileEvent) error {
	reps, err := d.reader.ReadFile(ev.Path)
	if err != nil {
		reason := "unreadable_report"
		if errors.Is(err, reports.ErrNotReport) {
			reason = "not_a_report"
		}
		d.metrics.filesSeen.WithLabelValues("unreadable").Inc()
		d.metrics.errors.WithLabelValues(reason).Inc()
		d.quarantineFile(ev.Path, reason, err.Error())
		return d.cat.markFile(ctx, ev.Path, ev.Size, ev.ModTime, "unreadable", "")
	}
	if _, err := d.store.exec(ctx, `DELETE FROM tmcad_report WHERE path = ?`, ev.Path); err != nil {
		return fmt.Errorf("catalog: replacing reports of %s: %w", ev.Path, err)
	}
	for i := range reps {
		if err := d.cat.addReport(ctx, &reps[i], i); err != nil {
			return err
		}
		d.log.Info().Str("study_uid", reps[i].StudyInstanceUID).Str("report", ev.Path).Str("report_hash", reps[i].Hash()[:16]).
			Str("format", reps[i].Format).Msg("report catalogued")
	}
	d.metrics.filesSeen.WithLabelValues("report").Inc()
	return d.cat.markFile(ctx, ev.Path, ev.Size, ev.ModTime, "report", "")
}

// fileSHA256 hashes a file's content.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// absOrSelf returns the absolute form of p (p itself on error).
func absOrSelf(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
