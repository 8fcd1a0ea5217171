package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Series is one catalogued series.
type Series struct {
	SeriesUID, StudyUID           string
	Modality, BodyPart, ImageType string
	AccHash, PDHash               string
	State, Reason                 string
	FirstSeen, LastSeen           time.Time
	ReadyAt, ParkedAt             time.Time
	ReportPath                    string
	ReportIdx                     int
	ReportHash                    string
	ModelVersion                  string
	JobID                         int64
	ErrorClass, Error             string
	UpdatedAt                     time.Time
}

// seriesCols are tmcad_series' columns in scanSeries' order.
const seriesCols = `series_uid, study_uid, modality, body_part, image_type, acc_hash, pd_hash, state, reason, first_seen, last_seen,
	ready_at, parked_at, report_path, report_idx, report_hash, model_version, job_id, error_class, error, updated_at`

// scanSeries scans one row of seriesCols.
func scanSeries(sc scanner) (Series, error) {
	var r Series
	var first, last, ready, parked, updated int64
	err := sc.Scan(&r.SeriesUID, &r.StudyUID, &r.Modality, &r.BodyPart, &r.ImageType, &r.AccHash, &r.PDHash, &r.State, &r.Reason,
		&first, &last, &ready, &parked, &r.ReportPath, &r.ReportIdx, &r.ReportHash, &r.ModelVersion, &r.JobID, &r.ErrorClass, &r.Error, &updated)
	r.FirstSeen, r.LastSeen, r.UpdatedAt = unixNano(first), unixNano(last), unixNano(updated)
	r.ReadyAt, r.ParkedAt = unixNano(ready), unixNano(parked)
	return r, err
}

// Series returns one series, or sql.ErrNoRows.
func (c *Catalog) Series(ctx context.Context, uid string) (Series, error) {
	r, err := scanSeries(c.s.queryRow(ctx, `SELECT `+seriesCols+` FROM tmcad_series WHERE series_uid = ?`, uid))
	if err != nil {
		return r, fmt.Errorf("catalog: series: %w", err)
	}
	return r, nil
}

// Filter selects series for List; every condition set must hold.
type Filter struct {
	// States: the series is in one of them (any state when empty).
	States []string
	// SeriesUID or StudyUID: that series, or the series of that study.
	SeriesUID, StudyUID string
	// ErrorClass: its last failure was of this class.
	ErrorClass string
	// OtherModel: it was last queued for a model version other than
	// ModelVersion.
	OtherModel   bool
	ModelVersion string
	// LastSeenBefore: no instance arrived after this time.
	LastSeenBefore time.Time
	// FirstSeenSince: its first instance arrived at or after this time.
	FirstSeenSince time.Time
	// Unqueued: no job ID is recorded for it.
	Unqueued bool
	// Latest, when above 0, keeps the Latest series updated last, newest
	// first.
	Latest int
}

// where is the filter as a WHERE clause with its arguments.
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if len(f.States) > 0 {
		states := make([]any, len(f.States))
		for i, st := range f.States {
			states[i] = st
		}
		add("state IN ("+strings.Repeat(", ?", len(f.States))[2:]+")", states...)
	}
	if f.SeriesUID != "" {
		add("series_uid = ?", f.SeriesUID)
	}
	if f.StudyUID != "" {
		add("study_uid = ?", f.StudyUID)
	}
	if f.ErrorClass != "" {
		add("error_class = ?", f.ErrorClass)
	}
	if f.OtherModel {
		add("model_version <> ?", f.ModelVersion)
	}
	if !f.LastSeenBefore.IsZero() {
		add("last_seen <= ?", f.LastSeenBefore.UnixNano())
	}
	if !f.FirstSeenSince.IsZero() {
		add("first_seen >= ?", f.FirstSeenSince.UnixNano())
	}
	if f.Unqueued {
		add("job_id = 0")
	}
	where := "1 = 1"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	if f.Latest > 0 {
		where += " ORDER BY updated_at DESC LIMIT ?"
		args = append(args, f.Latest)
	}
	return where, args
}

