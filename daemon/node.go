package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"tmcad/config"
	"tmcad/daemon/catalog"
)

// Several nodes may share one PostgreSQL queue (README "Several nodes"):
// each has a name (config node), runs the roles [roles] gives it, and
// hands back the jobs it lost track of.

// clientID is this node's stable River client ID: the same after a
// restart, so that jobs left running by a crash can be recognised. With a
// node name it is derived from the name alone, so that a replacement
// started under the same name hands back the jobs of a node that died;
// without one, from the host name and the state_dir.
func clientID(cfg *config.Config) string {
	id := "tmcad-" + cfg.NodeName()
	if cfg.Node == "" {
		id += "-" + catalog.MatchHash(cfg.StateDir)[:8]
	}
	if len(id) > 100 {
		id = id[:100]
	}
	return id
}

// rolesString lists the roles this node runs ("ingest,process,export").
func rolesString(r config.RolesConfig) string {
	var out []string
	for _, x := range []struct {
		name string
		on   bool
	}{{"ingest", r.Ingest}, {"process", r.Process}, {"export", r.Export}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return strings.Join(out, ",")
}

// jobTracker knows the jobs this node is working now, to tell them from
// jobs the queue still shows running on this node although their worker
// has returned: River records a job's end with a few retries, and a
// database down for longer than those (a PostgreSQL restart) leaves the
// job running in the queue, where River's rescuer would find it only
// after RescueStuckJobsAfter.
type jobTracker struct {
	mu      sync.Mutex
	working map[int64]bool
	// suspect are the jobs found lost at the previous sweep; a job is
	// handed back when found lost at two sweeps in a row.
	suspect map[int64]bool
}

// start records that this node works job id; the function it returns
// records its end.
func (t *jobTracker) start(id int64) func() {
	t.mu.Lock()
	if t.working == nil {
		t.working = map[int64]bool{}
	}
	t.working[id] = true
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.working, id)
		t.mu.Unlock()
	}
}

// lost returns the jobs of running that this node does not work and that
// were already lost at the previous call, and remembers the others not
// worked for the next call.
func (t *jobTracker) lost(running []int64) []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int64
	next := map[int64]bool{}
	for _, id := range running {
		if t.working[id] {
			continue
		}
		if t.suspect[id] {
			out = append(out, id)
			continue
		}
		next[id] = true
	}
	t.suspect = next
	return out
}

// lostJobsEvery is how often the queue is searched for jobs this node
// lost track of; a job is handed back after two sweeps, which is longer
// than River's retries of a job's end take.
const lostJobsEvery = 30 * time.Second

// nodeLoop beats the heart of a node without a ready loop (roles.ingest
// off), and hands back the jobs this node lost track of.
func (d *Daemon) nodeLoop(ctx context.Context) error {
	beat := time.NewTicker(time.Second)
	defer beat.Stop()
	sweep := time.NewTicker(lostJobsEvery)
	defer sweep.Stop()
	id := clientID(d.config())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if !d.config().Roles.Ingest {
				d.heartbeat()
			}
		case <-sweep.C:
			running, err := d.store.RunningJobs(ctx, id)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn().Err(err).Msg("listing this node's running jobs")
				}
				continue
			}
			lost := d.jobs.lost(running)
			if len(lost) == 0 {
				continue
			}
			n, err := d.store.HandBack(ctx, lost)
			if err != nil {
				d.log.Warn().Err(err).Msg("handing back jobs whose end was not recorded")
				continue
			}
			if n > 0 {
				d.log.Warn().Int64("jobs", n).Msg("jobs whose end the queue did not record (database unreachable) are queued again")
			}
		}
	}
}
