package daemon

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

	"tmcad/config"
)

// QueueDBName is the embedded SQLite database file inside state_dir.
const QueueDBName = "tmcad.db"

// store is the one database the daemon uses: River's tables and the
// catalog's, side by side, in the embedded SQLite file or in PostgreSQL.
// The catalog speaks portable SQL through db; River gets its own driver.
type store struct {
	db   *sql.DB
	pg   bool
	pool *pgxpool.Pool // PostgreSQL only
	// kind is "sqlite" or "postgres", for errors and logs.
	kind string
}

// openStore opens (creating when needed) the database named by the
// configuration, runs River's migrations and the catalog's.
func openStore(ctx context.Context, cfg *config.Config) (*store, error) {
	s, err := connectStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connectStore opens the database without migrating it.
func connectStore(ctx context.Context, cfg *config.Config) (*store, error) {
	if u := cfg.Queue.DatabaseURL.Value; u != "" {
		pool, err := pgxpool.New(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("queue.database_url: connecting to PostgreSQL: %s", redactURL(err.Error(), u))
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("queue.database_url: connecting to PostgreSQL: %s", redactURL(err.Error(), u))
		}
		return &store{db: stdlib.OpenDBFromPool(pool), pg: true, pool: pool, kind: "postgres"}, nil
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	path := filepath.Join(cfg.StateDir, QueueDBName)
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
	return &store{db: db, kind: "sqlite"}, nil
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
func (s *store) migrate(ctx context.Context) error {
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
	for i, stmt := range append(append(append([]string(nil), catalogSchema...), companionSchema...), exportErrorSchema...) {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("catalog migration %d (%s): %w", i+1, s.kind, err)
		}
	}
	return nil
}

// q rewrites a query written with ? placeholders for the database in use
// ($1, $2, ... on PostgreSQL).
func (s *store) q(query string) string {
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

// exec runs a statement written with ? placeholders.
func (s *store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.q(query), args...)
}

// query runs a query written with ? placeholders.
func (s *store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.q(query), args...)
}

// queryRow runs a one-row query written with ? placeholders.
func (s *store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.q(query), args...)
}

// Close closes the database.
func (s *store) Close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}