// List lists the series f selects.
func (c *Catalog) List(ctx context.Context, f Filter) ([]Series, error) {
	where, args := f.where()
	out, err := queryAll(ctx, c.s, scanSeries, `SELECT `+seriesCols+` FROM tmcad_series WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing series: %w", err)
	}
	return out, nil
}

// SeriesCounts counts the catalogued series by state.
func (c *Catalog) SeriesCounts(ctx context.Context) (map[string]int, error) {
	out, err := queryCounts(ctx, c.s, `SELECT state, COUNT(*) FROM tmcad_series GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("catalog: counting series: %w", err)
	}
	return out, nil
}

// SetJob records the job that runs a series.
func (c *Catalog) SetJob(ctx context.Context, uid string, jobID int64) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_series SET job_id = ? WHERE series_uid = ?`, jobID, uid); err != nil {
		return fmt.Errorf("catalog: recording job: %w", err)
	}
	return nil
}

// SetJobIfUnset records the job queued for a series unless a job is
// recorded already (the job itself may have started and recorded its ID).
func (c *Catalog) SetJobIfUnset(ctx context.Context, uid string, jobID int64) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_series SET job_id = ? WHERE series_uid = ? AND job_id = 0`, jobID, uid); err != nil {
		return fmt.Errorf("catalog: recording job: %w", err)
	}
	return nil
}

// SetState moves a series to state with a reason (never PHI).
func (c *Catalog) SetState(ctx context.Context, uid, state, reason string) error {
	_, err := c.MoveState(ctx, uid, "", state, reason)
	return err
}

// MoveState moves a series from state from to state to with a reason
// (never PHI), and reports whether it did: false when the series was no
// longer in from (another node's ready loop, or a job, moved it first).
// An empty from moves it from any state.
func (c *Catalog) MoveState(ctx context.Context, uid, from, to, reason string) (bool, error) {
	now := c.now().UnixNano()
	extra := ""
	switch to {
	case StateWaitingReport:
		extra = ", ready_at = ?"
	case StateAwaitingReport:
		extra = ", parked_at = ?"
	}
	args := []any{to, reason, now}
	if extra != "" {
		args = append(args, now)
	}
	args = append(args, uid)
	cond := ""
	if from != "" {
		cond = " AND state = ?"
		args = append(args, from)
	}
	res, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = ?, updated_at = ?`+extra+` WHERE series_uid = ?`+cond, args...)
	if err != nil {
		return false, fmt.Errorf("catalog: setting series state %s: %w", to, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("catalog: setting series state %s: %w", to, err)
	}
	return n > 0, nil
}

// SetQueued records that a job was queued for the series, if the series
// is still in state from (any state when from is empty); it reports
// whether it was. Several nodes' ready loops may judge the same series:
// only the one that moves it queues its job.
func (c *Catalog) SetQueued(ctx context.Context, uid, from string, jobID int64, modelVersion string, rep *ReportRef) (bool, error) {
	path, idx, hash := "", 0, ""
	if rep != nil {
		path, idx, hash = rep.Path, rep.Idx, rep.Hash
	}
	args := []any{StateQueued, jobID, modelVersion, path, idx, hash, c.now().UnixNano(), uid}
	cond := ""
	if from != "" {
		cond = " AND state = ?"
		args = append(args, from)
	}
	res, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = '', job_id = ?, model_version = ?, report_path = ?, report_idx = ?, report_hash = ?,
		error_class = '', error = '', updated_at = ? WHERE series_uid = ?`+cond, args...)
	if err != nil {
		return false, fmt.Errorf("catalog: marking series queued: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("catalog: marking series queued: %w", err)
	}
	return n > 0, nil
}

// SetFailed records a failed job (class and a PHI-free message).
func (c *Catalog) SetFailed(ctx context.Context, uid, class, reason, msg string) error {
	_, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = ?, error_class = ?, error = ?, updated_at = ? WHERE series_uid = ?`,
		StateFailed, reason, class, msg, c.now().UnixNano(), uid)
	if err != nil {
		return fmt.Errorf("catalog: marking series failed: %w", err)
	}
	return nil
}
