package catalog

import (
	"context"
	"fmt"
	"time"
)

// Companion is one object made with a SEG.
type Companion struct {
	SOPUID, SEGSOPUID, Kind, StudyUID, SeriesUID, OutboxPath string
	StoredAt                                                 time.Time
}

// AddCompanion records an object written to the outbox for the SEG
// segSOP. UIDs are deterministic, so a rerun that makes the same object
// takes its row over, to be exported again.
func (c *Catalog) AddCompanion(ctx context.Context, r Companion) error {
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

// UnstoredCompanions lists the objects of a SEG not yet stored.
func (c *Catalog) UnstoredCompanions(ctx context.Context, segSOP string) ([]Companion, error) {
	out, err := queryAll(ctx, c.s, func(sc scanner) (Companion, error) {
		var r Companion
		var stored int64
		err := sc.Scan(&r.SOPUID, &r.SEGSOPUID, &r.Kind, &r.StudyUID, &r.SeriesUID, &r.OutboxPath, &stored)
		r.StoredAt = unixNano(stored)
		return r, err
	}, `SELECT sop_uid, seg_sop_uid, kind, study_uid, series_uid, outbox_path, stored_at
		FROM tmcad_companion WHERE seg_sop_uid = ? AND stored_at = 0 ORDER BY sop_uid`, segSOP)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing objects of SEG %s: %w", segSOP, err)
	}
	return out, nil
}

// MarkCompanionStored records that an object is confirmed stored.
func (c *Catalog) MarkCompanionStored(ctx context.Context, sop string) error {
	if _, err := c.s.exec(ctx, `UPDATE tmcad_companion SET stored_at = ? WHERE sop_uid = ?`, c.now().UnixNano(), sop); err != nil {
		return fmt.Errorf("catalog: marking %s stored: %w", sop, err)
	}
	return nil
}
