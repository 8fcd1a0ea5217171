package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/rs/zerolog"
)

// Job kinds and queues.
const (
	kindProcess      = "tmcad_process"
	kindExport       = "tmcad_export"
	kindReprocess    = "tmcad_reprocess"
	kindExportWindow = "tmcad_export_window"

	queueProcess     = river.QueueDefault
	queueExport      = "export"
	queueMaintenance = "maintenance"
)

// ProcessArgs is the job that segments one series with one model version.
// Jobs are unique per (SeriesUID, ModelVersion, Rerun); Rerun is empty
// except for an explicit `tmcad reprocess` of a series already done.
type ProcessArgs struct {
	SeriesUID    string `json:"series_uid" river:"unique"`
	StudyUID     string `json:"study_uid"`
	ModelVersion string `json:"model_version" river:"unique"`
	Rerun        string `json:"rerun,omitempty" river:"unique"`
}

// Kind names the job kind.
func (ProcessArgs) Kind() string { return kindProcess }

// InsertOpts makes process jobs unique by their unique fields.
func (ProcessArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueProcess, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ExportArgs is the job that sends one SEG from the outbox to the archive.
type ExportArgs struct {
	SOPUID string `json:"sop_uid" river:"unique"`
}

// Kind names the job kind.
func (ExportArgs) Kind() string { return kindExport }

// InsertOpts makes export jobs unique per SEG while one waits or runs;
// they retry for a long time (an archive may be down for hours). A
// completed export does not count: a rerun that makes the same SEG again
// (deterministic UIDs) must be able to export it again.
func (ExportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueExport, MaxAttempts: 1000, UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		},
	}}
}

// ReprocessArgs is the periodic reprocessing sweep.
type ReprocessArgs struct{}

// Kind names the job kind.
func (ReprocessArgs) Kind() string { return kindReprocess }

// InsertOpts puts the sweep on the maintenance queue, once per
// scheduled instant (periodicOnce).
func (ReprocessArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaintenance, MaxAttempts: 3, UniqueOpts: periodicOnce}
}

// ExportWindowArgs opens the export window: every SEG in the outbox gets
// an export job.
type ExportWindowArgs struct{}

// Kind names the job kind.
func (ExportWindowArgs) Kind() string { return kindExportWindow }

// InsertOpts puts the window opener on the maintenance queue, once per
// scheduled instant (periodicOnce).
func (ExportWindowArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaintenance, MaxAttempts: 3, UniqueOpts: periodicOnce}
}

// periodicOnce makes a schedule's job unique per scheduled instant: River
// inserts a periodic job scheduled at the instant it is due, the same on
// every node (the schedules are cron expressions or epoch-aligned), so
// that when two nodes both believe they lead for a moment (a lease that
// ran out during a database restart), the schedule still fires once.
var periodicOnce = river.UniqueOpts{ByPeriod: time.Second}

// newSlog returns a slog logger for River that forwards to zerolog.
func newSlog(l zerolog.Logger) *slog.Logger { return slog.New(slogToZerolog{log: l}) }

// slogToZerolog is a slog handler that forwards River's warnings and errors
// to zerolog.
type slogToZerolog struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

// Enabled passes warnings and errors only.
func (h slogToZerolog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle writes one record to zerolog.
func (h slogToZerolog) Handle(_ context.Context, r slog.Record) error {
	ev := h.log.Warn()
	if r.Level >= slog.LevelError {
		ev = h.log.Error()
	}
	ev = ev.Str("component", "river")
	add := func(a slog.Attr) bool {
		ev = ev.Str(a.Key, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	ev.Msg(r.Message)
	return nil
}

// WithAttrs returns a handler that adds as to every record.
func (h slogToZerolog) WithAttrs(as []slog.Attr) slog.Handler {
	return slogToZerolog{log: h.log, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup ignores groups: attributes stay flat.
func (h slogToZerolog) WithGroup(string) slog.Handler { return h }
