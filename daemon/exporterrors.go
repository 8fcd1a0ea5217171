package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// exportErrorSchema records, per SEG still in the outbox, why its last
// export attempt failed: how many attempts failed, whether the failure may
// go away (transient: the SEG is tried again without end) or not
// (permanent: the archive refused it), and the error. The row goes once
// the SEG is stored, or made anew by a rerun. Errors name SOP UIDs and the
// archive, never PHI.
var exportErrorSchema = []string{
	`CREATE TABLE IF NOT EXISTS tmcad_export_error (
		sop_uid TEXT PRIMARY KEY,
		attempts BIGINT NOT NULL,
		class TEXT NOT NULL,
		error TEXT NOT NULL,
		first_at BIGINT NOT NULL,
		last_at BIGINT NOT NULL
	)`,
}

// maxExportErrorLen bounds the error text kept per SEG.
const maxExportErrorLen = 500

// exportErrorRow is one SEG whose export failed at its last attempt.
type exportErrorRow struct {
	SOPUID, StudyUID, SourceSeriesUID string
	Attempts                          int
	Class, Error                      string
	First, Last                       time.Time
}

// exportFailed records one failed export attempt of the SEG sop and
// returns how many attempts have failed in a row.
func (c *catalog) exportFailed(ctx context.Context, sop, class, msg string) (int, error) {
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

// exportAttempts returns how many export attempts of the SEG sop have
// failed in a row (0 when none).
func (c *catalog) exportAttempts(ctx context.Context, sop string) (int, error) {
	var n int
	err := c.s.queryRow(ctx, `SELECT COALESCE(MAX(attempts), 0) FROM tmcad_export_error WHERE sop_uid = ?`, sop).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("catalog: reading the export attempts of SEG %s: %w", sop, err)
	}
	return n, nil
}

// clearExportError forgets the export errors of the SEG sop (it is stored,
// or made anew).
func (c *catalog) clearExportError(ctx context.Context, sop string) error {
	if _, err := c.s.exec(ctx, `DELETE FROM tmcad_export_error WHERE sop_uid = ?`, sop); err != nil {
		return fmt.Errorf("catalog: clearing the export error of SEG %s: %w", sop, err)
	}
	return nil
}

// exportErrors lists the n SEGs still in the outbox whose last export
// attempt failed, latest first.
func (c *catalog) exportErrors(ctx context.Context, n int) ([]exportErrorRow, error) {
	rows, err := c.s.query(ctx, `SELECT e.sop_uid, s.study_uid, s.source_series_uid, e.attempts, e.class, e.error, e.first_at, e.last_at
		FROM tmcad_export_error e JOIN tmcad_seg s ON s.sop_uid = e.sop_uid
		WHERE s.stored_at = 0 ORDER BY e.last_at DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing export errors: %w", err)
	}
	defer rows.Close()
	var out []exportErrorRow
	for rows.Next() {
		var r exportErrorRow
		var first, last int64
		if err := rows.Scan(&r.SOPUID, &r.StudyUID, &r.SourceSeriesUID, &r.Attempts, &r.Class, &r.Error, &first, &last); err != nil {
			return nil, fmt.Errorf("catalog: listing export errors: %w", err)
		}
		r.First, r.Last = time.Unix(0, first), time.Unix(0, last)
		out = append(out, r)
	}
	return out, rows.Err()
}

// exportRetrying counts the SEGs in the outbox whose last export attempt
// failed for a reason that may go away: they are being tried again.
func exportRetrying(ctx context.Context, s *store) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_export_error e JOIN tmcad_seg s ON s.sop_uid = e.sop_uid
		WHERE s.stored_at = 0 AND e.class = ?`, ClassTransient.String()).Scan(&n)
	return n, err
}

// oneLine keeps the first line of an error message: what goes into the
// catalogue and `tmcad status` is one line.
func oneLine(msg string) string {
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// retryingCollector exports tmcad_export_retrying at scrape time, from the
// catalogue, so that it is right after a restart too.
type retryingCollector struct {
	desc *prometheus.Desc
	s    *store
}

// Describe sends the one descriptor.
func (c *retryingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect queries the catalogue.
func (c *retryingCollector) Collect(ch chan<- prometheus.Metric) {
	n := 0
	if c.s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if v, err := exportRetrying(ctx, c.s); err == nil {
			n = v
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
