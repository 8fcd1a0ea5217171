package catalog

// schema creates the catalogue's tables (River's come from its own
// migrations). It is portable between SQLite and PostgreSQL. Times are Unix
// nanoseconds. No column holds PHI: report match keys are hashes, and a
// report file is named by its key (ReportKeys).
//
// tmcad_file, tmcad_instance, tmcad_series and tmcad_report are what was
// dropped; tmcad_seg the SEGs made; tmcad_meta holds the report path key.
//
// tmcad_companion records the objects made with a SEG (the measurement
// report, the overlay): each waits in the outbox beside its SEG and is
// stored by the SEG's export job before the SEG itself, so that a series
// is done only when all of its objects are stored. A job records its
// companions before its SEG; a job that dies in between runs again and
// makes the same objects (same UIDs) anew.
//
// tmcad_export_error records, per SEG still in the outbox, why its last
// export attempt failed: how many attempts failed, whether the failure may
// go away (transient: the SEG is tried again without end) or not
// (permanent: the archive refused it), and the error. The row goes once
// the SEG is stored, or made anew by a rerun. Errors name SOP UIDs and the
// archive, never PHI.
var schema = []string{
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
	`CREATE TABLE IF NOT EXISTS tmcad_export_error (
		sop_uid TEXT PRIMARY KEY,
		attempts BIGINT NOT NULL,
		class TEXT NOT NULL,
		error TEXT NOT NULL,
		first_at BIGINT NOT NULL,
		last_at BIGINT NOT NULL
	)`,
}
