package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store"
	"github.com/ferry-iot/ferry/store/storetest"
)

var ctx = context.Background()

func TestOpenURLs(t *testing.T) {
	dir := t.TempDir()
	for name, url := range map[string]string{
		"SQLitePrefix": "sqlite:" + filepath.Join(dir, "a.db"),
		"FilePrefix":   "file:" + filepath.Join(dir, "b.db"),
		"BarePath":     filepath.Join(dir, "c.db"),
		"Memory":       ":memory:",
	} {
		t.Run(name, func(t *testing.T) {
			db, err := store.Open(ctx, store.Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if err := db.PutSetting(ctx, "k", "v"); err != nil {
				t.Fatal(err)
			}
			if v, err := db.GetSetting(ctx, "k"); err != nil || v != "v" {
				t.Fatalf("GetSetting = %q, %v", v, err)
			}
		})
	}
}

func TestUnreachablePostgres(t *testing.T) {
	_, err := store.Open(ctx, store.Config{URL: "postgres://postgres:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"})
	if err == nil {
		t.Fatal("Open of an unreachable PostgreSQL succeeded")
	}
	if got := err.Error(); !strings.Contains(got, "does not answer") || strings.Contains(got, "secret") {
		t.Errorf("error = %q, want a clear message without the password", got)
	}
}

// TestSchemaTooNew bumps the schema version past what the binary knows and
// checks that Open refuses the database without writing to it.
func TestSchemaTooNew(t *testing.T) {
	cases := map[string]func(t *testing.T) (url, driver, dsn string){
		"sqlite": func(t *testing.T) (string, string, string) {
			p := filepath.Join(t.TempDir(), "x.db")
			return "sqlite:" + p, "sqlite", "file:" + p
		},
		"postgres": func(t *testing.T) (string, string, string) {
			u := storetest.NewPostgresSchema(t)
			return u, "pgx", u
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			url, driver, dsn := mk(t)
			db, err := store.Open(ctx, store.Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			want, err := db.SchemaVersion(ctx)
			if err != nil || want < 1 {
				t.Fatalf("SchemaVersion = %d, %v", want, err)
			}
			raw, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.ExecContext(ctx, "INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)", want+1); err != nil {
				t.Fatal(err)
			}
			if err := db.Ping(ctx); err == nil {
				t.Error("Ping of a database at a newer schema succeeded")
			}
			db.Close()
			before := snapshot(t, raw)

			_, err = store.Open(ctx, store.Config{URL: url})
			if !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
			}
			if after := snapshot(t, raw); after != before {
				t.Errorf("Open wrote to a too-new database: %s, then %s", before, after)
			}
		})
	}
}

// snapshot summarises the version table and a data table.
func snapshot(t *testing.T, db *sql.DB) string {
	t.Helper()
	var n, max int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), MAX(version_id) FROM goose_db_version").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	var s int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM settings").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("versions=%d max=%d settings=%d", n, max, s)
}

// TestConcurrentWritersSQLite runs many writers and readers at once: with
// one writer connection none of them may fail with SQLITE_BUSY.
func TestConcurrentWritersSQLite(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := db.CreateHub(ctx, &ferry.Hub{ID: "h", Name: "h", HostName: "h"}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("d-%d-%d", w, i)
				if err := db.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h", DeviceID: id}); err != nil {
					errs <- err
				}
				if i%5 == 0 {
					err := db.WithTx(ctx, func(tx ferry.Tx) error {
						d, err := tx.GetDeviceIdentity(ctx, "h", id)
						if err != nil {
							return err
						}
						d.Status = ferry.DeviceDisabled
						return tx.UpdateDeviceIdentity(ctx, d, d.ETag)
					})
					if err != nil {
						errs <- err
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				if _, err := db.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: "h"}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n, err := db.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: "h"})
	if err != nil || n != writers*each {
		t.Errorf("count = %d, %v; want %d", n, err, writers*each)
	}
}
