package catalog

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Report files are named by the site, usually <AccessionNumber>.txt, so a
// report file's path is PHI. Logs, errors, `tmcad status` and the
// catalogue (tmcad_file.path, tmcad_report.path, tmcad_series.report_path)
// name such a file by its key instead: "sha256:" and 16 hex digits of an
// HMAC-SHA-256 of the path under a random key kept in the database. The
// key makes the hash stable for this installation and not reversible by
// hashing guessed accession numbers. To read a report again the daemon
// keeps the key → path index in memory: every file in the reports folder
// passes through ingest (the watcher's first scan after a start sends
// them all), and a miss is resolved by a scan of the reports folder.

// reportKeyName is the HMAC key's row in tmcad_meta.
const reportKeyName = "report_path_key"

// reportKeyPrefix starts every report key.
const reportKeyPrefix = "sha256:"

// ReportKeys derives report keys and maps them back to paths.
type ReportKeys struct {
	secret []byte
	mu     sync.Mutex
	paths  map[string]string // key → path
}

// LoadReportKeys reads the HMAC key from the database, creating it on
// first use. It lives in the database, not in state_dir, so that nodes
// sharing one PostgreSQL queue derive the same keys.
func LoadReportKeys(ctx context.Context, s *Store) (*ReportKeys, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("catalog: report path key: %w", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO tmcad_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
		reportKeyName, hex.EncodeToString(b)); err != nil {
		return nil, fmt.Errorf("catalog: creating the report path key: %w", err)
	}
	var v string
	if err := s.queryRow(ctx, `SELECT value FROM tmcad_meta WHERE name = ?`, reportKeyName).Scan(&v); err != nil {
		return nil, fmt.Errorf("catalog: reading the report path key: %w", err)
	}
	secret, err := hex.DecodeString(v)
	if err != nil || len(secret) < 16 {
		return nil, errors.New("catalog: report path key in tmcad_meta is not 32 hex-encoded bytes")
	}
	return &ReportKeys{secret: secret, paths: map[string]string{}}, nil
}

// Key returns the report key of path and remembers the path.
func (k *ReportKeys) Key(path string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(path))
	key := reportKeyPrefix + hex.EncodeToString(m.Sum(nil))[:16]
	k.mu.Lock()
	k.paths[key] = path
	k.mu.Unlock()
	return key
}

// IsReportKey reports whether a catalogued report path is a key.
func IsReportKey(s string) bool { return strings.HasPrefix(s, reportKeyPrefix) }

// Path returns the file a key names: from the index, else by a scan of
// dir (the reports folder). A catalogued path that is not a key (a DICOM
// SR in the DICOM folder) is returned as it is.
func (k *ReportKeys) Path(key, dir string) (string, bool) {
	if !IsReportKey(key) {
		return key, true
	}
	k.mu.Lock()
	p, ok := k.paths[key]
	k.mu.Unlock()
	if ok || dir == "" {
		return p, ok
	}
	_ = filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || p != "" {
			return nil
		}
		if k.Key(path) == key {
			p = path
		}
		return nil
	})
	return p, p != ""
}

// Redact replaces path with its key in an error's message, for errors that
// reach logs and the catalogue.
func (k *ReportKeys) Redact(err error, path, key string) error {
	if err == nil || path == "" || !strings.Contains(err.Error(), path) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), path, key), err: err}
}

// redactedError is an error whose message names a report by its key; it
// still unwraps to the original.
type redactedError struct {
	msg string
	err error
}

// Error returns the message with the report named by its key.
func (e *redactedError) Error() string { return e.msg }

// Unwrap returns the original error.
func (e *redactedError) Unwrap() error { return e.err }
