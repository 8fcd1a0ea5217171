// Package catalog is the daemon's database: River's queue and the
// catalogue of what was dropped (files, instances by SOP Instance UID,
// series and their states, reports by hashed match keys) and what was
// made (SEGs, the objects made with them, export errors). Every SQL
// statement tmcad runs is here, in SQL portable between the embedded
// SQLite file and PostgreSQL; nothing in it holds PHI.
package catalog

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

// Catalog records files, instances (by SOP Instance UID), series,
// reports, SEGs and the objects made with them in the store. Every SQL
// statement of tmcad's own tables is one of its methods.
type Catalog struct {
	s   *Store
	now func() time.Time
}

// New returns the catalogue in s; now is the clock (time.Now when nil).
func New(s *Store, now func() time.Time) *Catalog {
	if now == nil {
		now = time.Now
	}
	return &Catalog{s: s, now: now}
}

// Store returns the database the catalogue is in.
func (c *Catalog) Store() *Store { return c.s }

// MatchHash hashes a report match key (accession number; patient ID with
// study date) so that the catalog holds no PHI. Empty parts give "".
func MatchHash(parts ...string) string {
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return ""
		}
	}
	h := sha256.Sum256([]byte("tmcad-match\x00" + strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// FileSeen reports whether path was already handled with this size and
// modification time.
func (c *Catalog) FileSeen(ctx context.Context, path string, size int64, mtime time.Time) (bool, error) {
	var n int
	err := c.s.queryRow(ctx, `SELECT COUNT(*) FROM tmcad_file WHERE path = ? AND size = ? AND mtime = ?`,
		path, size, mtime.UnixNano()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("catalog: looking up %s: %w", path, err)
	}
	return n > 0, nil
}

// MarkFile records that path (with this size and time) was handled as kind.
func (c *Catalog) MarkFile(ctx context.Context, path string, size int64, mtime time.Time, kind, sop string) error {
	_, err := c.s.exec(ctx, `INSERT INTO tmcad_file (path, size, mtime, kind, sop_uid, seen_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, kind = excluded.kind, sop_uid = excluded.sop_uid, seen_at = excluded.seen_at`,
		path, size, mtime.UnixNano(), kind, sop, c.now().UnixNano())
	if err != nil {
		return fmt.Errorf("catalog: recording %s: %w", path, err)
	}
	return nil
}

// AddOutcome says what adding an instance did.
type AddOutcome int

const (
	// AddedNew: a new instance.
	AddedNew AddOutcome = iota
	// AddedDuplicate: same SOP Instance UID, same content: ignored.
	AddedDuplicate
	// AddedConflict: same SOP Instance UID, other content: quarantine.
	AddedConflict
	// AddedLate: a new instance of a series already queued or done.
	AddedLate
)

// AddInstance catalogues one DICOM instance and touches its series.
// existing is the path already catalogued for a duplicate or conflict.
// Nodes sharing a drop folder may catalogue the same file at once: the
// inserts do nothing on a conflict, and the loser judges the row the
// winner wrote.
func (c *Catalog) AddInstance(ctx context.Context, h dicomio.Header, sum string) (out AddOutcome, existing string, err error) {
	return c.addInstance(ctx, h, sum, true)
}

// FileKind is how a file whose instance had this outcome is recorded (and
// counted): "conflict", "duplicate", or "dicom".
func (o AddOutcome) FileKind() string {
	switch o {
	case AddedConflict:
		return "conflict"
	case AddedDuplicate:
		return "duplicate"
	}
	return "dicom"
}

// AddInstanceFile is AddInstance followed by MarkFile of the file it came
// from (path, size, mtime; recorded with the outcome's FileKind), in one
// transaction: one commit per instance, which bounds how fast a burst is
// catalogued on SQLite.
func (c *Catalog) AddInstanceFile(ctx context.Context, h dicomio.Header, sum, path string, size int64, mtime time.Time) (out AddOutcome, existing string, err error) {
	err = c.s.inTx(ctx, func(s *Store) error {
		tc := &Catalog{s: s, now: c.now}
		var err error
		if out, existing, err = tc.addInstance(ctx, h, sum, true); err != nil {
			return err
		}
		return tc.MarkFile(ctx, path, size, mtime, out.FileKind(), h.SOPInstanceUID)
	})
	return out, existing, err
}

// addInstance is AddInstance; again allows one more look after losing the
// insert to another writer.
func (c *Catalog) addInstance(ctx context.Context, h dicomio.Header, sum string, again bool) (out AddOutcome, existing string, err error) {
	var oldPath, oldSum string
	err = c.s.queryRow(ctx, `SELECT path, sha256 FROM tmcad_instance WHERE sop_uid = ?`, h.SOPInstanceUID).Scan(&oldPath, &oldSum)
	switch {
	case err == nil:
		if oldSum != sum {
			return AddedConflict, oldPath, nil
		}
		if oldPath != "" {
			// Same object dropped twice: the first path is kept.
			return AddedDuplicate, oldPath, nil
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
		return AddedLate, "", nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, "", fmt.Errorf("catalog: looking up instance: %w", err)
	}
	now := c.now().UnixNano()
	res, err := c.s.exec(ctx, `INSERT INTO tmcad_instance (sop_uid, series_uid, study_uid, path, sha256, frames, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sop_uid) DO NOTHING`,
		h.SOPInstanceUID, h.SeriesInstanceUID, h.StudyInstanceUID, h.Path, sum, h.Frames(), now)
	if err != nil {
		return 0, "", fmt.Errorf("catalog: adding instance: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		if !again {
			return 0, "", fmt.Errorf("catalog: adding instance %s: neither inserted nor found", h.SOPInstanceUID)
		}
		// Another node catalogued it between the lookup and the insert.
		return c.addInstance(ctx, h, sum, false)
	}
	var state string
	err = c.s.queryRow(ctx, `SELECT state FROM tmcad_series WHERE series_uid = ?`, h.SeriesInstanceUID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		res, err := c.s.exec(ctx, `INSERT INTO tmcad_series (series_uid, study_uid, modality, body_part, image_type, acc_hash, pd_hash, state, first_seen, last_seen, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series_uid) DO NOTHING`,
			h.SeriesInstanceUID, h.StudyInstanceUID, strings.ToUpper(h.Modality), strings.ToUpper(h.BodyPartExamined),
			strings.ToUpper(strings.Join(h.ImageType, `\`)), MatchHash(h.AccessionNumber), MatchHash(h.PatientID, h.StudyDate),
			StateCollecting, now, now, now)
		if err != nil {
			return 0, "", fmt.Errorf("catalog: adding series: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return AddedNew, "", nil
		}
		// Another node added the series meanwhile: touch it below.
		err = c.s.queryRow(ctx, `SELECT state FROM tmcad_series WHERE series_uid = ?`, h.SeriesInstanceUID).Scan(&state)
	}
	if err != nil {
		return 0, "", fmt.Errorf("catalog: looking up series: %w", err)
	}
	switch state {
	case StateCollecting, StateWaitingReport, StateAwaitingReport, StateSkipped:
		// Still (or again) collecting: the quiet period restarts, unless
		// another node queued the series since it was read.
		res, err := c.s.exec(ctx, `UPDATE tmcad_series SET state = ?, last_seen = ?, updated_at = ? WHERE series_uid = ? AND state IN (?, ?, ?, ?)`,
			StateCollecting, now, now, h.SeriesInstanceUID, StateCollecting, StateWaitingReport, StateAwaitingReport, StateSkipped)
		if err != nil {
			return 0, "", fmt.Errorf("catalog: touching series: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return AddedNew, "", nil
		}
	}
	_, err = c.s.exec(ctx, `UPDATE tmcad_series SET last_seen = ?, updated_at = ? WHERE series_uid = ?`, now, now, h.SeriesInstanceUID)
	if err != nil {
		return 0, "", fmt.Errorf("catalog: touching series: %w", err)
	}
	return AddedLate, "", nil
}

// ForgetReports removes the reports catalogued from the file path (read
// again, it is catalogued anew).
func (c *Catalog) ForgetReports(ctx context.Context, path string) error {
	if _, err := c.s.exec(ctx, `DELETE FROM tmcad_report WHERE path = ?`, path); err != nil {
		return fmt.Errorf("catalog: replacing reports of %s: %w", path, err)
	}
	return nil
}

// AddReport catalogues report number idx of the file at its Source.
func (c *Catalog) AddReport(ctx context.Context, r *reports.Report, idx int) error {
	now := c.now().UnixNano()
	_, err := c.s.exec(ctx, `INSERT INTO tmcad_report (path, idx, study_uid, acc_hash, pd_hash, status_rank, hash, format, mod_time, seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (path, idx) DO UPDATE SET study_uid = excluded.study_uid, acc_hash = excluded.acc_hash, pd_hash = excluded.pd_hash,
			status_rank = excluded.status_rank, hash = excluded.hash, format = excluded.format, mod_time = excluded.mod_time, seen_at = excluded.seen_at`,
		r.Source, idx, r.StudyInstanceUID, MatchHash(r.AccessionNumber), MatchHash(r.PatientID, r.StudyDate),
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

// InstancePaths returns the files of a series, one per SOP Instance UID.
func (c *Catalog) InstancePaths(ctx context.Context, seriesUID string) ([]string, error) {
	out, err := queryAll(ctx, c.s, scanString, `SELECT path FROM tmcad_instance WHERE series_uid = ? ORDER BY path`, seriesUID)
	if err != nil {
		return nil, fmt.Errorf("catalog: instances: %w", err)
	}
	return out, nil
}

// SEGInputs returns the files of a series catalogued at or before t (all
// of them when t is zero): the inputs of a SEG whose job listed them at t.
func (c *Catalog) SEGInputs(ctx context.Context, seriesUID string, t time.Time) ([]string, error) {
	before := int64(1<<63 - 1)
	if !t.IsZero() {
		before = t.UnixNano()
	}
	out, err := queryAll(ctx, c.s, scanString, `SELECT path FROM tmcad_instance WHERE series_uid = ? AND seen_at <= ? ORDER BY path`, seriesUID, before)
	if err != nil {
		return nil, fmt.Errorf("catalog: SEG inputs: %w", err)
	}
	return out, nil
}

// FrameCount returns the number of frames catalogued for a series.
func (c *Catalog) FrameCount(ctx context.Context, seriesUID string) (int, error) {
	var n sql.NullInt64
	if err := c.s.queryRow(ctx, `SELECT SUM(frames) FROM tmcad_instance WHERE series_uid = ?`, seriesUID).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: counting frames: %w", err)
	}
	return int(n.Int64), nil
}

// ReportRef points at one report in one file.
type ReportRef struct {
	Path string
	Idx  int
	Hash string
	// Conflict names two different reports of equal status that competed
	// for the series (reports.Choice.Conflict), for a warning.
	Conflict string
}

// MatchReport finds the best report for a series (nil when none): the
// rule of ChooseReport, without its reason.
func (c *Catalog) MatchReport(ctx context.Context, s Series) (*ReportRef, error) {
	ref, _, err := c.ChooseReport(ctx, s)
	return ref, err
}

// ChooseReport finds the best report for a series: the SQL fetches every
// report that shares an identifier with it, and reports.Choose decides,
// the rule `tmcad process` uses too. The choice's Reason says why this
// report, or why none (no candidate, ambiguous, another study's UID),
// without PHI; the ref is nil when none was chosen.
func (c *Catalog) ChooseReport(ctx context.Context, s Series) (*ReportRef, reports.Choice, error) {
	type candidate struct {
		ref ReportRef
		cd  reports.Candidate
	}
	found, err := queryAll(ctx, c.s, func(sc scanner) (candidate, error) {
		var x candidate
		var rank, mod int64
		err := sc.Scan(&x.ref.Path, &x.ref.Idx, &x.ref.Hash, &x.cd.StudyUID, &x.cd.Accession, &x.cd.PatientDate, &rank, &mod)
		x.cd.Status, x.cd.ModTime, x.cd.ContentHash = statusOfRank(int(rank)), unixNano(mod), x.ref.Hash
		return x, err
	}, `SELECT path, idx, hash, study_uid, acc_hash, pd_hash, status_rank, mod_time FROM tmcad_report
		WHERE (study_uid <> '' AND study_uid = ?) OR (acc_hash <> '' AND acc_hash = ?) OR (pd_hash <> '' AND pd_hash = ?)`,
		s.StudyUID, s.AccHash, s.PDHash)
	if err != nil {
		return nil, reports.Choice{}, fmt.Errorf("catalog: matching report: %w", err)
	}
	refs := make([]ReportRef, len(found))
	cands := make([]reports.Candidate, len(found))
	for i, x := range found {
		refs[i], cands[i] = x.ref, x.cd
	}
	ch := reports.Choose(reports.StudyKeys{StudyUID: s.StudyUID, Accession: s.AccHash, PatientDate: s.PDHash}, cands, false)
	if ch.Index < 0 {
		return nil, ch, nil
	}
	r := refs[ch.Index]
	r.Conflict = ch.Conflict
	return &r, ch, nil
}
