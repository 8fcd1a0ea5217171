package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
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

// InsertOpts puts the sweep on the maintenance queue.
func (ReprocessArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaintenance, MaxAttempts: 3}
}

// ExportWindowArgs opens the export window: every SEG in the outbox gets
// an export job.
type ExportWindowArgs struct{}

// Kind names the job kind.
func (ExportWindowArgs) Kind() string { return kindExportWindow }

// InsertOpts puts the window opener on the maintenance queue.
func (ExportWindowArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaintenance, MaxAttempts: 3}
}

// queueClient is the part of *river.Client the daemon uses; it does not
// depend on the driver's transaction type, so the same code runs on SQLite
// and PostgreSQL.
type queueClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobRetry(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
}

// newQueueClient builds the River client for the store's database.
func newQueueClient(s *store, cfg *river.Config) (queueClient, error) {
	if s.pg {
		c, err := river.NewClient(riverpgxv5.New(s.pool), cfg)
		if err != nil {
			return nil, fmt.Errorf("queue (postgres): %w", err)
		}
		return c, nil
	}
	c, err := river.NewClient(riversqlite.New(s.db), cfg)
	if err != nil {
		return nil, fmt.Errorf("queue (sqlite): %w", err)
	}
	return c, nil
}

// clientID is this node's stable River client ID: the same after a
// restart, so that jobs left running by a crash can be recognised.
func clientID(stateDir string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	id := "tmcad-" + host + "-" + matchHash(stateDir)[:8]
	if len(id) > 100 {
		id = id[:100]
	}
	return id
}

// rescueOrphans makes jobs this node was running when it died available
// again, and drops the leader lease it held. River would rescue the jobs
// only after RescueStuckJobsAfter and let the lease expire after its TTL;
// at start we know that nothing of ours is running.
func rescueOrphans(ctx context.Context, s *store, id string) (int64, error) {
	var q string
	if s.pg {
		q = `UPDATE river_job SET state = 'available' WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`
	} else {
		// The embedded database belongs to this node alone.
		q = `UPDATE river_job SET state = 'available' WHERE state = 'running' AND (? <> '' OR 1 = 1)`
	}
	res, err := s.db.ExecContext(ctx, q, id)
	if err != nil {
		return 0, fmt.Errorf("queue: handing back jobs left running by a crash: %w", err)
	}
	n, _ := res.RowsAffected()
	// A crashed leader's lease would keep this node from leading (and so
	// from running the schedules and promoting retries) until it expires;
	// the lease is this node's own, and the state_dir lock says no other
	// process of this node is alive.
	if _, err := s.exec(ctx, `DELETE FROM river_leader WHERE leader_id = ?`, id); err != nil {
		return n, fmt.Errorf("queue: dropping the leader lease left by a crash: %w", err)
	}
	return n, nil
}

// backoff returns base·2^(attempt-1), capped.
func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	if d > limit {
		d = limit
	}
	return d
}

// newSlog returns a slog logger for River that forwards to zerolog.
func newSlog(l zerolog.Logger) *slog.Logger { return slog.New(slogToZerolog{log: l}) }

// slogToZerolog is a slog handler that forwards River's warnings and errors
// to zerolog.
type slogToZerolog struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func (h slogToZerolog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

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

func (h slogToZerolog) WithAttrs(as []slog.Attr) slog.Handler {
	return slogToZerolog{log: h.log, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h slogToZerolog) WithGroup(string) slog.Handler { return h }
