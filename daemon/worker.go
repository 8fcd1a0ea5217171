package daemon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/rs/zerolog"

	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"
	"tmcad/dicomio"
	"tmcad/internal/backoff"
	"tmcad/logging"
	"tmcad/reports"
)

// processWorker runs ProcessArgs jobs: one series through the Processor,
// the SEG into the outbox, then an export job.
type processWorker struct {
	river.WorkerDefaults[ProcessArgs]
	d *Daemon
}

// NextRetry doubles the delay from Options.RetryBase, capped at 30 minutes.
func (w *processWorker) NextRetry(job *river.Job[ProcessArgs]) time.Time {
	return time.Now().Add(backoff.Delay(w.d.opts.RetryBase, 30*time.Minute, job.Attempt))
}

// Timeout: inference may take long; shutdown cancels through the context.
func (w *processWorker) Timeout(*river.Job[ProcessArgs]) time.Duration { return -1 }

// Work processes one series.
func (w *processWorker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	d := w.d
	defer d.jobs.start(job.ID)()
	a := job.Args
	log := logging.Series{StudyUID: a.StudyUID, SeriesUID: a.SeriesUID, JobID: job.ID}.Logger(d.log)
	if a.ModelVersion != d.model.Version {
		// Queued for a model no longer loaded: queue it for this one.
		log.Info().Str("queued_for", a.ModelVersion).Str("loaded", d.model.Version).Msg("job was queued for another model version; re-queueing for the loaded one")
		s, err := d.cat.Series(ctx, a.SeriesUID)
		if err != nil {
			return err
		}
		if _, err := d.enqueue(ctx, s, nil, d.model.Version, a.Rerun); err != nil {
			return err
		}
		return river.JobCancel(fmt.Errorf("model version %s is not loaded", a.ModelVersion))
	}
	// A crash after the SEG was written but before the job was marked
	// completed must not produce a second SEG.
	if seg, err := d.cat.SEGFor(ctx, a.SeriesUID, a.ModelVersion, a.Rerun); err != nil {
		return err
	} else if seg != nil {
		log.Info().Str("seg_sop_uid", seg.SOPUID).Msg("SEG already made for this job; only its export is ensured")
		return d.queueExport(ctx, seg.SOPUID)
	}
	if err := d.cat.SetJob(ctx, a.SeriesUID, job.ID); err != nil {
		return err
	}
	s, err := d.cat.Series(ctx, a.SeriesUID)
	if errors.Is(err, sql.ErrNoRows) {
		return d.fail(ctx, job, pipeline.Permanent("not_catalogued", err))
	}
	if err != nil {
		// The database is unreachable (restarting, say): tried again.
		return err
	}
	// The inputs are fixed now: retention later touches only instances
	// catalogued by this time.
	listed := d.now()
	paths, err := d.cat.InstancePaths(ctx, a.SeriesUID)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return d.fail(ctx, job, pipeline.Permanent("no_instances", errors.New("no instance of the series is catalogued")))
	}
	if slices.Contains(paths, "") {
		return d.fail(ctx, job, pipeline.Permanent("inputs_deleted", errInputsDeleted))
	}
	sel := Selector(d.config(), d.model.Modalities)
	sj := pipeline.SeriesJob{JobID: job.ID, Attempt: job.Attempt, StudyUID: a.StudyUID, SeriesUID: a.SeriesUID, Paths: paths, ModelVersion: a.ModelVersion, Select: &sel}
	rep, err := d.loadReport(ctx, s)
	if err != nil {
		return d.fail(ctx, job, err)
	}
	if rep == nil && d.textRequired(d.config()) {
		return d.fail(ctx, job, pipeline.Transient("report_missing", errors.New("the matched report can no longer be read")))
	}
	sj.Report = rep

	start := time.Now()
	res, err := d.proc.Process(ctx, sj)
	if err != nil {
		return d.processFailed(ctx, job, log, err)
	}
	inf := res.Summary.Inference
	if inf == 0 {
		inf = time.Since(start)
	}
	d.metrics.inference.Observe(inf.Seconds())
	return d.recordResult(ctx, job, log, res, listed, inf)
}

