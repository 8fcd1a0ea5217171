package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/rs/zerolog"

	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"
	"tmcad/internal/backoff"
	"tmcad/logging"
	"tmcad/writer/archive"
)

// queueExport queues the export of one SEG: at once when the window is
// open, else at its next opening.
func (d *Daemon) queueExport(ctx context.Context, sop string) error {
	win, err := newExportWindow(d.config())
	if err != nil {
		return err
	}
	opts := &river.InsertOpts{}
	if now := d.now(); !win.open(now) {
		opts.ScheduledAt = win.nextOpen(now)
	}
	if _, err := d.client.Insert(ctx, ExportArgs{SOPUID: sop}, opts); err != nil {
		return fmt.Errorf("queue: inserting export job: %w", err)
	}
	return nil
}

// exportWorker sends one SEG from the outbox to the archive, then applies
// retention to the series' inputs.
type exportWorker struct {
	river.WorkerDefaults[ExportArgs]
	d *Daemon
}

// NextRetry retries every 2s, 4s, ... up to every 2 minutes. It applies
// only to errors of tmcad's own (the catalogue); the archive's errors are
// handled by failed.
func (w *exportWorker) NextRetry(job *river.Job[ExportArgs]) time.Time {
	return time.Now().Add(backoff.Delay(2*time.Second, 2*time.Minute, job.Attempt))
}

// Timeout bounds one export attempt.
func (w *exportWorker) Timeout(*river.Job[ExportArgs]) time.Duration {
	c := w.d.config()
	return c.Archive.Timeout.Duration*time.Duration(c.Archive.MaxRetries+1) + 30*time.Second
}

// Work exports one SEG.
func (w *exportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	d := w.d
	defer d.jobs.start(job.ID)()
	win, err := newExportWindow(d.config())
	if err != nil {
		return err
	}
	if now := d.now(); !win.open(now) {
		return river.JobSnooze(win.nextOpen(now).Sub(now))
	}
	seg, err := d.cat.SEG(ctx, job.Args.SOPUID)
	if errors.Is(err, sql.ErrNoRows) {
		return river.JobCancel(err)
	}
	if err != nil {
		// The database is unreachable (restarting, say): tried again.
		return err
	}
	log := logging.Series{StudyUID: seg.StudyUID, SeriesUID: seg.SourceSeriesUID, JobID: job.ID}.Logger(d.log)
	if !seg.StoredAt.IsZero() {
		return nil
	}
	// The SEG's companions first: the SEG stored marks the series done.
	comps, err := d.cat.UnstoredCompanions(ctx, seg.SOPUID)
	if err != nil {
		return err
	}
	for _, c := range comps {
		if err := w.put(ctx, c.Kind, c.StudyUID, c.SeriesUID, c.SOPUID, c.OutboxPath); err != nil {
			return w.failed(ctx, job, log, seg, c.Kind, err)
		}
		if err := d.cat.MarkCompanionStored(ctx, c.SOPUID); err != nil {
			return err
		}
		log.Info().Str("sop_uid", c.SOPUID).Str("kind", c.Kind).Str("archive", d.sink.Name()).Msg("object made with the SEG stored")
		if err := os.Remove(c.OutboxPath); err != nil && !os.IsNotExist(err) {
			log.Warn().Err(err).Str("kind", c.Kind).Msg("removing an object from the outbox")
		}
	}
	if err := w.put(ctx, "SEG", seg.StudyUID, seg.SegSeriesUID, seg.SOPUID, seg.OutboxPath); err != nil {
		return w.failed(ctx, job, log, seg, "SEG", err)
	}
	if err := d.cat.MarkStored(ctx, seg.SOPUID, seg.SourceSeriesUID, d.sink.Name()); err != nil {
		return err
	}
	d.metrics.segsStored.Inc()
	log.Info().Str("seg_sop_uid", seg.SOPUID).Str("archive", d.sink.Name()).Msg("SEG stored")
	if err := d.cat.ClearExportError(ctx, seg.SOPUID); err != nil {
		// Harmless: status and the retrying gauge list only SEGs not stored.
		log.Warn().Err(err).Msg("forgetting the SEG's export errors")
	}
	if err := os.Remove(seg.OutboxPath); err != nil && !os.IsNotExist(err) {
		log.Warn().Err(err).Msg("removing SEG from the outbox")
	}
	if err := d.applyRetention(ctx, seg); err != nil {
		log.Error().Err(err).Msg("retention of inputs failed; they are kept")
	}
	return nil
}

