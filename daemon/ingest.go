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
	"time"

	"tmcad/daemon/catalog"
	"tmcad/daemon/watch"
	"tmcad/dicomio"
	"tmcad/logging"
	"tmcad/reports"
)

// ingestLoop catalogues the stable files the watcher sends. While
// ingestion is paused (pressureLoop) it reads nothing: the files wait in
// the drop folders.
func (d *Daemon) ingestLoop(ctx context.Context) error {
	for {
		open, changed := d.gate.state()
		if !open {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			// Paused meanwhile: checked again at the top.
		case ev, ok := <-d.watcher.Events():
			if !ok {
				return nil
			}
			name := d.fileName(ev)
			err := d.reportKeys.Redact(d.ingest(ctx, ev, name), ev.Path, name)
			if err != nil && ctx.Err() != nil {
				return nil
			}
			d.watcher.Done(ev, err)
			if !errors.Is(err, errIncomplete) {
				d.forgetIncomplete(ev.Path)
			}
			var fe *fileReadError
			switch {
			case errors.Is(err, errIncomplete):
				// Read again when it grows, or at the next retry.
			case err == nil:
				d.setFault(faultCatalog, "")
			case errors.As(err, &fe):
				d.metrics.errors.WithLabelValues("catalog").Inc()
				d.log.Error().Err(err).Str("path", name).Msg("reading file failed; it is retried")
			default:
				d.metrics.errors.WithLabelValues("catalog").Inc()
				d.setFault(faultCatalog, "the catalogue cannot be written (state_dir or queue.database_url): "+pathlessCause(err))
				d.log.Error().Err(err).Str("path", name).Msg("cataloguing file failed; it is retried")
			}
		}
	}
}

// inReportsFolder reports whether ev is a file of the reports folder
// (when that is not also the DICOM folder).
func (d *Daemon) inReportsFolder(ev watch.FileEvent) bool {
	cfg := d.config()
	return ev.Root != "" && ev.Root == absOrSelf(cfg.Watch.ReportsDir) && ev.Root != absOrSelf(cfg.Watch.DICOMDir)
}

// fileName is how logs, errors and the catalogue name the file of ev: a
// report file by its key (its name is usually an accession number), any
// other file by its path.
func (d *Daemon) fileName(ev watch.FileEvent) string {
	if d.inReportsFolder(ev) {
		return d.reportKeys.Key(ev.Path)
	}
	return ev.Path
}

// ingest catalogues one file: a DICOM instance, a DICOM SR report, or a
// report in the reports folder; name is the file's name for the catalogue
// and logs (fileName). Unreadable files and SOP Instance UID conflicts are
// copied to quarantine.
func (d *Daemon) ingest(ctx context.Context, ev watch.FileEvent, name string) error {
	seen, err := d.cat.FileSeen(ctx, name, ev.Size, ev.ModTime)
	if err != nil || seen {
		return err
	}
	f, err := watch.Open(ev)
	if errors.Is(err, watch.ErrReplaced) {
		// Not the file whose size was checked: a symbolic link or another
		// file put in its place. A regular file there is sent again.
		d.log.Warn().Err(d.reportKeys.Redact(err, ev.Path, name)).Str("path", name).Msg("file replaced since its size check; not read")
		return nil
	}
	if err != nil {
		return &fileReadError{err}
	}
	defer f.Close()
	if d.inReportsFolder(ev) {
		return d.ingestReport(ctx, ev, name, f)
	}
	h, err := dicomio.ReadHeaderFrom(ev.Path, f)
	if err != nil {
		if errors.Is(err, dicomio.ErrTruncated) && d.waitIncomplete(ev.Path, name) {
			return errIncomplete
		}
		d.metrics.filesSeen.WithLabelValues("unreadable").Inc()
		d.metrics.errors.WithLabelValues("unreadable").Inc()
		d.quarantineFile(ev.Path, name, f, "unreadable", fmt.Sprintf("not a readable DICOM file: %v", err))
		return d.cat.MarkFile(ctx, ev.Path, ev.Size, ev.ModTime, "unreadable", "")
	}
	if reports.IsSR(h.SOPClassUID, h.Modality) {
		return d.ingestReport(ctx, ev, name, f)
	}
	if !h.HasPixelData {
		d.metrics.filesSeen.WithLabelValues("ignored").Inc()
		return d.cat.MarkFile(ctx, ev.Path, ev.Size, ev.ModTime, "not_image", h.SOPInstanceUID)
	}
	if h.SOPInstanceUID == "" || h.SeriesInstanceUID == "" || h.StudyInstanceUID == "" {
		d.metrics.filesSeen.WithLabelValues("unreadable").Inc()
		d.metrics.errors.WithLabelValues("missing_uid").Inc()
		d.quarantineFile(ev.Path, name, f, "missing_uid", "the file lacks a SOP, Series or Study Instance UID")
		return d.cat.MarkFile(ctx, ev.Path, ev.Size, ev.ModTime, "unreadable", "")
	}
	sum, err := fileSHA256(ev.Path, f)
	if err != nil {
		return &fileReadError{err}
	}
	if abs, err := filepath.Abs(h.Path); err == nil {
		h.Path = abs
	}
	// The instance and its file are recorded in one transaction; what the
	// outcome calls for (quarantine of a conflicting copy, a warning)
	// follows. The file stays in the drop folder either way.
	out, existing, err := d.cat.AddInstanceFile(ctx, h, sum, ev.Path, ev.Size, ev.ModTime)
	if err != nil {
		return err
	}
	log := logging.Series{StudyUID: h.StudyInstanceUID, SeriesUID: h.SeriesInstanceUID}.Logger(d.log)
	switch out {
	case catalog.AddedConflict:
		d.metrics.errors.WithLabelValues("conflict").Inc()
		log.Warn().Str("sop_uid", h.SOPInstanceUID).Str("path", ev.Path).Str("catalogued_path", existing).
			Msg("SOP Instance UID already catalogued with different content; the new file is quarantined, not used")
		d.quarantineFile(ev.Path, name, f, "conflict", fmt.Sprintf("SOP Instance UID %s is already catalogued from %s with different content; the first one is kept", h.SOPInstanceUID, existing))
	case catalog.AddedDuplicate:
		log.Debug().Str("sop_uid", h.SOPInstanceUID).Str("path", ev.Path).Msg("duplicate instance ignored")
	case catalog.AddedLate:
		log.Warn().Str("sop_uid", h.SOPInstanceUID).Msg("instance arrived after its series was queued; it is catalogued but not in the SEG (use tmcad reprocess --series)")
	}
	d.metrics.filesSeen.WithLabelValues(out.FileKind()).Inc()
	return nil
}

