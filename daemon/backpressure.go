package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"tmcad/config"
)

// Reasons ingestion pauses for (label reason of tmcad_ingest_paused, and
// faults served by /readyz).
const (
	// pauseQueuedJobs: limits.max_queued_jobs process jobs or more are
	// unfinished in the queue.
	pauseQueuedJobs = "queued_jobs"
	// pauseOutbox: limits.max_outbox SEGs or more wait in the outbox.
	pauseOutbox = "outbox"
)

// pauseReasons are the reasons in the order they are checked.
var pauseReasons = []string{pauseQueuedJobs, pauseOutbox}

// pressureEvery is how often the back-pressure loop counts the queue and
// the outbox: two cheap COUNT queries.
const pressureEvery = time.Second

// unfinishedJobStates are the states of a process job still to be done.
var unfinishedJobStates = []string{"available", "pending", "running", "retryable", "scheduled"}

// ingestGate holds the ingest loop back while ingestion is paused. Each
// change of state closes the channel the loop waits on, so that it sees
// the change at once.
type ingestGate struct {
	mu      sync.Mutex
	paused  map[string]bool
	changed chan struct{}
}

// state reports whether ingestion may go on, and a channel closed at the
// next change of state.
func (g *ingestGate) state() (open bool, changed <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	return len(g.paused) == 0, g.changed
}

// set records whether ingestion is paused for reason, and reports whether
// it is paused for any reason afterwards.
func (g *ingestGate) set(reason string, paused bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused[reason] != paused {
		if g.paused == nil {
			g.paused = map[string]bool{}
		}
		if paused {
			g.paused[reason] = true
		} else {
			delete(g.paused, reason)
		}
		if g.changed != nil {
			close(g.changed)
		}
		g.changed = make(chan struct{})
	}
	return len(g.paused) > 0
}

// isPaused reports whether ingestion is paused for reason.
func (g *ingestGate) isPaused(reason string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused[reason]
}

// pressureLoop pauses ingestion while the queue or the outbox holds as
// much as its limit (limits.max_queued_jobs, limits.max_outbox) and
// resumes it below 90 % of the limit. While paused, the ingest loop reads
// nothing and the watcher sends nothing, so new files (images and
// reports) wait in the drop folders instead of in memory; the workers,
// the exports and the ready loop go on, and so the queue drains.
func (d *Daemon) pressureLoop(ctx context.Context) error {
	failing := false
	for {
		err := d.checkPressure(ctx, d.config())
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			d.log.Warn().Err(err).Msg("counting the queue and the outbox for back-pressure failed; ingestion keeps its current state")
		case err == nil && failing:
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pressureEvery):
		}
	}
}

// checkPressure counts what a limit applies to and pauses or resumes
// ingestion accordingly. A count that fails leaves its reason as it was.
func (d *Daemon) checkPressure(ctx context.Context, cfg *config.Config) error {
	var firstErr error
	for _, reason := range pauseReasons {
		limit, what := cfg.Limits.MaxQueuedJobs, "jobs queued"
		if reason == pauseOutbox {
			limit, what = cfg.Limits.MaxOutbox, "SEGs in the outbox"
		}
		n := 0
		if limit > 0 {
			var err error
			if n, err = d.pressureCount(ctx, reason); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
		}
		d.applyPressure(reason, what, n, limit)
	}
	return firstErr
}

// pressureCount counts the unfinished process jobs in the queue
// (pauseQueuedJobs) or the SEGs not yet stored (pauseOutbox), over every
// node that shares the queue database.
func (d *Daemon) pressureCount(ctx context.Context, reason string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if reason == pauseOutbox {
		n, err := d.cat.OutboxCount(ctx)
		if err != nil {
			return 0, fmt.Errorf("back-pressure: %w", err)
		}
		return n, nil
	}
	byState, err := d.store.JobCounts(ctx, kindProcess)
	if err != nil {
		return 0, fmt.Errorf("back-pressure: %w", err)
	}
	n := 0
	for _, st := range unfinishedJobStates {
		n += byState[st]
	}
	return n, nil
}

// applyPressure pauses ingestion for reason when n has reached limit, and
// resumes it once n is at most 90 % of limit (limit 0: no limit). While
// paused, the fault /readyz serves carries the latest count.
func (d *Daemon) applyPressure(reason, what string, n, limit int) {
	was := d.gate.isPaused(reason)
	now := was
	switch {
	case limit <= 0:
		now = false
	case !was && n >= limit:
		now = true
	case was && n <= limit*9/10:
		now = false
	}
	fault := faultPausePrefix + reason
	if now {
		d.setFault(fault, fmt.Sprintf("ingest paused: %d %s, limit %d", n, what, limit))
	} else {
		d.setFault(fault, "")
	}
	if now == was {
		return
	}
	paused := d.gate.set(reason, now)
	if d.watcher != nil {
		d.watcher.SetPaused(paused)
	}
	v := 0.0
	if now {
		v = 1
	}
	d.metrics.ingestPaused.WithLabelValues(reason).Set(v)
	if now {
		d.log.Warn().Str("reason", reason).Int("count", n).Int("limit", limit).
			Msgf("ingest paused: %d %s, limit %d; new files wait in the drop folders", n, what, limit)
	} else {
		d.log.Info().Str("reason", reason).Int("count", n).Int("limit", limit).
			Msgf("ingest resumed: %d %s, limit %d", n, what, limit)
	}
}
