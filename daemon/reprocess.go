package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"tmcad/config"
	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"
	"tmcad/logging"

	"github.com/riverqueue/river"
)

// reprocessWorker runs the scheduled reprocessing sweep.
type reprocessWorker struct {
	river.WorkerDefaults[ReprocessArgs]
	d *Daemon
}

// Work re-queues parked series whose report has arrived, series whose job
// failed with a transient error, and series last processed by another
// model version.
func (w *reprocessWorker) Work(ctx context.Context, job *river.Job[ReprocessArgs]) error {
	defer w.d.jobs.start(job.ID)()
	r, err := Reprocess(ctx, w.d.cat, w.d.client, w.d.model.Version, ReprocessFilter{Scheduled: true}, nil)
	if err != nil {
		return err
	}
	for _, s := range r.Skipped {
		slog := logging.Series{SeriesUID: s.SeriesUID}.Logger(w.d.log)
		slog.Info().Str("reason", s.Reason).Msg("series not reprocessed")
	}
	w.d.log.Info().Int("queued", r.Queued).Int("skipped", len(r.Skipped)).Msg("scheduled reprocessing done")
	return nil
}

// EnqueueReprocess queues the series f selects for modelVersion from
// outside the daemon (`tmcad reprocess`), through an insert-only queue
// client; a running daemon picks the jobs up.
func EnqueueReprocess(ctx context.Context, cfg *config.Config, modelVersion string, f ReprocessFilter, progress func(done, total int)) (ReprocessResult, error) {
	if f.Scheduled {
		return ReprocessResult{}, fmt.Errorf("reprocess: the scheduled sweep runs inside the daemon")
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return ReprocessResult{}, err
	}
	defer st.Close()
	client, err := st.QueueClient(&river.Config{MaxAttempts: cfg.Queue.MaxAttempts})
	if err != nil {
		return ReprocessResult{}, err
	}
	cat := catalog.New(st, time.Now)
	return Reprocess(ctx, cat, client, modelVersion, f, progress)
}

// ReprocessFilter selects series for Reprocess.
type ReprocessFilter struct {
	// Scheduled is the nightly sweep: parked series with a report now,
	// transient failures, and series done with another model version.
	Scheduled bool
	// SeriesUID or StudyUID select one series or one study, whatever its
	// state (a series already done is processed again: a second SEG).
	SeriesUID string
	StudyUID  string
	// Since selects series first seen at or after this time.
	Since time.Time
	// Failed selects failed series (transient or permanent).
	Failed bool
	// ModelOlder selects series done with another model version.
	ModelOlder bool
}

// ReprocessResult says what Reprocess did.
type ReprocessResult struct {
	// Queued counts the jobs queued.
	Queued int
	// Skipped lists selected series that cannot be processed again.
	Skipped []SkippedSeries
}

// SkippedSeries is a series Reprocess left alone, and why.
type SkippedSeries struct {
	SeriesUID, Reason string
}

