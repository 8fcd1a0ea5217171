package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/dicomio"
	"tmcad/logging"
	"tmcad/writer"
)

// exportWindow is the schedule.export setting: always open ("immediate"),
// or open for a duration from each activation of a cron schedule.
type exportWindow struct {
	sched  cron.Schedule // nil: immediate
	length time.Duration
}

// parseSchedule parses a cron expression in the configured time zone.
// "@every D" is anchored to the Unix epoch: it fires at every multiple of
// D since 1970-01-01 00:00 UTC (for a D that divides a day: at 00:00 UTC
// and every D after), not D after whenever the daemon happened to start.
// That makes an export window "@every 6h" open at the same times on every
// node and after every restart, and lets a test drive the window with a
// period of seconds.
func parseSchedule(spec, tz string) (cron.Schedule, error) {
	if tz != "" {
		spec = "CRON_TZ=" + tz + " " + spec
	}
	s, err := config.CronParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	if every, ok := s.(cron.ConstantDelaySchedule); ok {
		return alignedEvery{every: every.Delay}, nil
	}
	return s, nil
}

// alignedEvery fires at every multiple of every since the Unix epoch.
type alignedEvery struct{ every time.Duration }

// Next returns the first multiple of every strictly after t.
func (a alignedEvery) Next(t time.Time) time.Time {
	if a.every <= 0 {
		return t.Add(time.Second)
	}
	n := t.UnixNano()
	next := n - n%int64(a.every) + int64(a.every)
	return time.Unix(0, next).In(t.Location())
}

// newExportWindow reads schedule.export and schedule.export_window.
func newExportWindow(cfg *config.Config) (exportWindow, error) {
	if cfg.Schedule.Export == "immediate" || cfg.Schedule.Export == "" {
		return exportWindow{}, nil
	}
	s, err := parseSchedule(cfg.Schedule.Export, cfg.Schedule.Timezone)
	if err != nil {
		return exportWindow{}, fmt.Errorf("schedule.export: %w", err)
	}
	return exportWindow{sched: s, length: cfg.Schedule.ExportWindow.Duration}, nil
}

// open reports whether the window is open at t: some activation lies in
// (t-length, t].
func (w exportWindow) open(t time.Time) bool {
	if w.sched == nil {
		return true
	}
	return !w.sched.Next(t.Add(-w.length)).After(t)
}

