package catalog

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// maxExportErrorLen bounds the error text kept per SEG.
const maxExportErrorLen = 500

// ExportError is one SEG whose export failed at its last attempt.
type ExportError struct {
	SOPUID, StudyUID, SourceSeriesUID string
	Attempts                          int
	Class, Error                      string
	First, Last                       time.Time
}

// ExportFailed records one failed export attempt of the SEG sop and
// returns how many attempts have failed in a row.
func (c *Catalog) ExportFailed(ctx context.Context, sop, class, msg string) (int, error) {
	if len(msg) > maxExportErrorLen {
		cut := maxExportErrorLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	now := c.now().UnixNano()
	_, err := c.s.exec(ctx, `INSERT INTO tmcad_export_error (sop_uid, attempts, class, error, first_at, last_at)
		VALUES (?, 1, ?, ?, ?, ?)
		ON CONFLICT (sop_uid) DO UPDATE SET attempts = tmcad_export_error.attempts + 1, class = excluded.class,
			error = excluded.error, last_at = excluded.last_at`,
		sop, class, msg, now, now)
	if err != nil {
		return 0, fmt.Errorf("catalog: recording the export error of SEG %s: %w", sop, err)
	}
	var n int
	if err := c.s.queryRow(ctx, `SELECT attempts FROM tmcad_export_error WHERE sop_uid = ?`, sop).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: reading the export attempts of SEG %s: %w", sop, err)
	}
	return n, nil
}

// ExportAttempts returns how many export attempts of the SEG sop have
// failed in a row (0 when none).
func (c *Catalog) ExportAttempts(ctx context.Context, sop string) (int, error) {
	var n int
	err := c.s.queryRow(ctx, `SELECT COALESCE(MAX(attempts), 0) FROM tmcad_export_error WHERE sop_uid = ?`, sop).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("catalog: reading the export attempts of SEG %s: %w", sop, err)
	}
	return n, nil
}

// ClearExportError forgets the export errors of the SEG sop (it is stored,
// or made anew).
func (c *Catalog) ClearExportError(ctx context.Context, sop string) error {
	if _, err := c.s.exec(ctx, `DELETE FROM tmcad_export_error WHERE sop_uid = ?`, sop); err != nil {
		return fmt.Errorf("catalog: clearing the export error of SEG %s: %w", sop, err)
	}
	return nil
}

// ExportErrors lists the n SEGs still in the outbox whose last export
// attempt failed, latest first.
func (c *Catalog) ExportErrors(ctx context.Context, n int) ([]ExportError, error) {
	out, err := queryAll(ctx, c.s, func(sc scanner) (ExportError, error) {
		var r ExportError
		var first, last int64
		err := sc.Scan(&r.SOPUID, &r.StudyUID, &r.SourceSeriesUID, &r.Attempts, &r.Class, &r.Error, &first, &last)
		r.First, r.Last = time.Unix(0, first), time.Unix(0, last)
		return r, err
	}, `SELECT e.sop_uid, s.study_uid, s.source_series_uid, e.attempts, e.class, e.error, e.first_at, e.last_at
		FROM tmcad_export_error e JOIN tmcad_seg s ON s.sop_uid = e.sop_uid
		WHERE s.stored_at = 0 ORDER BY e.last_at DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing export errors: %w", err)
	}
	return out, nil
}

// ExportRetrying counts the SEGs in the outbox whose last export attempt
// failed with an error of class (the one that may go away: they are
// being tried again).
func (c *Catalog) ExportRetrying(ctx context.Context, class string) (int, error) {
	var n int
	err := c.s.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_export_error e JOIN tmcad_seg s ON s.sop_uid = e.sop_uid
		WHERE s.stored_at = 0 AND e.class = ?`, class).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("catalog: counting SEGs retrying: %w", err)
	}
	return n, nil
}
