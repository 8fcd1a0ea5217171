package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"tmcad/config"
	"tmcad/dicomio"
	"tmcad/logging"
)

// readyLoop moves series along: collecting → (quiet for stable_after) →
// waiting_report → queued, or awaiting_report when no report came within
// reports.wait.
func (d *Daemon) readyLoop(ctx context.Context) error {
	d.heartbeat()
	for {
		every := d.config().Watch.StableAfter.Duration / 4
		every = max(100*time.Millisecond, min(every, time.Second))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
		d.heartbeat()
		// The flag before the configuration: a reload stores the new
		// configuration, then sets the flag.
		reconsider := d.reconsider.Swap(false)
		cfg := d.config()
		if reconsider {
			if n, err := d.cat.reconsiderSkipped(ctx); err != nil {
				d.reconsider.Store(true) // next round
				d.log.Error().Err(err).Msg("skipped series could not be reconsidered under the new selection rules")
			} else if n > 0 {
				d.log.Info().Int("series", n).Msg("series skipped under the old selection rules are reconsidered")
			}
		}
		if err := d.advance(ctx, cfg); err != nil && ctx.Err() == nil {
			d.metrics.errors.WithLabelValues("catalog").Inc()
			d.log.Error().Err(err).Msg("advancing series")
		}
	}
}

// textRequired reports whether a series needs a report to be processed.
func (d *Daemon) textRequired(cfg *config.Config) bool {
	return cfg.Reports.Required || d.model.TextRequired
}

// advance runs one round of the ready loop.
func (d *Daemon) advance(ctx context.Context, cfg *config.Config) error {
	now := d.now()
	stable, err := d.cat.seriesWhere(ctx, `state = ? AND last_seen <= ?`, StateCollecting, now.Add(-cfg.Watch.StableAfter.Duration).UnixNano())
	if err != nil {
		return err
	}
	for _, s := range stable {
		log := logging.Series{StudyUID: s.StudyUID, SeriesUID: s.SeriesUID}.Logger(d.log)
		if reason, err := d.skipReason(ctx, cfg, s); err != nil {
			return err
		} else if reason != "" {
			if err := d.cat.setState(ctx, s.SeriesUID, StateSkipped, reason); err != nil {
				return err
			}
			log.Debug().Str("reason", reason).Msg("series not selected")
			continue
		}
		d.metrics.seriesReady.Inc()
		log.Info().Msg("series stable")
		if err := d.cat.setState(ctx, s.SeriesUID, StateWaitingReport, ""); err != nil {
			return err
		}
	}
	waiting, err := d.cat.seriesWhere(ctx, `state = ?`, StateWaitingReport)
	if err != nil {
		return err
	}
	for _, s := range waiting {
		ref, err := d.cat.matchReport(ctx, s)
		if err != nil {
			return err
		}
		if ref != nil || !d.textRequired(cfg) {
			if _, err := d.enqueue(ctx, s, ref, d.model.Version, ""); err != nil {
				return err
			}
			continue
		}
		if now.Sub(s.ReadyAt) >= cfg.Reports.Wait.Duration {
			log := logging.Series{StudyUID: s.StudyUID, SeriesUID: s.SeriesUID}.Logger(d.log)
			if err := d.cat.setState(ctx, s.SeriesUID, StateAwaitingReport, "no report within reports.wait"); err != nil {
				return err
			}
			// Logged once recorded: `tmcad status` shows what the log says.
			d.metrics.seriesParked.Inc()
			log.Info().Dur("waited", now.Sub(s.ReadyAt)).Msg("no report within reports.wait; series parked as awaiting_report")
		}
	}
	return nil
}

// skipReason says why a stable series is not selected ("" if it is): the
// series rules of dicomio.Select, and select.min_slices over every frame
// catalogued. The instance rules (a localizer in a CT series) apply when
// the job loads the files, with dicomio.Select's own function, as in
// `tmcad process`.
func (d *Daemon) skipReason(ctx context.Context, cfg *config.Config, s seriesRow) (string, error) {
	if r := dicomio.SeriesRuleReason(s.Modality, s.BodyPart, Selector(cfg, d.model.Modalities)); r != "" {
		return r, nil
	}
	n, err := d.cat.frameCount(ctx, s.SeriesUID)
	if err != nil {
		return "", err
	}
	if n < cfg.Select.MinSlices {
		return fmt.Sprintf("%d frame(s), fewer than the minimum %d", n, cfg.Select.MinSlices), nil
	}
	return "", nil
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(strings.TrimSpace(x), v) })
}

// enqueue queues a process job for a series (idempotent: the job is unique
// per series, model version and rerun tag) and marks it queued. It returns
// false when an equal job already existed.
func (d *Daemon) enqueue(ctx context.Context, s seriesRow, ref *reportRef, modelVersion, rerun string) (bool, error) {
	return enqueueSeries(ctx, d.cat, d.client, s, ref, modelVersion, rerun)
}

// enqueueSeries is enqueue without a Daemon (tmcad reprocess uses it).
func enqueueSeries(ctx context.Context, cat *catalog, client queueClient, s seriesRow, ref *reportRef, modelVersion, rerun string) (bool, error) {
	// Mark first, insert second: a crash in between leaves a queued series
	// that requeueQueued inserts again at start; the insert is idempotent.
	if err := cat.setQueued(ctx, s.SeriesUID, 0, modelVersion, ref); err != nil {
		return false, err
	}
	res, err := client.Insert(ctx, ProcessArgs{SeriesUID: s.SeriesUID, StudyUID: s.StudyUID, ModelVersion: modelVersion, Rerun: rerun}, nil)
	if err != nil {
		_ = cat.setState(ctx, s.SeriesUID, s.State, s.Reason)
		return false, fmt.Errorf("queue: inserting job for series: %w", err)
	}
	if _, err := cat.s.exec(ctx, `UPDATE tmcad_series SET job_id = ? WHERE series_uid = ? AND job_id = 0`, res.Job.ID, s.SeriesUID); err != nil {
		return false, fmt.Errorf("catalog: recording job: %w", err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// requeueQueued inserts the jobs of series marked queued whose insert
// never happened (a crash between marking and inserting).
func (d *Daemon) requeueQueued(ctx context.Context) error {
	rows, err := d.cat.seriesWhere(ctx, `state = ? AND job_id = 0`, StateQueued)
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
