package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"

	"tmcad/config"
	"tmcad/daemon/pipeline"
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
func (w *exportWindowWorker) Work(ctx context.Context, job *river.Job[ExportWindowArgs]) error {
	d := w.d
	defer d.jobs.start(job.ID)()
	win, err := newExportWindow(d.config())
	if err != nil {
		return err
	}
	if !win.open(d.now()) {
		// RunOnStart outside the window: the export jobs already wait for
		// its next opening.
		return nil
	}
	segs, err := d.cat.UnstoredSEGs(ctx, pipeline.ClassPermanent.String())
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
