package daemon

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"tmcad/dicomio"
	"tmcad/reports"
)

// Series states in the catalog.
const (
	// StateCollecting: instances are still arriving (or arrived less than
	// watch.stable_after ago).
	StateCollecting = "collecting"
	// StateWaitingReport: the series is stable and waits for its report,
	// for at most reports.wait.
	StateWaitingReport = "waiting_report"
	// StateAwaitingReport: parked; no report came within reports.wait. The
	// nightly reprocess queues it once its report has arrived.
	StateAwaitingReport = "awaiting_report"
	// StateSkipped: the series is not selected (modality, body part, image
	// type, too few slices).
	StateSkipped = "skipped"
	// StateQueued: a job is queued or running.
	StateQueued = "queued"
	// StateExporting: the SEG is in the outbox, waiting for the archive.
	StateExporting = "exporting"
	// StateDone: the SEG is confirmed stored (or none was needed).
	StateDone = "done"
	// StateFailed: the job failed; its inputs were quarantined.
	StateFailed = "failed"
)

// catalogSchema is portable between SQLite and PostgreSQL. Times are Unix
// nanoseconds. No column holds PHI: report match keys are hashes.
var catalogSchema = []string{
	`CREATE TABLE IF NOT EXISTS tmcad_file (
		path TEXT PRIMARY KEY,
		size BIGINT NOT NULL,
		mtime BIGINT NOT NULL,
		kind TEXT NOT NULL,
		sop_uid TEXT NOT NULL DEFAULT '',
		seen_at BIGINT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS tmcad_instance (
		sop_uid TEXT PRIMARY KEY,
		series_uid TEXT NOT NULL,
		study_uid TEXT NOT NULL,
		path TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		frames BIGINT NOT NULL,
		seen_at BIGINT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS tmcad_instance_series ON tmcad_instance (series_uid)`,
	`CREATE TABLE IF NOT EXISTS tmcad_series (
		series_uid TEXT PRIMARY KEY,
		study_uid TEXT NOT NULL,
		modality TEXT NOT NULL,
		body_part TEXT NOT NULL,
		image_type TEXT NOT NULL,
		acc_hash TEXT NOT NULL,
		pd_hash TEXT NOT NULL,
		state TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		first_seen BIGINT NOT NULL,
		last_seen BIGINT NOT NULL,
		ready_at BIGINT NOT NULL DEFAULT 0,
		parked_at BIGINT NOT NULL DEFAULT 0,
		report_path TEXT NOT NULL DEFAULT '',
		report_idx BIGINT NOT NULL DEFAULT 0,
		report_hash TEXT NOT NULL DEFAULT '',
		model_version TEXT NOT NULL DEFAULT '',
		job_id BIGINT NOT NULL DEFAULT 0,
		error_class TEXT NOT NULL DEFAULT '',
		error TEXT NOT NULL DEFAULT '',
		updated_at BIGINT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS tmcad_series_state ON tmcad_series (state)`,
	`CREATE TABLE IF NOT EXISTS tmcad_report (
		path TEXT NOT NULL,
		idx BIGINT NOT NULL,
		study_uid TEXT NOT NULL,
		acc_hash TEXT NOT NULL,
		pd_hash TEXT NOT NULL,
		status_rank BIGINT NOT NULL,
		hash TEXT NOT NULL,
		format TEXT NOT NULL,
		mod_time BIGINT NOT NULL,
		seen_at BIGINT NOT NULL,
		PRIMARY KEY (path, idx)
	)`,
	`CREATE TABLE IF NOT EXISTS tmcad_seg (
		sop_uid TEXT PRIMARY KEY,
		study_uid TEXT NOT NULL,
		seg_series_uid TEXT NOT NULL,
		source_series_uid TEXT NOT NULL,
		model_version TEXT NOT NULL,
		rerun TEXT NOT NULL,
		outbox_path TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		stored_at BIGINT NOT NULL DEFAULT 0,
		sink TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX IF NOT EXISTS tmcad_seg_source ON tmcad_seg (source_series_uid, model_version, rerun)`,
	`CREATE TABLE IF NOT EXISTS tmcad_meta (
		name TEXT PRIMARY KEY,
		value TEXT NOT NULL
	)`,
}

