package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// riverJob is one row of River's job table, as the daemon left it.
type riverJob struct {
	ID        int64
	Kind      string
	SeriesUID string // process jobs
	SOPUID    string // export jobs
	Created   time.Time
	Attempted time.Time
	Finalized time.Time
	Attempt   int
	State     string
}

// readJobs reads River's jobs from the daemon's queue database (the SQLite
// file in state_dir, or PostgreSQL at url), after the daemon stopped.
func readJobs(ctx context.Context, stateDir, url string) ([]riverJob, error) {
	driver, dsn := "sqlite", "file:"+filepath.Join(stateDir, "tmcad.db")+"?mode=ro"
	if url != "" {
		driver, dsn = "pgx", url
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("queue database: %w", err)
	}
	defer db.Close()
	// Job arguments are JSONB in both databases; ask for them as text.
	q := `SELECT id, kind, json(args), created_at, attempted_at, finalized_at, attempt, state FROM river_job`
	if url != "" {
		q = `SELECT id, kind, args::text, created_at, attempted_at, finalized_at, attempt, state FROM river_job`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("reading river_job: %w", err)
	}
	defer rows.Close()
	var out []riverJob
	for rows.Next() {
		var j riverJob
		var args, created, attempted, finalized any
		if err := rows.Scan(&j.ID, &j.Kind, &args, &created, &attempted, &finalized, &j.Attempt, &j.State); err != nil {
			return nil, fmt.Errorf("reading river_job: %w", err)
		}
		var a struct {
			SeriesUID string `json:"series_uid"`
			SOPUID    string `json:"sop_uid"`
		}
		switch v := args.(type) {
		case []byte:
			_ = json.Unmarshal(v, &a)
		case string:
			_ = json.Unmarshal([]byte(v), &a)
		case map[string]any:
			a.SeriesUID, _ = v["series_uid"].(string)
			a.SOPUID, _ = v["sop_uid"].(string)
		}
		j.SeriesUID, j.SOPUID = a.SeriesUID, a.SOPUID
		if j.Created, err = dbTime(created); err != nil {
			return nil, err
		}
		if j.Attempted, err = dbTime(attempted); err != nil {
			return nil, err
		}
		if j.Finalized, err = dbTime(finalized); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading river_job: %w", err)
	}
	return out, nil
}

// dbTime converts a timestamp column (time.Time from PostgreSQL, text or
// time.Time from SQLite) to a time; NULL is the zero time.
func dbTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return t, nil
	case []byte:
		return parseDBTime(string(t))
	case string:
		return parseDBTime(t)
	}
	return time.Time{}, fmt.Errorf("river_job timestamp of type %T", v)
}

// parseDBTime parses the text forms SQLite timestamps take (UTC unless
// they say otherwise).
func parseDBTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("river_job timestamp %q: unknown form", s)
}