// Reprocess queues the series the filter selects for modelVersion.
// Series whose inputs retention deleted are skipped, with the reason.
// progress, if not nil, is called after each series with (done, total).
func Reprocess(ctx context.Context, cat *catalog.Catalog, client catalog.QueueClient, modelVersion string, f ReprocessFilter, progress func(done, total int)) (ReprocessResult, error) {
	var res ReprocessResult
	var rows []catalog.Series
	filters, err := reprocessFilters(f, modelVersion)
	if err != nil {
		return res, err
	}
	for _, flt := range filters {
		r, err := cat.List(ctx, flt)
		if err != nil {
			return res, err
		}
		rows = append(rows, r...)
	}
	if !f.Scheduled && f.SeriesUID == "" && f.StudyUID == "" && !f.Since.IsZero() {
		// --since combined with another filter narrows it.
		kept := rows[:0]
		for _, r := range rows {
			if !r.FirstSeen.Before(f.Since) {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	for i, s := range rows {
		ref, err := cat.MatchReport(ctx, s)
		if err != nil {
			return res, err
		}
		if s.State == catalog.StateAwaitingReport && ref == nil {
			if progress != nil {
				progress(i+1, len(rows))
			}
			continue // still no report
		}
		if s.State == catalog.StateFailed && s.Reason == reasonExportRejected {
			// The SEG was made and the archive refused it: send it again
			// (the job that made it is complete and would not run again).
			ok, err := requeueRejectedExport(ctx, cat, client, s)
			if err != nil {
				return res, err
			}
			if ok {
				res.Queued++
			}
			if progress != nil {
				progress(i+1, len(rows))
			}
			continue
		}
		rerun := ""
		switch s.State {
		case catalog.StateCollecting, catalog.StateWaitingReport, catalog.StateQueued:
			// Not processed yet: the ready loop or the queue has it.
			if progress != nil {
				progress(i+1, len(rows))
			}
			continue
		case catalog.StateDone, catalog.StateExporting:
			if s.ModelVersion == modelVersion {
				// Same model again: an explicit request, tagged so that
				// uniqueness lets it through once.
				rerun = "rerun-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
		}
		deleted, err := cat.DeletedInputs(ctx, s.SeriesUID)
		if err != nil {
			return res, err
		}
		if deleted > 0 {
			res.Skipped = append(res.Skipped, SkippedSeries{s.SeriesUID, errInputsDeleted.Error()})
			if progress != nil {
				progress(i+1, len(rows))
			}
			continue
		}
		ok, err := enqueueSeries(ctx, cat, client, s, ref, modelVersion, rerun)
		if err != nil {
			return res, err
		}
		if ok {
			res.Queued++
		}
		if progress != nil {
			progress(i+1, len(rows))
		}
	}
	return res, nil
}

// reprocessFilters are the catalogue queries that select the series of f.
func reprocessFilters(f ReprocessFilter, modelVersion string) ([]catalog.Filter, error) {
	olderModel := catalog.Filter{States: []string{catalog.StateDone, catalog.StateExporting}, OtherModel: true, ModelVersion: modelVersion}
	switch {
	case f.Scheduled:
		return []catalog.Filter{
			{States: []string{catalog.StateAwaitingReport}},
			{States: []string{catalog.StateFailed}, ErrorClass: pipeline.ClassTransient.String()},
			olderModel,
		}, nil
	case f.SeriesUID != "":
		return []catalog.Filter{{SeriesUID: f.SeriesUID}}, nil
	case f.StudyUID != "":
		return []catalog.Filter{{StudyUID: f.StudyUID}}, nil
	case f.Failed:
		return []catalog.Filter{{States: []string{catalog.StateFailed}}}, nil
	case f.ModelOlder:
		return []catalog.Filter{olderModel}, nil
	case !f.Since.IsZero():
		return []catalog.Filter{{FirstSeenSince: f.Since}}, nil
	default:
		return nil, errors.New("reprocess: nothing selected")
	}
}

// reasonExportRejected is the reason of a series whose SEG the archive
// refused.
const reasonExportRejected = "export_rejected"

// requeueRejectedExport queues the export of the SEG the archive refused
// for series s again, and marks the series exporting; false when the
// series has no SEG waiting in the outbox.
func requeueRejectedExport(ctx context.Context, cat *catalog.Catalog, client catalog.QueueClient, s catalog.Series) (bool, error) {
	sop, ok, err := cat.UnstoredSEGOf(ctx, s.SeriesUID)
	if err != nil || !ok {
		return false, err
	}
	if err := cat.ClearExportError(ctx, sop); err != nil {
		return false, err
	}
	if err := cat.SetState(ctx, s.SeriesUID, catalog.StateExporting, "export queued again after the archive refused it"); err != nil {
		return false, err
	}
	if _, err := client.Insert(ctx, ExportArgs{SOPUID: sop}, nil); err != nil {
		return false, fmt.Errorf("queue: inserting export job for SEG %s: %w", sop, err)
	}
	return true, nil
}
