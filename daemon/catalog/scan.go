package catalog

import (
	"context"
	"time"
)

// scanner is one row to scan: a *sql.Row or the current row of *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query written with ? placeholders and scans every row
// of its result with scan. It is the one loop over *sql.Rows in the
// catalogue.
func queryAll[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanString scans a one-column text row.
func scanString(r scanner) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

// keyCount is one row of a "SELECT key, COUNT(*) ... GROUP BY key".
type keyCount struct {
	key string
	n   int
}

// queryCounts runs a "SELECT key, COUNT(*) ... GROUP BY key" and
// collects its rows into a map.
func queryCounts(ctx context.Context, s *Store, query string, args ...any) (map[string]int, error) {
	kcs, err := queryAll(ctx, s, func(r scanner) (keyCount, error) {
		var kc keyCount
		err := r.Scan(&kc.key, &kc.n)
		return kc, err
	}, query, args...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(kcs))
	for _, kc := range kcs {
		out[kc.key] = kc.n
	}
	return out, nil
}

// unixNano is the time a stored Unix-nanosecond column holds; 0 is the
// zero time (never).
func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
