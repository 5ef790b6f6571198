package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ferry-iot/ferry"
)

// dialect holds what differs between SQLite and PostgreSQL. The SQL itself
// is shared: both accept $n placeholders, ON CONFLICT upserts and row-value
// comparisons.
type dialect struct {
	postgres bool
}

// constraint tells which constraint an error broke.
type constraint int

const (
	noConstraint constraint = iota
	uniqueViolation
	foreignKeyViolation
)

func (d *dialect) constraint(err error) constraint {
	if d.postgres {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch pe.Code {
			case "23505":
				return uniqueViolation
			case "23503":
				return foreignKeyViolation
			}
		}
		return noConstraint
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return uniqueViolation
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return foreignKeyViolation
		}
	}
	return noConstraint
}

// mapErr turns a constraint violation of a write into ECONFLICT (unique) or
// ENOTFOUND (a missing parent); other errors pass through.
func (d *dialect) mapErr(err error, what string) error {
	switch d.constraint(err) {
	case uniqueViolation:
		return ferry.WrapError(ferry.ECONFLICT, fmt.Sprintf("The %s conflicts with an existing one.", what), err)
	case foreignKeyViolation:
		return ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("A resource the %s refers to was not found.", what), err)
	}
	return err
}

// mapDeleteErr turns a foreign-key violation of a delete into ECONFLICT:
// something still refers to the record.
func (d *dialect) mapDeleteErr(err error, what string) error {
	if d.constraint(err) == foreignKeyViolation {
		return ferry.WrapError(ferry.ECONFLICT, fmt.Sprintf("The %s is still in use.", what), err)
	}
	return err
}

func (db *DB) openPostgres(ctx context.Context, dsn string) error {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	pool.SetMaxOpenConns(max(4, 4*runtime.GOMAXPROCS(0)))
	pool.SetMaxIdleConns(max(4, 4*runtime.GOMAXPROCS(0)))
	pool.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.PingContext(pctx); err != nil {
		pool.Close()
		return fmt.Errorf("open store: PostgreSQL at %s does not answer: %w", redact(dsn), err)
	}
	db.d = &dialect{postgres: true}
	db.w, db.r = pool, pool
	return nil
}

// redact hides the password of a database URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (db *DB) openSQLite(ctx context.Context, dsn string) error {
	path := dsn
	for _, p := range []string{"sqlite://", "sqlite:", "file://", "file:"} {
		if strings.HasPrefix(strings.ToLower(path), p) {
			path = path[len(p):]
			break
		}
	}
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if path == "" {
		return ferry.Errorf(ferry.EINVALID, "The SQLite database path is empty.")
	}
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	base := "file:" + path + "?" + pragmas
	if query != "" {
		base += "&" + query
	}
	w, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	// One writer connection: writers queue in the pool instead of failing
	// with SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("open store: SQLite at %s: %w", path, err)
	}
	r := w
	if path != ":memory:" && !strings.Contains(query, "mode=memory") {
		r, err = sql.Open("sqlite", base+"&_pragma=query_only(1)")
		if err != nil {
			w.Close()
			return fmt.Errorf("open store: %w", err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
	}
	db.d = &dialect{}
	db.w, db.r, db.stmts = w, r, &stmtCache{}
	return nil
}
