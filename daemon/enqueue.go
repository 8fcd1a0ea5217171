package daemon

import (
	"context"
	"fmt"

	"tmcad/daemon/catalog"
)

// enqueue queues a process job for a series (idempotent: the job is unique
// per series, model version and rerun tag) and marks it queued. It returns
// false when an equal job already existed, or when the series had left
// the state s was read in (another node queued it first).
func (d *Daemon) enqueue(ctx context.Context, s catalog.Series, ref *catalog.ReportRef, modelVersion, rerun string) (bool, error) {
	return enqueueSeries(ctx, d.cat, d.client, s, ref, modelVersion, rerun)
}

// enqueueSeries is enqueue without a Daemon (tmcad reprocess uses it).
func enqueueSeries(ctx context.Context, cat *catalog.Catalog, client catalog.QueueClient, s catalog.Series, ref *catalog.ReportRef, modelVersion, rerun string) (bool, error) {
	// Mark first, insert second: a crash in between leaves a queued series
	// that requeueQueued inserts again at start; the insert is idempotent.
	if moved, err := cat.SetQueued(ctx, s.SeriesUID, s.State, 0, modelVersion, ref); err != nil || !moved {
		return false, err
	}
	res, err := client.Insert(ctx, ProcessArgs{SeriesUID: s.SeriesUID, StudyUID: s.StudyUID, ModelVersion: modelVersion, Rerun: rerun}, nil)
	if err != nil {
		_, _ = cat.MoveState(ctx, s.SeriesUID, catalog.StateQueued, s.State, s.Reason)
		return false, fmt.Errorf("queue: inserting job for series: %w", err)
	}
	if err := cat.SetJobIfUnset(ctx, s.SeriesUID, res.Job.ID); err != nil {
		return false, err
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// requeueQueued inserts the jobs of series marked queued whose insert
// never happened (a crash between marking and inserting).
func (d *Daemon) requeueQueued(ctx context.Context) error {
	rows, err := d.cat.List(ctx, catalog.Filter{States: []string{catalog.StateQueued}, Unqueued: true})
	if err != nil {
		return err
	}
	for _, s := range rows {
		v := s.ModelVersion
		if v == "" {
			v = d.model.Version
		}
		_, err := d.client.Insert(ctx, ProcessArgs{SeriesUID: s.SeriesUID, StudyUID: s.StudyUID, ModelVersion: v}, nil)
		if err != nil {
			return fmt.Errorf("queue: re-inserting job: %w", err)
		}
	}
	return nil
}