// ingestReport catalogues the report(s) in one file, read from f, under
// name (fileName).
func (d *Daemon) ingestReport(ctx context.Context, ev watch.FileEvent, name string, f *os.File) error {
	reps, err := d.reader.ReadFrom(ev.Path, f)
	if err != nil {
		err = d.reportKeys.Redact(err, ev.Path, name)
		reason := "unreadable_report"
		if errors.Is(err, reports.ErrNotReport) {
			reason = "not_a_report"
		}
		d.metrics.filesSeen.WithLabelValues("unreadable").Inc()
		d.metrics.errors.WithLabelValues(reason).Inc()
		d.quarantineFile(ev.Path, name, f, reason, err.Error())
		return d.cat.MarkFile(ctx, name, ev.Size, ev.ModTime, "unreadable", "")
	}
	if err := d.cat.ForgetReports(ctx, name); err != nil {
		return err
	}
	for i := range reps {
		reps[i].Source = name
		if err := d.cat.AddReport(ctx, &reps[i], i); err != nil {
			return err
		}
		d.log.Info().Str("study_uid", reps[i].StudyInstanceUID).Str("report", name).Str("report_hash", reps[i].Hash()[:16]).
			Str("format", reps[i].Format).Msg("report catalogued")
	}
	d.metrics.filesSeen.WithLabelValues("report").Inc()
	return d.cat.MarkFile(ctx, name, ev.Size, ev.ModTime, "report", "")
}

// fileReadError is an ingest failure reading the dropped file itself, not
// writing the catalogue.
type fileReadError struct{ err error }

// Error returns the read error's message.
func (e *fileReadError) Error() string { return e.err.Error() }

// Unwrap returns the read error.
func (e *fileReadError) Unwrap() error { return e.err }

// errIncomplete: the file ends inside an element and is waited for
// (watch.incomplete_wait): it is read again when it grows, or retried.
var errIncomplete = errors.New("the file ends early; waiting for the rest")

// waitIncomplete records that the file at path was found truncated and
// reports whether to keep waiting for it: until watch.incomplete_wait has
// passed since it was first found so.
func (d *Daemon) waitIncomplete(path, name string) bool {
	limit := d.config().Watch.IncompleteWait.Duration
	now := d.now()
	d.incompleteMu.Lock()
	defer d.incompleteMu.Unlock()
	first, ok := d.incomplete[path]
	if !ok {
		if d.incomplete == nil {
			d.incomplete = map[string]time.Time{}
		}
		d.incomplete[path] = now
		first = now
		if limit > 0 {
			d.log.Info().Str("path", name).Dur("incomplete_wait", limit).Msg("file ends early (still being written?); waiting for the rest")
		}
	}
	return now.Sub(first) < limit
}

// forgetIncomplete ends the wait for a file read (or given up on).
func (d *Daemon) forgetIncomplete(path string) {
	d.incompleteMu.Lock()
	delete(d.incomplete, path)
	d.incompleteMu.Unlock()
}

// fileSHA256 hashes the content of f (opened from path), from its start.
func fileSHA256(path string, f *os.File) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
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