// nextOpen returns t when the window is open, else its next opening.
func (w exportWindow) nextOpen(t time.Time) time.Time {
	if w.open(t) {
		return t
	}
	return w.sched.Next(t)
}

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
		if filepath.Ext(name) == ".dcm" && !IgnoredName(name) {
			var n int
			// A SEG waiting for export, or an object made with one.
			p, sop := filepath.Join(dir, name), strings.TrimSuffix(name, ".dcm")
			if err := d.store.queryRow(ctx, `SELECT
				(SELECT COUNT(*) FROM tmcad_seg WHERE (outbox_path = ? OR sop_uid = ?) AND stored_at = 0) +
				(SELECT COUNT(*) FROM tmcad_companion c JOIN tmcad_seg s ON s.sop_uid = c.seg_sop_uid
					WHERE (c.outbox_path = ? OR c.sop_uid = ?) AND c.stored_at = 0)`,
				p, sop, p, sop).Scan(&n); err != nil {
				return removed, fmt.Errorf("outbox: looking up %s: %w", name, err)
			}
			if n > 0 {
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
	return time.Now().Add(backoff(2*time.Second, 2*time.Minute, job.Attempt))
}

// Timeout bounds one export attempt.
func (w *exportWorker) Timeout(*river.Job[ExportArgs]) time.Duration {
	c := w.d.config()
	return c.Archive.Timeout.Duration*time.Duration(c.Archive.MaxRetries+1) + 30*time.Second
}

// Work exports one SEG.
func (w *exportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	d := w.d
	win, err := newExportWindow(d.config())
	if err != nil {
		return err
	}
	if now := d.now(); !win.open(now) {
		return river.JobSnooze(win.nextOpen(now).Sub(now))
	}
	seg, err := d.cat.seg(ctx, job.Args.SOPUID)
	if err != nil {
		return river.JobCancel(err)
	}
	log := logging.Series{StudyUID: seg.StudyUID, SeriesUID: seg.SourceSeriesUID, JobID: job.ID}.Logger(d.log)
	if !seg.StoredAt.IsZero() {
		return nil
	}
	// The SEG's companions first: the SEG stored marks the series done.
	comps, err := d.cat.unstoredCompanions(ctx, seg.SOPUID)
	if err != nil {
		return err
	}
	for _, c := range comps {
		if err := w.put(ctx, c.Kind, c.StudyUID, c.SeriesUID, c.SOPUID, c.OutboxPath); err != nil {
			return w.failed(ctx, job, log, seg, c.Kind, err)
		}
		if err := d.cat.markCompanionStored(ctx, c.SOPUID); err != nil {
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
	if err := d.cat.markStored(ctx, seg.SOPUID, seg.SourceSeriesUID, d.sink.Name()); err != nil {
		return err
	}
	d.metrics.segsStored.Inc()
	log.Info().Str("seg_sop_uid", seg.SOPUID).Str("archive", d.sink.Name()).Msg("SEG stored")
	if err := d.cat.clearExportError(ctx, seg.SOPUID); err != nil {
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
func (w *exportWorker) failed(ctx context.Context, job *river.Job[ExportArgs], log zerolog.Logger, seg segRow, kind string, err error) error {
	d := w.d
	if errors.Is(ctx.Err(), context.Canceled) {
		// Shutting down: hand the job back without counting a failure.
		return river.JobSnooze(0)
	}
	class := ClassTransient
	if writer.IsPermanent(err) {
		class = ClassPermanent
	}
	d.metrics.exportFailures.WithLabelValues(class.String()).Inc()
	msg := oneLine(err.Error())
	// The context may have run out (the attempt's timeout): the record
	// must still be written.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	n, cerr := d.cat.exportFailed(rctx, seg.SOPUID, class.String(), msg)
	if cerr != nil {
		log.Error().Err(cerr).Msg("recording the export error")
		n = snoozes(job.JobRow) + 1
	}
	ev := log.With().Str("seg_sop_uid", seg.SOPUID).Str("kind", kind).Str("archive", d.sink.Name()).Int("attempts", n).Logger()
	if class == ClassPermanent {
		ev.Error().Err(err).Msg("the archive refused the object; the export failed and the SEG stays in the outbox")
		if serr := d.cat.setFailed(rctx, seg.SourceSeriesUID, class.String(), reasonExportRejected, msg); serr != nil {
			ev.Error().Err(serr).Msg("marking the series failed")
		}
		return river.JobCancel(err)
	}
	limit := d.config().Archive.RetryMaxInterval.Duration
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	wait := backoff(min(2*time.Second, limit), limit, n)
	if errors.Is(err, writer.ErrArchiveMissing) {
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

// exportWindowWorker runs when the export window opens: every SEG still in
// the outbox gets an export job, and export jobs already waiting for the
// window (scheduled at its opening, or retrying after an archive error)
// are made available at once. Without that they would wait for River's
// scheduler, which promotes scheduled jobs only every few seconds, and a
// short window could close before they ran.
type exportWindowWorker struct {
	river.WorkerDefaults[ExportWindowArgs]
	d *Daemon
}

// Work queues the outbox.
func (w *exportWindowWorker) Work(ctx context.Context, _ *river.Job[ExportWindowArgs]) error {
	d := w.d
	win, err := newExportWindow(d.config())
	if err != nil {
		return err
	}
	if !win.open(d.now()) {
		// RunOnStart outside the window: the export jobs already wait for
		// its next opening.
		return nil
	}
	segs, err := d.cat.unstoredSEGs(ctx)
	if err != nil {
		return err
	}
	for _, s := range segs {
		res, err := d.client.Insert(ctx, ExportArgs{SOPUID: s.SOPUID}, nil)
		if err != nil {
			return fmt.Errorf("queue: inserting export job: %w", err)
		}
		if res.UniqueSkippedAsDuplicate && res.Job != nil {
			switch res.Job.State {
			case rivertype.JobStateScheduled, rivertype.JobStateRetryable:
				if _, err := d.client.JobRetry(ctx, res.Job.ID); err != nil {
					return fmt.Errorf("queue: making export job %d available: %w", res.Job.ID, err)
				}
			}
		}
	}
	d.log.Info().Int("segs", len(segs)).Msg("export window open")
	return nil
}

// periodicJobs are the schedules: the export window and the reprocessing.
func (d *Daemon) periodicJobs(cfg *config.Config) ([]*river.PeriodicJob, error) {
	var out []*river.PeriodicJob
	win, err := newExportWindow(cfg)
	if err != nil {
		return nil, err
	}
	if win.sched != nil {
		out = append(out, river.NewPeriodicJob(win.sched, func() (river.JobArgs, *river.InsertOpts) {
			return ExportWindowArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "export_window", RunOnStart: true}))
	}
	if cfg.Schedule.Reprocess != "" {
		s, err := parseSchedule(cfg.Schedule.Reprocess, cfg.Schedule.Timezone)
		if err != nil {
			return nil, fmt.Errorf("schedule.reprocess: %w", err)
		}
		out = append(out, river.NewPeriodicJob(s, func() (river.JobArgs, *river.InsertOpts) {
			return ReprocessArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "reprocess"}))
	}
	return out, nil
}