// catalog records files, instances (by SOP Instance UID), series and
// reports in the store.
type catalog struct {
	s   *store
	now func() time.Time
}

// matchHash hashes a report match key (accession number; patient ID with
// study date) so that the catalog holds no PHI. Empty parts give "".
func matchHash(parts ...string) string {
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return ""
		}
	}
	h := sha256.Sum256([]byte("tmcad-match\x00" + strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// fileSeen reports whether path was already handled with this size and
// modification time.
func (c *catalog) fileSeen(ctx context.Context, path string, size int64, mtime time.Time) (bool, error) {
	var n int
	err := c.s.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_file WHERE path = ? AND size = ? AND mtime = ?`,
		path, size, mtime.UnixNano()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("catalog: looking up %s: %w", path, err)
	}
	return n > 0, nil
}

// markFile records that path (with this size and time) was handled as kind.
func (c *catalog) markFile(ctx context.Context, path string, size int64, mtime time.Time, kind, sop string) error {
	_, err := c.s.exec(ctx, `INSERT INTO tmcad_file (path, size, mtime, kind, sop_uid, seen_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, kind = excluded.kind, sop_uid = excluded.sop_uid, seen_at = excluded.seen_at`,
		path, size, mtime.UnixNano(), kind, sop, c.now().UnixNano())
	if err != nil {
		return fmt.Errorf("catalog: recording %s: %w", path, err)
	}
	return nil
}

// addOutcome says what adding an instance did.
type addOutcome int

const (
	addedNew       addOutcome = iota // a new instance
	addedDuplicate                   // same SOP Instance UID, same content: ignored
	addedConflict                    // same SOP Instance UID, other content: quarantine
	addedLate                        // new instance of a series already queued or done
)

// addInstance catalogues one DICOM instance and touches its series.
// existing is the path already catalogued for a duplicate or conflict.
func (c *catalog) addInstance(ctx context.Context, h dicomio.Header, sum string) (out addOutcome, existing string, err error) {
	var oldPath, oldSum string
	err = c.s.queryRow(ctx, `SELECT path, sha256 FROM tmcad_instance WHERE sop_uid = ?`, h.SOPInstanceUID).Scan(&oldPath, &oldSum)
	switch {
	case err == nil:
		if oldSum != sum {
			return addedConflict, oldPath, nil
		}
		if oldPath != "" {
			// Same object dropped twice: the first path is kept.
			return addedDuplicate, oldPath, nil
		}
		// Sent again after retention deleted its file: the copy takes its
		// place, so that the series can be processed again.
		now := c.now().UnixNano()
		if _, err := c.s.exec(ctx, `UPDATE tmcad_instance SET path = ? WHERE sop_uid = ?`, h.Path, h.SOPInstanceUID); err != nil {
			return 0, "", fmt.Errorf("catalog: re-adopting instance: %w", err)
		}
		if _, err := c.s.exec(ctx, `UPDATE tmcad_series SET last_seen = ?, updated_at = ? WHERE series_uid = ?`, now, now, h.SeriesInstanceUID); err != nil {
			return 0, "", fmt.Errorf("catalog: touching series: %w", err)
		}
		return addedLate, "", nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, "", fmt.Errorf("catalog: looking up instance: %w", err)
	}
	now := c.now().UnixNano()
	if _, err := c.s.exec(ctx, `INSERT INTO tmcad_instance (sop_uid, series_uid, study_uid, path, sha256, frames, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		h.SOPInstanceUID, h.SeriesInstanceUID, h.StudyInstanceUID, h.Path, sum, h.Frames(), now); err != nil {
		return 0, "", fmt.Errorf("catalog: adding instance: %w", err)
	}
	var state string
	err = c.s.queryRow(ctx, `SELECT state FROM tmcad_series WHERE series_uid = ?`, h.SeriesInstanceUID).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = c.s.exec(ctx, `INSERT INTO tmcad_series (series_uid, study_uid, modality, body_part, image_type, acc_hash, pd_hash, state, first_seen, last_seen, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			h.SeriesInstanceUID, h.StudyInstanceUID, strings.ToUpper(h.Modality), strings.ToUpper(h.BodyPartExamined),
			strings.ToUpper(strings.Join(h.ImageType, `\`)), matchHash(h.AccessionNumber), matchHash(h.PatientID, h.StudyDate),
			StateCollecting, now, now, now)
		if err != nil {
			return 0, "", fmt.Errorf("catalog: adding series: %w", err)
		}
		return addedNew, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("catalog: looking up series: %w", err)
	}
	switch state {
	case StateCollecting, StateWaitingReport, StateAwaitingReport, StateSkipped:
		// Still (or again) collecting: the quiet period restarts.
		_, err = c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, last_seen = ?, updated_at = ? WHERE series_uid = ?`,
			StateCollecting, now, now, h.SeriesInstanceUID)
		if err != nil {
			return 0, "", fmt.Errorf("catalog: touching series: %w", err)
		}
		return addedNew, "", nil
	}
	_, err = c.s.exec(ctx, `UPDATE tmcad_series SET last_seen = ?, updated_at = ? WHERE series_uid = ?`, now, now, h.SeriesInstanceUID)
	if err != nil {
		return 0, "", fmt.Errorf("catalog: touching series: %w", err)
	}
	return addedLate, "", nil
}

// addReport catalogues report number idx of the file at its Source.
func (c *catalog) addReport(ctx context.Context, r *reports.Report, idx int) error {
	now := c.now().UnixNano()
	_, err := c.s.exec(ctx, `INSERT INTO tmcad_report (path, idx, study_uid, acc_hash, pd_hash, status_rank, hash, format, mod_time, seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (path, idx) DO UPDATE SET study_uid = excluded.study_uid, acc_hash = excluded.acc_hash, pd_hash = excluded.pd_hash,
			status_rank = excluded.status_rank, hash = excluded.hash, format = excluded.format, mod_time = excluded.mod_time, seen_at = excluded.seen_at`,
		r.Source, idx, r.StudyInstanceUID, matchHash(r.AccessionNumber), matchHash(r.PatientID, r.StudyDate),
		r.Status.Rank(), r.Hash(), r.Format, r.ModTime.UnixNano(), now)
	if err != nil {
		return fmt.Errorf("catalog: adding report %s: %w", r.Source, err)
	}
	return nil
}

// statusOfRank is the status a stored status_rank (reports.Status.Rank)
// stands for.
func statusOfRank(rank int) reports.Status {
	switch rank {
	case 1:
		return reports.StatusPreliminary
	case 3:
		return reports.StatusCorrected
	}
	return reports.StatusFinal
}

// seriesRow is one catalogued series.
type seriesRow struct {
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

const seriesCols = `series_uid, study_uid, modality, body_part, image_type, acc_hash, pd_hash, state, reason, first_seen, last_seen,
	ready_at, parked_at, report_path, report_idx, report_hash, model_version, job_id, error_class, error, updated_at`

func scanSeries(sc interface{ Scan(...any) error }) (seriesRow, error) {
	var r seriesRow
	var first, last, ready, parked, updated int64
	err := sc.Scan(&r.SeriesUID, &r.StudyUID, &r.Modality, &r.BodyPart, &r.ImageType, &r.AccHash, &r.PDHash, &r.State, &r.Reason,
		&first, &last, &ready, &parked, &r.ReportPath, &r.ReportIdx, &r.ReportHash, &r.ModelVersion, &r.JobID, &r.ErrorClass, &r.Error, &updated)
	r.FirstSeen, r.LastSeen, r.UpdatedAt = unixNano(first), unixNano(last), unixNano(updated)
	r.ReadyAt, r.ParkedAt = unixNano(ready), unixNano(parked)
	return r, err
}

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// series returns one series, or sql.ErrNoRows.
func (c *catalog) series(ctx context.Context, uid string) (seriesRow, error) {
	r, err := scanSeries(c.s.queryRow(ctx, `SELECT `+seriesCols+` FROM tmcad_series WHERE series_uid = ?`, uid))
	if err != nil {
		return r, fmt.Errorf("catalog: series: %w", err)
	}
	return r, nil
}

// seriesWhere lists series matching a WHERE clause (with ? placeholders).
func (c *catalog) seriesWhere(ctx context.Context, where string, args ...any) ([]seriesRow, error) {
	rows, err := c.s.query(ctx, `SELECT `+seriesCols+` FROM tmcad_series WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing series: %w", err)
	}
	defer rows.Close()
	var out []seriesRow
	for rows.Next() {
		r, err := scanSeries(rows)
		if err != nil {
			return nil, fmt.Errorf("catalog: listing series: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: listing series: %w", err)
	}
	return out, nil
}

// setState moves a series to state with a reason (never PHI).
func (c *catalog) setState(ctx context.Context, uid, state, reason string) error {
	now := c.now().UnixNano()
	extra := ""
	switch state {
	case StateWaitingReport:
		extra = ", ready_at = ?"
	case StateAwaitingReport:
		extra = ", parked_at = ?"
	}
	args := []any{state, reason, now}
	if extra != "" {
		args = append(args, now)
	}
	args = append(args, uid)
	_, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = ?, updated_at = ?`+extra+` WHERE series_uid = ?`, args...)
	if err != nil {
		return fmt.Errorf("catalog: setting series state %s: %w", state, err)
	}
	return nil
}

// setQueued records that a job was queued for the series.
func (c *catalog) setQueued(ctx context.Context, uid string, jobID int64, modelVersion string, rep *reportRef) error {
	path, idx, hash := "", 0, ""
	if rep != nil {
		path, idx, hash = rep.Path, rep.Idx, rep.Hash
	}
	_, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = '', job_id = ?, model_version = ?, report_path = ?, report_idx = ?, report_hash = ?,
		error_class = '', error = '', updated_at = ? WHERE series_uid = ?`,
		StateQueued, jobID, modelVersion, path, idx, hash, c.now().UnixNano(), uid)
	if err != nil {
		return fmt.Errorf("catalog: marking series queued: %w", err)
	}
	return nil
}

// setFailed records a failed job (class and a PHI-free message).
func (c *catalog) setFailed(ctx context.Context, uid, class, reason, msg string) error {
	_, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = ?, error_class = ?, error = ?, updated_at = ? WHERE series_uid = ?`,
		StateFailed, reason, class, msg, c.now().UnixNano(), uid)
	if err != nil {
		return fmt.Errorf("catalog: marking series failed: %w", err)
	}
	return nil
}

// instancePaths returns the files of a series, one per SOP Instance UID.
func (c *catalog) instancePaths(ctx context.Context, seriesUID string) ([]string, error) {
	rows, err := c.s.query(ctx, `SELECT path FROM tmcad_instance WHERE series_uid = ? ORDER BY path`, seriesUID)
	if err != nil {
		return nil, fmt.Errorf("catalog: instances: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("catalog: instances: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// segInputs returns the files of a series catalogued at or before t (all
// of them when t is zero): the inputs of a SEG whose job listed them at t.
func (c *catalog) segInputs(ctx context.Context, seriesUID string, t time.Time) ([]string, error) {
	before := int64(1<<63 - 1)
	if !t.IsZero() {
		before = t.UnixNano()
	}
	rows, err := c.s.query(ctx, `SELECT path FROM tmcad_instance WHERE series_uid = ? AND seen_at <= ? ORDER BY path`, seriesUID, before)
	if err != nil {
		return nil, fmt.Errorf("catalog: SEG inputs: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("catalog: SEG inputs: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: SEG inputs: %w", err)
	}
	return out, nil
}

// frameCount returns the number of frames catalogued for a series.
func (c *catalog) frameCount(ctx context.Context, seriesUID string) (int, error) {
	var n sql.NullInt64
	if err := c.s.queryRow(ctx, `SELECT SUM(frames) FROM tmcad_instance WHERE series_uid = ?`, seriesUID).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: counting frames: %w", err)
	}
	return int(n.Int64), nil
}

// reportRef points at one report in one file.
type reportRef struct {
	Path string
	Idx  int
	Hash string
	// Conflict names two different reports of equal status that competed
	// for the series (reports.Choice.Conflict), for a warning.
	Conflict string
}

// matchReport finds the best report for a series: the SQL fetches every
// report that shares an identifier with it, and reports.Choose decides,
// the rule `tmcad process` uses too.
func (c *catalog) matchReport(ctx context.Context, s seriesRow) (*reportRef, error) {
	rows, err := c.s.query(ctx, `SELECT path, idx, hash, study_uid, acc_hash, pd_hash, status_rank, mod_time FROM tmcad_report
		WHERE (study_uid <> '' AND study_uid = ?) OR (acc_hash <> '' AND acc_hash = ?) OR (pd_hash <> '' AND pd_hash = ?)`,
		s.StudyUID, s.AccHash, s.PDHash)
	if err != nil {
		return nil, fmt.Errorf("catalog: matching report: %w", err)
	}
	defer rows.Close()
	var refs []reportRef
	var cands []reports.Candidate
	for rows.Next() {
		var r reportRef
		var cd reports.Candidate
		var rank, mod int64
		if err := rows.Scan(&r.Path, &r.Idx, &r.Hash, &cd.StudyUID, &cd.Accession, &cd.PatientDate, &rank, &mod); err != nil {
			return nil, fmt.Errorf("catalog: matching report: %w", err)
		}
		cd.Status, cd.ModTime, cd.ContentHash = statusOfRank(int(rank)), unixNano(mod), r.Hash
		refs, cands = append(refs, r), append(cands, cd)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: matching report: %w", err)
	}
	ch := reports.Choose(reports.StudyKeys{StudyUID: s.StudyUID, Accession: s.AccHash, PatientDate: s.PDHash}, cands, false)
	if ch.Index < 0 {
		return nil, nil
	}
	r := refs[ch.Index]
	r.Conflict = ch.Conflict
	return &r, nil
}

// segRow is one SEG produced (in the outbox or stored).
type segRow struct {
	SOPUID, StudyUID, SegSeriesUID, SourceSeriesUID string
	ModelVersion, Rerun, OutboxPath                 string
	CreatedAt, StoredAt                             time.Time
	Sink                                            string
	// Note becomes the source series' reason while the SEG is exported
	// and once it is stored (how the report guided the model); it is not
	// a column of tmcad_seg.
	Note string
}

const segCols = `sop_uid, study_uid, seg_series_uid, source_series_uid, model_version, rerun, outbox_path, created_at, stored_at, sink`

func scanSEG(sc interface{ Scan(...any) error }) (segRow, error) {
	var r segRow
	var created, stored int64
	err := sc.Scan(&r.SOPUID, &r.StudyUID, &r.SegSeriesUID, &r.SourceSeriesUID, &r.ModelVersion, &r.Rerun, &r.OutboxPath, &created, &stored, &r.Sink)
	r.CreatedAt, r.StoredAt = unixNano(created), unixNano(stored)
	return r, err
}

// addSEG records a SEG written to the outbox. r.CreatedAt is when the job
// fixed its inputs (now when zero): retention touches only instances
// catalogued by then. SEG UIDs are deterministic, so a rerun with the same
// model and report makes a SEG with the SOP Instance UID of one already
// recorded: the row is then taken over by the rerun and waits for export
// again (the sink treats the identical object as stored).
func (c *catalog) addSEG(ctx context.Context, r segRow) error {
	created := r.CreatedAt
	if created.IsZero() {
		created = c.now()
	}
	_, err := c.s.exec(ctx, `INSERT INTO tmcad_seg (`+segCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, '')
		ON CONFLICT (sop_uid) DO UPDATE SET study_uid = excluded.study_uid, seg_series_uid = excluded.seg_series_uid,
			source_series_uid = excluded.source_series_uid, model_version = excluded.model_version, rerun = excluded.rerun,
			outbox_path = excluded.outbox_path, created_at = excluded.created_at, stored_at = 0, sink = ''`,
		r.SOPUID, r.StudyUID, r.SegSeriesUID, r.SourceSeriesUID, r.ModelVersion, r.Rerun, r.OutboxPath, created.UnixNano())
	if err != nil {
		return fmt.Errorf("catalog: recording SEG: %w", err)
	}
	// A SEG made anew starts its exports afresh.
	if err := c.clearExportError(ctx, r.SOPUID); err != nil {
		return err
	}
	_, err = c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = ?, updated_at = ? WHERE series_uid = ?`,
		StateExporting, r.Note, c.now().UnixNano(), r.SourceSeriesUID)
	if err != nil {
		return fmt.Errorf("catalog: marking series exporting: %w", err)
	}
	return nil
}

// segFor returns the SEG already made for (series, model version, rerun),
// if any: a job re-run after a crash must not make a second one.
func (c *catalog) segFor(ctx context.Context, seriesUID, modelVersion, rerun string) (*segRow, error) {
	r, err := scanSEG(c.s.queryRow(ctx, `SELECT `+segCols+` FROM tmcad_seg WHERE source_series_uid = ? AND model_version = ? AND rerun = ?`,
		seriesUID, modelVersion, rerun))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: looking up SEG: %w", err)
	}
	return &r, nil
}

// seg returns one SEG by its SOP Instance UID.
func (c *catalog) seg(ctx context.Context, sop string) (segRow, error) {
	r, err := scanSEG(c.s.queryRow(ctx, `SELECT `+segCols+` FROM tmcad_seg WHERE sop_uid = ?`, sop))
	if err != nil {
		return r, fmt.Errorf("catalog: SEG: %w", err)
	}
	return r, nil
}

// unstoredSEGs lists SEGs still in the outbox, less those the archive
// refused (they wait for a reprocess).
func (c *catalog) unstoredSEGs(ctx context.Context) ([]segRow, error) {
	rows, err := c.s.query(ctx, `SELECT `+segCols+` FROM tmcad_seg WHERE stored_at = 0
		AND sop_uid NOT IN (SELECT sop_uid FROM tmcad_export_error WHERE class = ?) ORDER BY created_at`, ClassPermanent.String())
	if err != nil {
		return nil, fmt.Errorf("catalog: listing outbox: %w", err)
	}
	defer rows.Close()
	var out []segRow
	for rows.Next() {
		r, err := scanSEG(rows)
		if err != nil {
			return nil, fmt.Errorf("catalog: listing outbox: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// markStored records that a SEG is confirmed stored and its series done.
func (c *catalog) markStored(ctx context.Context, sop, sourceSeries, sink string) error {
	now := c.now().UnixNano()
	if _, err := c.s.exec(ctx, `UPDATE tmcad_seg SET stored_at = ?, sink = ? WHERE sop_uid = ?`, now, sink, sop); err != nil {
		return fmt.Errorf("catalog: marking SEG stored: %w", err)
	}
	if _, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, updated_at = ? WHERE series_uid = ?`, StateDone, now, sourceSeries); err != nil {
		return fmt.Errorf("catalog: marking series done: %w", err)
	}
	return nil
}

// lastSEGs lists the n most recently stored SEGs.
func (c *catalog) lastSEGs(ctx context.Context, n int) ([]segRow, error) {
	rows, err := c.s.query(ctx, `SELECT `+segCols+` FROM tmcad_seg WHERE stored_at <> 0 ORDER BY stored_at DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing SEGs: %w", err)
	}
	defer rows.Close()
	var out []segRow
	for rows.Next() {
		r, err := scanSEG(rows)
		if err != nil {
			return nil, fmt.Errorf("catalog: listing SEGs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// reconsiderSkipped puts every skipped series back to collecting, so that
// the ready loop applies the selection rules to it again; it returns how
// many there were.
func (c *catalog) reconsiderSkipped(ctx context.Context) (int, error) {
	res, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = '', updated_at = ? WHERE state = ?`,
		StateCollecting, c.now().UnixNano(), StateSkipped)
	if err != nil {
		return 0, fmt.Errorf("catalog: reconsidering skipped series: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("catalog: reconsidering skipped series: %w", err)
	}
	return int(n), nil
}

// retireInstance records that retention deleted an instance's file: its
// path becomes empty, so that the series is known not to be processable
// again (Reprocess skips it) rather than failing on a missing file.
func (c *catalog) retireInstance(ctx context.Context, path string) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_instance SET path = '' WHERE path = ?`, path); err != nil {
		return fmt.Errorf("catalog: retiring instance: %w", err)
	}
	return nil
}

// deletedInputs counts a series' instances whose files retention deleted.
func (c *catalog) deletedInputs(ctx context.Context, seriesUID string) (int, error) {
	var n int
	if err := c.s.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_instance WHERE series_uid = ? AND path = ''`, seriesUID).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: counting deleted inputs: %w", err)
	}
	return n, nil
}

// moveInstance updates an instance's path after retention moved it.
func (c *catalog) moveInstance(ctx context.Context, oldPath, newPath string) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_instance SET path = ? WHERE path = ?`, newPath, oldPath); err != nil {
		return fmt.Errorf("catalog: moving instance: %w", err)
	}
	return nil
}