// put stores one object of the outbox in the archive.
func (w *exportWorker) put(ctx context.Context, kind, study, series, sop, path string) error {
	d := w.d
	data, err := os.ReadFile(path)
	if err != nil {
		d.metrics.errors.WithLabelValues("outbox").Inc()
		return fmt.Errorf("outbox: reading the %s %s: %w", kind, sop, err)
	}
	if err := d.sink.Put(ctx, study, series, sop, data); err != nil {
		d.metrics.errors.WithLabelValues("archive").Inc()
		return fmt.Errorf("archive %s: storing the %s %s: %w", d.sink.Name(), kind, sop, err)
	}
	d.setFault(faultArchive, "")
	return nil
}

// failed records a failed export attempt of seg (while storing the object
// of kind kind) and returns what River should see. An archive refusing the
// object fails the export: the series is failed, the SEG stays in the
// outbox (`tmcad reprocess --failed` sends it again). Any other error,
// however often it comes, snoozes the job for a wait doubling from 2
// seconds up to archive.retry_max_interval: a snooze uses up no attempt,
// so the SEG is tried again without end, and /metrics
// (tmcad_export_retrying) and `tmcad status` show it meanwhile.
func (w *exportWorker) failed(ctx context.Context, job *river.Job[ExportArgs], log zerolog.Logger, seg catalog.SEG, kind string, err error) error {
	d := w.d
	if errors.Is(ctx.Err(), context.Canceled) {
		// Shutting down: hand the job back without counting a failure.
		return river.JobSnooze(0)
	}
	class := pipeline.ClassTransient
	if archive.IsPermanent(err) {
		class = pipeline.ClassPermanent
	}
	d.metrics.exportFailures.WithLabelValues(class.String()).Inc()
	msg := oneLine(err.Error())
	// The context may have run out (the attempt's timeout): the record
	// must still be written.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	n, cerr := d.cat.ExportFailed(rctx, seg.SOPUID, class.String(), msg)
	if cerr != nil {
		log.Error().Err(cerr).Msg("recording the export error")
		n = snoozes(job.JobRow) + 1
	}
	ev := log.With().Str("seg_sop_uid", seg.SOPUID).Str("kind", kind).Str("archive", d.sink.Name()).Int("attempts", n).Logger()
	if class == pipeline.ClassPermanent {
		ev.Error().Err(err).Msg("the archive refused the object; the export failed and the SEG stays in the outbox")
		if serr := d.cat.SetFailed(rctx, seg.SourceSeriesUID, class.String(), reasonExportRejected, msg); serr != nil {
			ev.Error().Err(serr).Msg("marking the series failed")
		}
		return river.JobCancel(err)
	}
	limit := d.config().Archive.RetryMaxInterval.Duration
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	wait := backoff.Delay(min(2*time.Second, limit), limit, n)
	if errors.Is(err, archive.ErrArchiveMissing) {
		// An unmounted share: /readyz says so until a store succeeds.
		d.setFault(faultArchive, fmt.Sprintf("the archive folder is missing (%s, archive.dir); SEGs wait in the outbox", d.sink.Name()))
		ev.Warn().Err(err).Dur("retry_in", wait).Msg("archive folder missing; the SEG stays in the outbox")
	} else {
		ev.Warn().Err(err).Dur("retry_in", wait).Msg("storing in the archive failed; the SEG stays in the outbox and is tried again")
	}
	return river.JobSnooze(wait)
}

// snoozes returns how many times a job was snoozed (River keeps the count
// in its metadata); 0 when unknown.
func snoozes(j *rivertype.JobRow) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	if j == nil || json.Unmarshal(j.Metadata, &m) != nil {
		return 0
	}
	return m.Snoozes
}

// oneLine keeps the first line of an error message: what goes into the
// catalogue and `tmcad status` is one line.
func oneLine(msg string) string {
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
