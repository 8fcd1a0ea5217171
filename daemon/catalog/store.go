package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// QueueDBName is the embedded SQLite database file inside state_dir.
const QueueDBName = "tmcad.db"

// Store is the one database the daemon uses: River's tables and the
// catalogue's, side by side, in the embedded SQLite file or in PostgreSQL.
// The catalogue speaks portable SQL through db; River gets its own driver
// (QueueClient).
type Store struct {
	db *sql.DB
	// tx, when set, is the transaction the statements run in (inTx).
	tx   *sql.Tx
	pg   bool
	pool *pgxpool.Pool // PostgreSQL only
	// kind is "sqlite" or "postgres", for errors and logs.
	kind string
}

// Options name the database.
type Options struct {
	// StateDir holds the embedded SQLite database (QueueDBName) when
	// DatabaseURL is empty (state_dir).
	StateDir string
	// DatabaseURL, when set, is a PostgreSQL database shared by several
	// nodes (queue.database_url); it may hold a password.
	DatabaseURL string
}

// Open opens (creating when needed) the database opts name and runs
// River's migrations and the catalogue's.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connect opens the database without migrating it.
func connect(ctx context.Context, opts Options) (*Store, error) {
	if u := opts.DatabaseURL; u != "" {
		pool, err := pgxpool.New(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("queue.database_url: connecting to PostgreSQL: %s", redactURL(err.Error(), u))
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("queue.database_url: connecting to PostgreSQL: %s", redactURL(err.Error(), u))
		}
		return &Store{db: stdlib.OpenDBFromPool(pool), pg: true, pool: pool, kind: "postgres"}, nil
	}
	if err := os.MkdirAll(opts.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	path := filepath.Join(opts.StateDir, QueueDBName)
	// WAL with synchronous=FULL: a committed job or catalog row survives a
	// crash of the process and of the machine. One connection: SQLite
	// allows one writer, and River's driver documents this setting.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(15000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening queue database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening queue database %s: %w", path, err)
	}
	return &Store{db: db, kind: "sqlite"}, nil
}

// redactURL removes a database URL (which may hold a password) from msg.
func redactURL(msg, u string) string {
	if u == "" {
		return msg
	}
	if p, err := url.Parse(u); err == nil && p.User != nil {
		if pw, ok := p.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "****")
		}
	}
	return strings.ReplaceAll(msg, u, "****")
}

// migrate runs River's migrations, then the catalog's.
func (s *Store) migrate(ctx context.Context) error {
	var err error
	if s.pg {
		mig, merr := rivermigrate.New(riverpgxv5.New(s.pool), nil)
		if merr != nil {
			return fmt.Errorf("queue migrations: %w", merr)
		}
		_, err = mig.Migrate(ctx, rivermigrate.DirectionUp, nil)
	} else {
		mig, merr := rivermigrate.New(riversqlite.New(s.db), nil)
		if merr != nil {
			return fmt.Errorf("queue migrations: %w", merr)
		}
		_, err = mig.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err != nil {
		return fmt.Errorf("queue migrations (%s): %w", s.kind, err)
	}
	for i, stmt := range schema {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("catalog migration %d (%s): %w", i+1, s.kind, err)
		}
	}
	return nil
}

// q rewrites a query written with ? placeholders for the database in use
// ($1, $2, ... on PostgreSQL).
func (s *Store) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// conn is what statements run on: the transaction of inTx, or the pool.
func (s *Store) conn() interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
} {
	if s.tx != nil {
		return s.tx
	}
	return s.db
}

// exec runs a statement written with ? placeholders.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.conn().ExecContext(ctx, s.q(query), args...)
}

// query runs a query written with ? placeholders.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.conn().QueryContext(ctx, s.q(query), args...)
}

// queryRow runs a one-row query written with ? placeholders.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.conn().QueryRowContext(ctx, s.q(query), args...)
}

// inTx runs fn's statements in one transaction, committed when fn returns
// nil and rolled back otherwise: several writes, one commit (on SQLite
// with synchronous=FULL, one flush to disk instead of one per statement).
func (s *Store) inTx(ctx context.Context, fn func(*Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	ts := *s
	ts.tx = tx
	if err := fn(&ts); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// Kind is "sqlite" or "postgres".
func (s *Store) Kind() string { return s.kind }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("queue database (%s): %w", s.kind, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}
