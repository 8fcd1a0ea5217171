package daemon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

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
func (w *reprocessWorker) Work(ctx context.Context, _ *river.Job[ReprocessArgs]) error {
	r, err := Reprocess(ctx, w.d.cat, w.d.client, w.d.model.Version, ReprocessFilter{Scheduled: true}, nil)
	if err != nil {
		return err
	}
	for _, s := range r.Skipped {
		w.d.log.Info().Str("series_uid", s.SeriesUID).Str("reason", s.Reason).Msg("series not reprocessed")
	}
	w.d.log.Info().Int("queued", r.Queued).Int("skipped", len(r.Skipped)).Msg("scheduled reprocessing done")
	return nil
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
func Reprocess(ctx context.Context, cat *catalog, client queueClient, modelVersion string, f ReprocessFilter, progress func(done, total int)) (ReprocessResult, error) {
	var res ReprocessResult
	var rows []seriesRow
	add := func(where string, args ...any) error {
		r, err := cat.seriesWhere(ctx, where, args...)
		rows = append(rows, r...)
		return err
	}
	var err error
	switch {
	case f.Scheduled:
		if err = add(`state = ?`, StateAwaitingReport); err == nil {
			if err = add(`state = ? AND error_class = ?`, StateFailed, ClassTransient.String()); err == nil {
				err = add(`state IN (?, ?) AND model_version <> ?`, StateDone, StateExporting, modelVersion)
			}
		}
	case f.SeriesUID != "":
		err = add(`series_uid = ?`, f.SeriesUID)
	case f.StudyUID != "":
		err = add(`study_uid = ?`, f.StudyUID)
	case f.Failed:
		err = add(`state = ?`, StateFailed)
	case f.ModelOlder:
		err = add(`state IN (?, ?) AND model_version <> ?`, StateDone, StateExporting, modelVersion)
	case !f.Since.IsZero():
		err = add(`first_seen >= ?`, f.Since.UnixNano())
	default:
		return res, fmt.Errorf("reprocess: nothing selected")
	}
	if err != nil {
		return res, err
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
		var ref *reportRef
		if ref, err = cat.matchReport(ctx, s); err != nil {
			return res, err
		}
		if s.State == StateAwaitingReport && ref == nil {
			if progress != nil {
				progress(i+1, len(rows))
			}
			continue // still no report
		}
		if s.State == StateFailed && s.Reason == reasonExportRejected {
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
		case StateCollecting, StateWaitingReport, StateQueued:
			// Not processed yet: the ready loop or the queue has it.
			if progress != nil {
				progress(i+1, len(rows))
			}
			continue
		case StateDone, StateExporting:
			if s.ModelVersion == modelVersion {
				// Same model again: an explicit request, tagged so that
				// uniqueness lets it through once.
				rerun = "rerun-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
		}
		deleted, err := cat.deletedInputs(ctx, s.SeriesUID)
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

// reasonExportRejected is the reason of a series whose SEG the archive
// refused.
const reasonExportRejected = "export_rejected"

// requeueRejectedExport queues the export of the SEG the archive refused
// for series s again, and marks the series exporting; false when the
// series has no SEG waiting in the outbox.
func requeueRejectedExport(ctx context.Context, cat *catalog, client queueClient, s seriesRow) (bool, error) {
	var sop string
	err := cat.s.queryRow(ctx, `SELECT sop_uid FROM tmcad_seg WHERE source_series_uid = ? AND stored_at = 0 ORDER BY created_at DESC LIMIT 1`, s.SeriesUID).Scan(&sop)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("catalog: looking up the refused SEG of series %s: %w", s.SeriesUID, err)
	}
	if err := cat.clearExportError(ctx, sop); err != nil {
		return false, err
	}
	if err := cat.setState(ctx, s.SeriesUID, StateExporting, "export queued again after the archive refused it"); err != nil {
		return false, err
	}
	if _, err := client.Insert(ctx, ExportArgs{SOPUID: sop}, nil); err != nil {
		return false, fmt.Errorf("queue: inserting export job for SEG %s: %w", sop, err)
	}
	return true, nil
}
