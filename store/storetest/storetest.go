// Package storetest is the conformance suite of ferry.Store and the helpers
// that open a real database for tests: a SQLite file in a temporary
// directory, or a fresh schema in the PostgreSQL database named by the
// FERRY_TEST_POSTGRES environment variable.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create test schemas

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store"
)

// EnvPostgres names the environment variable with the PostgreSQL URL that
// tests use, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgres = "FERRY_TEST_POSTGRES"

// SecretKey is the key the stores these helpers open keep secrets with, so
// that a test may reopen a database and read them.
var SecretKey = []byte("ferry storetest secret key, 32 B")

// OpenSQLite opens a store on a new SQLite file in a temporary directory and
// closes it when the test ends.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "ferry.db"), SecretKey: SecretKey})
	if err != nil {
		t.Fatalf("open SQLite store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL returns the URL in FERRY_TEST_POSTGRES. Without it the test is
// skipped, or fails when the environment variable CI is "true".
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set (required when CI=true)", EnvPostgres)
		}
		t.Skipf("%s is not set", EnvPostgres)
	}
	return u
}

// OpenPostgres opens a store on a new schema, named after the test with a
// random suffix, in the FERRY_TEST_POSTGRES database, and drops the schema
// when the test ends. It skips without FERRY_TEST_POSTGRES, or fails when
// CI=true.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	u := NewPostgresSchema(t)
	db, err := store.Open(context.Background(), store.Config{URL: u, SecretKey: SecretKey})
	if err != nil {
		t.Fatalf("open PostgreSQL store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NewPostgresSchema creates an empty schema in the FERRY_TEST_POSTGRES
// database, drops it when the test ends, and returns a URL whose
// connections use it.
func NewPostgresSchema(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + sanitize(t.Name()) + "_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	pu, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := pu.Query()
	q.Set("search_path", name)
	pu.RawQuery = q.Encode()
	return pu.String()
}

// sanitize keeps a schema name short and made of [a-z0-9_].
func sanitize(s string) string {
	var b []byte
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, '_')
		}
	}
	if len(b) > 40 {
		b = b[len(b)-40:]
	}
	return string(b)
}

// ForEachBackend runs fn as the subtests "sqlite" and "postgres", each with
// a fresh store.
func ForEachBackend(t *testing.T, fn func(t *testing.T, s ferry.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, OpenSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, OpenPostgres(t)) })
}

// Run runs the conformance suite against the stores open returns; open is
// called once per subtest and must return an empty store.
func Run(t *testing.T, open func(t *testing.T) ferry.Store) {
	t.Helper()
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

type testCase struct {
	name string
	fn   func(t *testing.T, s ferry.Store)
}

// suite lists the conformance tests; each file of this package adds its own.
var suite []testCase

func register(name string, fn func(t *testing.T, s ferry.Store)) bool {
	suite = append(suite, testCase{name, fn})
	return true
}

var ctx = context.Background()

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ferry.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// collect pages through a list with small pages and returns every item.
func collect[T any](t *testing.T, list func(opt ferry.ListOptions) (ferry.Page[T], error)) []T {
	t.Helper()
	var all []T
	opt := ferry.ListOptions{Limit: 2}
	for i := 0; ; i++ {
		p, err := list(opt)
		if err != nil {
			t.Fatalf("list page %d: %v", i, err)
		}
		if len(p.Items) > 2 {
			t.Fatalf("page %d has %d items, limit 2", i, len(p.Items))
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			return all
		}
		if i > 1000 {
			t.Fatal("paging does not end")
		}
		opt.After = p.Next
	}
}

// ids maps items to keys, for comparisons.
func ids[T any](items []T, key func(T) string) []string {
	var out []string
	for _, v := range items {
		out = append(out, key(v))
	}
	return out
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}