// processFailed handles a Processor error: a shutdown hands the job back,
// a series the files themselves leave out is skipped, anything else is a
// failed attempt (fail).
func (d *Daemon) processFailed(ctx context.Context, job *river.Job[ProcessArgs], log zerolog.Logger, err error) error {
	if ctx.Err() != nil {
		// Shutting down: hand the job back without using up an attempt.
		log.Info().Msg("job interrupted by shutdown; handed back to the queue")
		return river.JobSnooze(0)
	}
	var notSelected *dicomio.SkippedError
	if errors.As(err, &notSelected) {
		// The files themselves decide it (every instance a localizer,
		// say), under the rules `tmcad process` applies: a decision,
		// not a failure.
		log.Debug().Str("reason", notSelected.Reason).Msg("series not selected")
		return d.cat.SetState(ctx, job.Args.SeriesUID, catalog.StateSkipped, notSelected.Reason)
	}
	return d.fail(ctx, job, err)
}

// recordResult puts what the job made into the outbox and the catalogue
// (the companions before the SEG) and queues its export; a series with no
// SEG is done. listed is when the job fixed its inputs, inf the time the
// model took.
func (d *Daemon) recordResult(ctx context.Context, job *river.Job[ProcessArgs], log zerolog.Logger, res pipeline.Result, listed time.Time, inf time.Duration) error {
	a := job.Args
	note := guideNote(res.Summary)
	if res.Summary.Guide != "" {
		log = log.With().Str("guide", res.Summary.Guide).Logger()
	}
	if res.Summary.NoTarget {
		log.Info().Bool("empty_seg", res.SEG != nil).Msg("the report describes no target; the model did not run")
	}
	if res.SEG == nil {
		if !res.Summary.NoTarget {
			log.Info().Int("frames", res.Summary.Frames).Msg("nothing segmented and seg.write_when_empty = false; series done without a SEG")
			note = "nothing segmented; no SEG written; " + note
		}
		return d.cat.SetState(ctx, a.SeriesUID, catalog.StateDone, note)
	}
	path, err := d.writeOutbox(res.SOPInstanceUID, res.SEG)
	if err != nil {
		return d.fail(ctx, job, pipeline.Transient("outbox", err))
	}
	// The SEG's companions are recorded before the SEG: once its row
	// exists, everything its export job has to store is known.
	for _, c := range res.Companions {
		cpath, err := d.writeOutbox(c.SOPInstanceUID, c.Data)
		if err != nil {
			return d.fail(ctx, job, pipeline.Transient("outbox", err))
		}
		if err := d.cat.AddCompanion(ctx, catalog.Companion{
			SOPUID: c.SOPInstanceUID, SEGSOPUID: res.SOPInstanceUID, Kind: c.Kind,
			StudyUID: c.StudyUID, SeriesUID: c.SeriesUID, OutboxPath: cpath,
		}); err != nil {
			return err
		}
	}
	if err := d.cat.AddSEG(ctx, catalog.SEG{
		SOPUID: res.SOPInstanceUID, StudyUID: a.StudyUID, SegSeriesUID: res.SeriesUID, SourceSeriesUID: a.SeriesUID,
		ModelVersion: a.ModelVersion, Rerun: a.Rerun, OutboxPath: path, CreatedAt: listed, Note: note,
	}); err != nil {
		return err
	}
	log.Info().Str("seg_sop_uid", res.SOPInstanceUID).Int("companions", len(res.Companions)).Int("frames", res.Summary.Frames).Int("non_empty_frames", res.Summary.NonEmptyFrames).
		Float64("inference_s", inf.Seconds()).Str("execution_provider", res.Summary.ExecutionProvider).Msg("SEG made; waiting in the outbox for export")
	return d.queueExport(ctx, res.SOPInstanceUID)
}

// guideNote is the series' reason in the catalog after a run: how its
// report became the guide text (the rule, never the text).
func guideNote(sum pipeline.Summary) string {
	switch {
	case sum.NoTarget:
		return "no target described; model not run (guide: " + sum.Guide + ")"
	case sum.Guide != "":
		return "guide: " + sum.Guide
	}
	return "no report"
}

