package daemon

import (
	"context"
	"fmt"
	"time"
)

// companionSchema records the objects made with a SEG (the measurement
// report, the overlay): each waits in the outbox beside its SEG and is
// stored by the SEG's export job before the SEG itself, so that a series
// is done only when all of its objects are stored. A job records its
// companions before its SEG; a job that dies in between runs again and
// makes the same objects (same UIDs) anew.
var companionSchema = []string{
	`CREATE TABLE IF NOT EXISTS tmcad_companion (
		sop_uid TEXT PRIMARY KEY,
		seg_sop_uid TEXT NOT NULL,
		kind TEXT NOT NULL,
		study_uid TEXT NOT NULL,
		series_uid TEXT NOT NULL,
		outbox_path TEXT NOT NULL,
		stored_at BIGINT NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS tmcad_companion_seg ON tmcad_companion (seg_sop_uid)`,
}

// companionRow is one object made with a SEG.
type companionRow struct {
	SOPUID, SEGSOPUID, Kind, StudyUID, SeriesUID, OutboxPath string
	StoredAt                                                 time.Time
}

// addCompanion records an object written to the outbox for the SEG
// segSOP. UIDs are deterministic, so a rerun that makes the same object
// takes its row over, to be exported again.
func (c *catalog) addCompanion(ctx context.Context, r companionRow) error {
	_, err := c.s.exec(ctx, `INSERT INTO tmcad_companion (sop_uid, seg_sop_uid, kind, study_uid, series_uid, outbox_path, stored_at)
		VALUES (?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT (sop_uid) DO UPDATE SET seg_sop_uid = excluded.seg_sop_uid, kind = excluded.kind, study_uid = excluded.study_uid,
			series_uid = excluded.series_uid, outbox_path = excluded.outbox_path, stored_at = 0`,
		r.SOPUID, r.SEGSOPUID, r.Kind, r.StudyUID, r.SeriesUID, r.OutboxPath)
	if err != nil {
		return fmt.Errorf("catalog: recording %s %s of SEG %s: %w", r.Kind, r.SOPUID, r.SEGSOPUID, err)
	}
	return nil
}

// unstoredCompanions lists the objects of a SEG not yet stored.
func (c *catalog) unstoredCompanions(ctx context.Context, segSOP string) ([]companionRow, error) {
	rows, err := c.s.query(ctx, `SELECT sop_uid, seg_sop_uid, kind, study_uid, series_uid, outbox_path, stored_at
		FROM tmcad_companion WHERE seg_sop_uid = ? AND stored_at = 0 ORDER BY sop_uid`, segSOP)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing objects of SEG %s: %w", segSOP, err)
	}
	defer rows.Close()
	var out []companionRow
	for rows.Next() {
		var r companionRow
		var stored int64
		if err := rows.Scan(&r.SOPUID, &r.SEGSOPUID, &r.Kind, &r.StudyUID, &r.SeriesUID, &r.OutboxPath, &stored); err != nil {
			return nil, fmt.Errorf("catalog: listing objects of SEG %s: %w", segSOP, err)
		}
		r.StoredAt = unixNano(stored)
		out = append(out, r)
	}
	return out, rows.Err()
}

// markCompanionStored records that an object is confirmed stored.
func (c *catalog) markCompanionStored(ctx context.Context, sop string) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_companion SET stored_at = ? WHERE sop_uid = ?`, c.now().UnixNano(), sop); err != nil {
		return fmt.Errorf("catalog: marking %s stored: %w", sop, err)
	}
	return nil
}
