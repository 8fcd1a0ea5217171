package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"tmcad/config"
	"tmcad/daemon/catalog"
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
			if n, err := d.cat.ReconsiderSkipped(ctx); err != nil {
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
	stable, err := d.cat.List(ctx, catalog.Filter{States: []string{catalog.StateCollecting}, LastSeenBefore: now.Add(-cfg.Watch.StableAfter.Duration)})
	if err != nil {
		return err
	}
	// A file first seen within stable_after of a series' last catalogued
	// instance and not yet catalogued may belong to it: under a backlog
	// (a burst of thousands of files) the series waits until the
	// catalogue has caught up, instead of being processed without it.
	backlog := d.watcher.OldestUnhandled()
	for _, s := range stable {
		if !backlog.IsZero() && !backlog.After(s.LastSeen.Add(cfg.Watch.StableAfter.Duration)) {
			continue
		}
		log := logging.Series{StudyUID: s.StudyUID, SeriesUID: s.SeriesUID}.Logger(d.log)
		if reason, err := d.skipReason(ctx, cfg, s); err != nil {
			return err
		} else if reason != "" {
			if moved, err := d.cat.MoveState(ctx, s.SeriesUID, catalog.StateCollecting, catalog.StateSkipped, reason); err != nil || !moved {
				if err != nil {
					return err
				}
				continue // another node judged it first, or a file arrived
			}
			log.Debug().Str("reason", reason).Msg("series not selected")
			continue
		}
		// Moved only from collecting: another node's ready loop may have
		// moved it already, and must not be undone.
		if moved, err := d.cat.MoveState(ctx, s.SeriesUID, catalog.StateCollecting, catalog.StateWaitingReport, ""); err != nil {
			return err
		} else if !moved {
			continue
		}
		d.metrics.seriesReady.Inc()
		log.Info().Msg("series stable")
	}
	waiting, err := d.cat.List(ctx, catalog.Filter{States: []string{catalog.StateWaitingReport}})
	if err != nil {
		return err
	}
	for _, s := range waiting {
		ref, choice, err := d.cat.ChooseReport(ctx, s)
		if err != nil {
			return err
		}
		log := logging.Series{StudyUID: s.StudyUID, SeriesUID: s.SeriesUID}.Logger(d.log)
		if ref != nil || !d.textRequired(cfg) {
			queued, err := d.enqueue(ctx, s, ref, d.model.Version, "")
			if err != nil {
				return err
			}
			if queued {
				log.Info().Str("report_rule", choice.Reason).Msg("series queued")
			}
			continue
		}
		if now.Sub(s.ReadyAt) >= cfg.Reports.Wait.Duration {
			// The parked reason carries the choice rule's own words (none
			// found, ambiguous, another study's UID), as `tmcad process`
			// reports them.
			reason := "no report within reports.wait: " + choice.Reason
			if moved, err := d.cat.MoveState(ctx, s.SeriesUID, catalog.StateWaitingReport, catalog.StateAwaitingReport, reason); err != nil || !moved {
				if err != nil {
					return err
				}
				continue
			}
			// Logged once recorded: `tmcad status` shows what the log says.
			d.metrics.seriesParked.Inc()
			log.Info().Dur("waited", now.Sub(s.ReadyAt)).Str("report_rule", choice.Reason).Msg("no report within reports.wait; series parked as awaiting_report")
		}
	}
	return nil
}

// skipReason says why a stable series is not selected ("" if it is): the
// series rules of dicomio.Select, and select.min_slices over every frame
// catalogued. The instance rules (a localizer in a CT series) apply when
// the job loads the files, with dicomio.Select's own function, as in
// `tmcad process`.
func (d *Daemon) skipReason(ctx context.Context, cfg *config.Config, s catalog.Series) (string, error) {
	if r := dicomio.SeriesRuleReason(s.Modality, s.BodyPart, Selector(cfg, d.model.Modalities)); r != "" {
		return r, nil
	}
	n, err := d.cat.FrameCount(ctx, s.SeriesUID)
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
