package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SEG is one SEG produced (in the outbox or stored).
type SEG struct {
	SOPUID, StudyUID, SegSeriesUID, SourceSeriesUID string
	ModelVersion, Rerun, OutboxPath                 string
	CreatedAt, StoredAt                             time.Time
	Sink                                            string
	// Note becomes the source series' reason while the SEG is exported
	// and once it is stored (how the report guided the model); it is not
	// a column of tmcad_seg.
	Note string
}

// segCols are tmcad_seg's columns in scanSEG's order.
const segCols = `sop_uid, study_uid, seg_series_uid, source_series_uid, model_version, rerun, outbox_path, created_at, stored_at, sink`

// scanSEG scans one row of segCols.
func scanSEG(sc scanner) (SEG, error) {
	var r SEG
	var created, stored int64
	err := sc.Scan(&r.SOPUID, &r.StudyUID, &r.SegSeriesUID, &r.SourceSeriesUID, &r.ModelVersion, &r.Rerun, &r.OutboxPath, &created, &stored, &r.Sink)
	r.CreatedAt, r.StoredAt = unixNano(created), unixNano(stored)
	return r, err
}

// AddSEG records a SEG written to the outbox. r.CreatedAt is when the job
// fixed its inputs (now when zero): retention touches only instances
// catalogued by then. SEG UIDs are deterministic, so a rerun with the same
// model and report makes a SEG with the SOP Instance UID of one already
// recorded: the row is then taken over by the rerun and waits for export
// again (the sink treats the identical object as stored).
func (c *Catalog) AddSEG(ctx context.Context, r SEG) error {
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
	if err := c.ClearExportError(ctx, r.SOPUID); err != nil {
		return err
	}
	_, err = c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, reason = ?, updated_at = ? WHERE series_uid = ?`,
		StateExporting, r.Note, c.now().UnixNano(), r.SourceSeriesUID)
	if err != nil {
		return fmt.Errorf("catalog: marking series exporting: %w", err)
	}
	return nil
}

// SEGFor returns the SEG already made for (series, model version, rerun),
// if any: a job re-run after a crash must not make a second one.
func (c *Catalog) SEGFor(ctx context.Context, seriesUID, modelVersion, rerun string) (*SEG, error) {
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

// SEG returns one SEG by its SOP Instance UID.
func (c *Catalog) SEG(ctx context.Context, sop string) (SEG, error) {
	r, err := scanSEG(c.s.queryRow(ctx, `SELECT `+segCols+` FROM tmcad_seg WHERE sop_uid = ?`, sop))
	if err != nil {
		return r, fmt.Errorf("catalog: SEG: %w", err)
	}
	return r, nil
}

// UnstoredSEGs lists SEGs still in the outbox, less those whose last
// export failed with an error of class refused (the archive refused them:
// they wait for a reprocess).
func (c *Catalog) UnstoredSEGs(ctx context.Context, refused string) ([]SEG, error) {
	out, err := queryAll(ctx, c.s, scanSEG, `SELECT `+segCols+` FROM tmcad_seg WHERE stored_at = 0
		AND sop_uid NOT IN (SELECT sop_uid FROM tmcad_export_error WHERE class = ?) ORDER BY created_at`, refused)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing outbox: %w", err)
	}
	return out, nil
}

// OutboxCount counts the SEGs not yet stored.
func (c *Catalog) OutboxCount(ctx context.Context) (int, error) {
	var n int
	if err := c.s.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_seg WHERE stored_at = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: counting the outbox: %w", err)
	}
	return n, nil
}

// InOutbox reports whether the outbox file at path (named after the SOP
// Instance UID sop) is a SEG waiting for export, or an object made with
// one.
func (c *Catalog) InOutbox(ctx context.Context, path, sop string) (bool, error) {
	var n int
	if err := c.s.queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM tmcad_seg WHERE (outbox_path = ? OR sop_uid = ?) AND stored_at = 0) +
		(SELECT COUNT(*) FROM tmcad_companion c JOIN tmcad_seg s ON s.sop_uid = c.seg_sop_uid
			WHERE (c.outbox_path = ? OR c.sop_uid = ?) AND c.stored_at = 0)`,
		path, sop, path, sop).Scan(&n); err != nil {
		return false, fmt.Errorf("catalog: looking up outbox file %s: %w", path, err)
	}
	return n > 0, nil
}

// UnstoredSEGOf returns the SOP Instance UID of the latest SEG of a series
// still in the outbox; false when there is none.
func (c *Catalog) UnstoredSEGOf(ctx context.Context, seriesUID string) (string, bool, error) {
	var sop string
	err := c.s.queryRow(ctx, `SELECT sop_uid FROM tmcad_seg WHERE source_series_uid = ? AND stored_at = 0 ORDER BY created_at DESC LIMIT 1`, seriesUID).Scan(&sop)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("catalog: looking up the unstored SEG of series %s: %w", seriesUID, err)
	}
	return sop, true, nil
}

// MarkStored records that a SEG is confirmed stored and its series done.
func (c *Catalog) MarkStored(ctx context.Context, sop, sourceSeries, sink string) error {
	now := c.now().UnixNano()
	if _, err := c.s.exec(ctx, `UPDATE tmcad_seg SET stored_at = ?, sink = ? WHERE sop_uid = ?`, now, sink, sop); err != nil {
		return fmt.Errorf("catalog: marking SEG stored: %w", err)
	}
	if _, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, updated_at = ? WHERE series_uid = ?`, StateDone, now, sourceSeries); err != nil {
		return fmt.Errorf("catalog: marking series done: %w", err)
	}
	return nil
}

// LastSEGs lists the n most recently stored SEGs.
func (c *Catalog) LastSEGs(ctx context.Context, n int) ([]SEG, error) {
	out, err := queryAll(ctx, c.s, scanSEG, `SELECT `+segCols+` FROM tmcad_seg WHERE stored_at <> 0 ORDER BY stored_at DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing SEGs: %w", err)
	}
	return out, nil
}

// ReconsiderSkipped puts every skipped series back to collecting, so that
// the ready loop applies the selection rules to it again; it returns how
// many there were.
func (c *Catalog) ReconsiderSkipped(ctx context.Context) (int, error) {
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

// RetireInstance records that retention deleted an instance's file: its
// path becomes empty, so that the series is known not to be processable
// again (Reprocess skips it) rather than failing on a missing file.
func (c *Catalog) RetireInstance(ctx context.Context, path string) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_instance SET path = '' WHERE path = ?`, path); err != nil {
		return fmt.Errorf("catalog: retiring instance: %w", err)
	}
	return nil
}

// DeletedInputs counts a series' instances whose files retention deleted.
func (c *Catalog) DeletedInputs(ctx context.Context, seriesUID string) (int, error) {
	var n int
	if err := c.s.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_instance WHERE series_uid = ? AND path = ''`, seriesUID).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: counting deleted inputs: %w", err)
	}
	return n, nil
}

// MoveInstance updates an instance's path after retention moved it.
func (c *Catalog) MoveInstance(ctx context.Context, oldPath, newPath string) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_instance SET path = ? WHERE path = ?`, newPath, oldPath); err != nil {
		return fmt.Errorf("catalog: moving instance: %w", err)
	}
	return nil
}
