package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache keeps the statements of the store's hot paths (a device's
// registration and connection: fixed texts, run thousands of times a
// second) prepared on SQLite, which parses every statement it is given
// otherwise. database/sql prepares a cached statement again on each pool
// connection that needs it. PostgreSQL needs none: pgx caches statements
// by itself.
type stmtCache struct {
	mu sync.Mutex
	m  map[stmtKey]*sql.Stmt
	// wanted holds the hot statements that ran inside a transaction before
	// they were prepared: a transaction holds the writer's one connection,
	// so they are prepared before the next transaction begins (prepareWanted).
	wanted map[stmtKey]bool
}

type stmtKey struct {
	db    *sql.DB
	query string
}

// cached returns a statement prepared before, or nil.
func (c *stmtCache) cached(db *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[stmtKey{db, query}]
}

// want notes a statement to prepare on db before its next transaction.
func (c *stmtCache) want(db *sql.DB, query string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wanted == nil {
		c.wanted = map[stmtKey]bool{}
	}
	c.wanted[stmtKey{db, query}] = true
}

// prepareWanted prepares the statements noted by want for db. It needs a
// connection of db: call it outside any transaction of db.
func (c *stmtCache) prepareWanted(ctx context.Context, db *sql.DB) {
	c.mu.Lock()
	var qs []string
	for k := range c.wanted {
		if k.db == db {
			qs = append(qs, k.query)
			delete(c.wanted, k)
		}
	}
	c.mu.Unlock()
	for _, q := range qs {
		// An error shows again, and is returned, when the statement runs.
		_, _ = c.stmt(ctx, db, q)
	}
}

// stmt returns a statement prepared on db, preparing it on first use. It
// needs a connection of db: inside a transaction of db (whose pool may be
// that one connection) use cached.
func (c *stmtCache) stmt(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	if s := c.cached(db, query); s != nil {
		return s, nil
	}
	// Not under mu: preparing waits for a connection, which a transaction
	// asking for cached statements may hold.
	s, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := stmtKey{db, query}
	if old := c.m[k]; old != nil {
		s.Close() // prepared meanwhile by another caller
		return old, nil
	}
	if c.m == nil {
		c.m = map[stmtKey]*sql.Stmt{}
	}
	c.m[k] = s
	return s, nil
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for k, s := range c.m {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, k)
	}
	return first
}

// preparedQ runs statements through the cache: on db, or in tx (a
// transaction of db) when tx is set.
type preparedQ struct {
	c     *stmtCache
	db    *sql.DB
	tx    *sql.Tx
	plain querier // where a statement goes that fails to prepare, to report its error
}

// stmt returns the prepared statement for query, or nil when it is to go
// to plain: it failed to prepare (plain reports why), or the transaction
// holds the connection it would be prepared on and it was not prepared
// before (see warm; it is prepared before the next transaction).
func (q preparedQ) stmt(ctx context.Context, query string) *sql.Stmt {
	if q.tx != nil {
		if s := q.c.cached(q.db, query); s != nil {
			return q.tx.StmtContext(ctx, s)
		}
		q.c.want(q.db, query)
		return nil
	}
	s, err := q.c.stmt(ctx, q.db, query)
	if err != nil {
		return nil
	}
	return s
}

func (q preparedQ) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.plain.ExecContext(ctx, query, args...)
}

func (q preparedQ) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.plain.QueryContext(ctx, query, args...)
}

func (q preparedQ) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.plain.QueryRowContext(ctx, query, args...)
}

// warm prepares the writer's statements that a transaction about to begin
// will run through hotTx, unless it is inside a transaction already, and
// those that earlier transactions ran unprepared.
func (o *ops) warm(ctx context.Context, queries ...string) {
	if o.d.postgres || o.stmts == nil || o.tx != nil {
		return
	}
	o.stmts.prepareWanted(ctx, o.w)
	for _, q := range queries {
		// An error shows again, and is returned, when the statement runs.
		_, _ = o.stmts.stmt(ctx, o.w, q)
	}
}

// hotR is rq for the statements of hot paths: prepared once on SQLite.
// Use it only where the statement's text is fixed, never for lists whose
// text varies with their filter.
func (o *ops) hotR() querier {
	if o.d.postgres || o.stmts == nil {
		return o.rq()
	}
	if o.tx != nil {
		return preparedQ{c: o.stmts, db: o.w, tx: o.tx, plain: o.tx}
	}
	return preparedQ{c: o.stmts, db: o.r, plain: o.r}
}

// hotW is wq for the statements of hot paths, as hotR.
func (o *ops) hotW() querier {
	if o.d.postgres || o.stmts == nil {
		return o.wq()
	}
	if o.tx != nil {
		return preparedQ{c: o.stmts, db: o.w, tx: o.tx, plain: o.tx}
	}
	return preparedQ{c: o.stmts, db: o.w, plain: o.w}
}

// hotTx wraps a transaction of the writer that write or atomic began, as
// hotW.
func (o *ops) hotTx(q querier) querier {
	tx, ok := q.(*sql.Tx)
	if o.d.postgres || o.stmts == nil || !ok {
		return q
	}
	return preparedQ{c: o.stmts, db: o.w, tx: tx, plain: tx}
}
