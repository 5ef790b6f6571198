// Package store implements ferry.Store on SQLite (one node) and PostgreSQL
// (several nodes). Each record is kept as a JSON document next to the typed
// columns that keys, filters and orderings need; the SQL is shared by both
// databases except for the few spots in dialect.go.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ferry-iot/ferry"
)

//go:embed schema
var schemaFS embed.FS

// ErrSchemaTooNew is returned (wrapped) by Open when the database was
// migrated by a newer Ferry than this binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Config says which database to open.
type Config struct {
	// URL is postgres://... or postgresql://... for PostgreSQL; sqlite:PATH,
	// file:PATH or a bare path for SQLite.
	URL string
	// Logger receives migration messages; nil discards them.
	Logger *slog.Logger
	// SecretKey (SecretKeySize bytes) encrypts the secrets the store must
	// be able to read back, such as a remote migration target's client
	// secret. Every node of a deployment needs the same key. Without it the
	// store refuses to keep such secrets, and reads records without them.
	SecretKey []byte
}

// DB is a ferry.Store on SQLite or PostgreSQL.
type DB struct {
	ops
	logger  *slog.Logger
	version int64 // the newest schema version this binary knows
}

var (
	_ ferry.Store = (*DB)(nil)
	_ ferry.Tx    = (*ops)(nil)
)

// Open opens the database, applies pending schema migrations and returns it.
// It returns an error wrapping ErrSchemaTooNew, and changes nothing, when the
// database was migrated by a newer binary.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sec, err := newSealer(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	db := &DB{logger: logger}
	db.sec = sec
	lower := strings.ToLower(cfg.URL)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		err = db.openPostgres(ctx, cfg.URL)
	default:
		err = db.openSQLite(ctx, cfg.URL)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.sealClearSecrets(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) migrate(ctx context.Context) error {
	dir, gd := "schema/sqlite", goose.DialectSQLite3
	if db.d.postgres {
		dir, gd = "schema/postgres", goose.DialectPostgres
	}
	sub, err := fs.Sub(schemaFS, dir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	var opts []goose.ProviderOption
	if db.d.postgres {
		// Nodes that start together migrate one after the other.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db.w, sub, opts...)
	if err != nil {
		return fmt.Errorf("open store: migrations: %w", err)
	}
	src := p.ListSources()
	if len(src) > 0 {
		db.version = src[len(src)-1].Version
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("open store: read schema version: %w", err)
	}
	if cur > db.version {
		return fmt.Errorf("open store: database at version %d, binary knows %d: %w", cur, db.version, ErrSchemaTooNew)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("open store: migrate: %w", err)
	}
	for _, r := range res {
		db.logger.Info("applied schema migration", "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// SetSecretKey sets the key of Config.SecretKey on a store opened without
// it, for a caller that can derive the key only once the database answers,
// and seals what older versions kept in clear. Call it before the store
// is shared: it is not safe alongside other calls.
func (db *DB) SetSecretKey(ctx context.Context, key []byte) error {
	sec, err := newSealer(key)
	if err != nil {
		return err
	}
	db.sec = sec
	return db.sealClearSecrets(ctx)
}

// SchemaVersion returns the schema version the database is at.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	// Read on the reader pool: a readiness probe must not queue behind
	// SQLite's single writer.
	var v sql.NullInt64
	err := db.r.QueryRowContext(ctx, "SELECT MAX(version_id) FROM goose_db_version WHERE is_applied").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v.Int64, nil
}

// Ping checks that the database answers and that its schema is current.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	if v != db.version {
		return fmt.Errorf("ping store: schema at version %d, want %d", v, db.version)
	}
	return nil
}

// Close releases the database.
func (db *DB) Close() error {
	var errs []error
	if db.stmts != nil {
		errs = append(errs, db.stmts.close())
	}
	if db.r != nil && db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	return errors.Join(errs...)
}

// WithTx runs fn in one transaction: everything fn writes is kept, or
// nothing is when fn returns an error (or panics).
func (db *DB) WithTx(ctx context.Context, fn func(tx ferry.Tx) error) (err error) {
	db.warm(ctx) // the transaction holds the writer's connection
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(&ops{d: db.d, tx: tx, w: db.w, r: db.r, stmts: db.stmts, sec: db.sec}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", db.d.mapErr(err, "record"))
	}
	return nil
}

// ops implements every store method, either on the database (each call in
// its own transaction) or inside one transaction of WithTx.
type ops struct {
	d     *dialect
	tx    *sql.Tx    // non-nil inside WithTx
	w, r  *sql.DB    // the writer and the reader pools (the same on PostgreSQL)
	stmts *stmtCache // the hot paths' statements, on SQLite
	sec   *sealer    // encrypts secrets kept at rest
}

// querier is what *sql.DB, *sql.Tx and *sql.Conn share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// rq returns where reads go.
func (o *ops) rq() querier {
	if o.tx != nil {
		return o.tx
	}
	return o.r
}

// wq returns where a single-statement write goes.
func (o *ops) wq() querier {
	if o.tx != nil {
		return o.tx
	}
	return o.w
}

// write runs fn in the current transaction, or in a new one.
func (o *ops) write(ctx context.Context, fn func(q querier) error) error {
	if o.tx != nil {
		return fn(o.tx)
	}
	o.warm(ctx) // the transaction holds the writer's connection
	tx, err := o.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", o.d.mapErr(err, "record"))
	}
	return nil
}

// atomic runs fn so that all of its writes apply or none do, even inside a
// WithTx transaction (with a savepoint) whose caller goes on after an error.
func (o *ops) atomic(ctx context.Context, fn func(q querier) error) error {
	if o.tx == nil {
		return o.write(ctx, fn)
	}
	if _, err := o.tx.ExecContext(ctx, "SAVEPOINT ferry_atomic"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(o.tx); err != nil {
		if _, rerr := o.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT ferry_atomic"); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
		return err
	}
	if _, err := o.tx.ExecContext(ctx, "RELEASE SAVEPOINT ferry_atomic"); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}