// errInputsDeleted says why a series cannot be processed again.
var errInputsDeleted = errors.New("the series' files were deleted after its SEG was stored (retention.inputs = delete); it cannot be processed again")

// loadReport re-reads the best report for the series now (a corrected
// report may have replaced the one seen at queueing). Nil when none.
func (d *Daemon) loadReport(ctx context.Context, s catalog.Series) (*reports.Report, error) {
	ref, err := d.cat.MatchReport(ctx, s)
	if err != nil || ref == nil {
		return nil, err
	}
	if ref.Conflict != "" {
		slog := logging.Series{StudyUID: s.StudyUID, SeriesUID: s.SeriesUID}.Logger(d.log)
		slog.Warn().Str("conflict", ref.Conflict).Msg("two different reports of equal status for the study; the choice follows the content hash")
	}
	path, ok := d.reportKeys.Path(ref.Path, d.config().Watch.ReportsDir)
	if !ok {
		return nil, pipeline.Transient("report_unreadable", fmt.Errorf("report %s: no such file in the reports folder (moved or removed since it was catalogued)", ref.Path))
	}
	reps, err := d.reader.ReadFile(path)
	if err != nil {
		return nil, pipeline.Transient("report_unreadable", d.reportKeys.Redact(err, path, ref.Path))
	}
	if ref.Idx >= len(reps) {
		return nil, pipeline.Transient("report_changed", fmt.Errorf("report file %s changed since it was catalogued", ref.Path))
	}
	r := reps[ref.Idx]
	r.Source = ref.Path // the key: errors that name the report stay free of its file name
	return &r, nil
}

// fail records a failed attempt: a permanent error, or the last attempt
// of a transient one, fails the series and copies its inputs to
// quarantine. It returns what River should see.
func (d *Daemon) fail(ctx context.Context, job *river.Job[ProcessArgs], err error) error {
	a := job.Args
	log := logging.Series{StudyUID: a.StudyUID, SeriesUID: a.SeriesUID, JobID: job.ID}.Logger(d.log)
	reason := pipeline.ErrorReason(err)
	d.metrics.errors.WithLabelValues(reason).Inc()
	perm := pipeline.IsPermanent(err)
	last := job.Attempt >= job.MaxAttempts
	if !perm && !last {
		log.Warn().Err(err).Str("reason", reason).Int("attempt", job.Attempt).Int("max_attempts", job.MaxAttempts).Msg("job failed; it will be retried")
		return err
	}
	class := pipeline.ClassTransient
	if perm {
		class = pipeline.ClassPermanent
	}
	log.Error().Err(err).Str("reason", reason).Str("class", class.String()).Int("attempt", job.Attempt).Msg("job failed for good; inputs copied to quarantine")
	paths, _ := d.cat.InstancePaths(ctx, a.SeriesUID)
	paths = slices.DeleteFunc(paths, func(p string) bool { return p == "" }) // deleted by retention
	if s, serr := d.cat.Series(ctx, a.SeriesUID); serr == nil {
		if ref, _ := d.cat.MatchReport(ctx, s); ref != nil {
			if p, ok := d.reportKeys.Path(ref.Path, d.config().Watch.ReportsDir); ok {
				paths = append(paths, p)
			}
		}
	}
	msg := fmt.Sprintf("series %s (study %s), job %d, attempt %d of %d\nclass: %s\nreason: %s\nerror: %v\n",
		a.SeriesUID, a.StudyUID, job.ID, job.Attempt, job.MaxAttempts, class, reason, err)
	if dir, qerr := d.quarantine("series", a.SeriesUID, paths, msg); qerr != nil {
		log.Error().Err(qerr).Msg("copying inputs to quarantine failed; the inputs stay where they are")
	} else {
		log.Info().Str("quarantine", dir).Msg("inputs quarantined")
	}
	if serr := d.cat.SetFailed(ctx, a.SeriesUID, class.String(), reason, err.Error()); serr != nil {
		return serr
	}
	if perm {
		return river.JobCancel(err)
	}
	return err
}
