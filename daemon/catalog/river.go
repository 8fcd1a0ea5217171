package catalog

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
)

// River's queue lives in the store's database: the client is built over
// it here, with the two statements tmcad runs on River's own tables.

// QueueClient is the part of *river.Client the daemon uses; it does not
// depend on the driver's transaction type, so the same code runs on SQLite
// and PostgreSQL.
type QueueClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobRetry(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
}

// QueueClient builds a River client over the store's database.
func (s *Store) QueueClient(cfg *river.Config) (QueueClient, error) {
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

// RescueOrphans makes jobs this node was running when it died available
// again, and drops the leader lease it held. River would rescue the jobs
// only after RescueStuckJobsAfter and let the lease expire after its TTL;
// at start we know that nothing of ours is running.
func (s *Store) RescueOrphans(ctx context.Context, id string) (int64, error) {
	var q string
	if s.pg {
		q = `UPDATE river_job SET state = 'available' WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`
	} else {
		// The embedded database belongs to this node alone.
		q = `UPDATE river_job SET state = 'available' WHERE state = 'running' AND (? <> '' OR 1 = 1)`
	}
	res, err := s.db.ExecContext(ctx, q, id) // q is written for each database already
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

// JobCounts counts River's jobs of one kind by state.
func (s *Store) JobCounts(ctx context.Context, kind string) (map[string]int, error) {
	out, err := queryCounts(ctx, s, `SELECT state, COUNT(*) FROM river_job WHERE kind = ? GROUP BY state`, kind)
	if err != nil {
		return nil, fmt.Errorf("queue: counting %s jobs: %w", kind, err)
	}
	return out, nil
}

// RunningJobs lists the jobs the queue shows running on the node with
// River client ID id (every running job on the embedded database, which
// belongs to one node).
func (s *Store) RunningJobs(ctx context.Context, id string) ([]int64, error) {
	var q string
	if s.pg {
		q = `SELECT id FROM river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`
	} else {
		q = `SELECT id FROM river_job WHERE state = 'running' AND (? <> '' OR 1 = 1)`
	}
	rows, err := s.db.QueryContext(ctx, q, id) // q is written for each database already
	if err != nil {
		return nil, fmt.Errorf("queue: listing running jobs: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("queue: listing running jobs: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: listing running jobs: %w", err)
	}
	return out, nil
}

// HandBack makes the jobs ids available again if they are still running,
// and returns how many were.
func (s *Store) HandBack(ctx context.Context, ids []int64) (int64, error) {
	var n int64
	for _, id := range ids {
		res, err := s.exec(ctx, `UPDATE river_job SET state = 'available' WHERE id = ? AND state = 'running'`, id)
		if err != nil {
			return n, fmt.Errorf("queue: handing back job %d: %w", id, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}
