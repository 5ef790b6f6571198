package store_test

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store"
	"github.com/ferry-iot/ferry/store/storetest"
)

const clientSecret = "Tg8~remote-client-secret-value"

// rawDump returns every migration document as the database holds it.
func rawDump(t *testing.T, driver, url string) string {
	t.Helper()
	raw, err := sql.Open(driver, url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.QueryContext(ctx, "SELECT id, doc, etag FROM migrations")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, doc, etag string
		if err := rows.Scan(&id, &doc, &etag); err != nil {
			t.Fatal(err)
		}
		b.WriteString(id + " " + doc + " " + etag + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func remoteMigration(id string) *ferry.Migration {
	return &ferry.Migration{ID: id, Name: "mig-" + id, SubscriptionID: "s1", ResourceGroup: "rg", SourceHubID: "h1",
		Target: ferry.MigrationTarget{IDScope: "0ne", ProvisioningServiceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/b",
			Remote: &ferry.RemoteFerry{APIEndpoint: "https://b.example", ClientID: "app", ClientSecret: clientSecret}},
		State: ferry.MigrationRunning, CreatedAt: time.Unix(1, 0).UTC()}
}

func secretOf(t *testing.T, s ferry.Store, id string) string {
	t.Helper()
	m, err := s.GetMigration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Target.Remote == nil {
		t.Fatal("the remote target was lost")
	}
	return m.Target.Remote.ClientSecret
}

// TestMigrationSecretSealed checks that a remote target's client secret is
// kept encrypted: a raw read of the table does not show it, a store opened
// again with the same key reads it, and one with another key or none reads
// the migration without it and does not erase it.
func TestMigrationSecretSealed(t *testing.T) {
	for _, b := range []struct {
		name, driver string
		url          func(t *testing.T) string
	}{
		{"sqlite", "sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "ferry.db") }},
		{"postgres", "pgx", func(t *testing.T) string { return storetest.NewPostgresSchema(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			open := func(key []byte) *store.DB {
				t.Helper()
				db, err := store.Open(ctx, store.Config{URL: url, SecretKey: key})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
			db := open(storetest.SecretKey)
			m := remoteMigration("m1")
			if err := db.CreateMigration(ctx, m); err != nil {
				t.Fatal(err)
			}
			if m.Target.Remote.ClientSecret != clientSecret || m.ETag == "" {
				t.Fatalf("CreateMigration changed the caller's secret or set no ETag: %+v", m.Target.Remote)
			}
			if dump := rawDump(t, b.driver, url); strings.Contains(dump, clientSecret) || !strings.Contains(dump, "m1") {
				t.Fatalf("the database holds the secret in clear:\n%s", dump)
			}
			got, err := db.ListMigrations(ctx, ferry.MigrationFilter{})
			if err != nil || len(got.Items) != 1 || got.Items[0].Target.Remote.ClientSecret != clientSecret {
				t.Fatalf("ListMigrations = %+v, %v; want the secret", got.Items, err)
			}
			m.State = ferry.MigrationPaused
			if err := db.UpdateMigration(ctx, m, m.ETag); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(rawDump(t, b.driver, url), clientSecret) {
				t.Fatal("UpdateMigration wrote the secret in clear")
			}
			db.Close()

			t.Run("Restart", func(t *testing.T) {
				if got := secretOf(t, open(storetest.SecretKey), "m1"); got != clientSecret {
					t.Errorf("secret after reopening = %q", got)
				}
			})
			t.Run("OtherKey", func(t *testing.T) {
				other := open(bytes.Repeat([]byte{7}, store.SecretKeySize))
				if got := secretOf(t, other, "m1"); got != "" {
					t.Errorf("another key opened the secret: %q", got)
				}
				// An update without the secret keeps the sealed one.
				m, err := other.GetMigration(ctx, "m1")
				if err != nil {
					t.Fatal(err)
				}
				m.State = ferry.MigrationRunning
				if err := other.UpdateMigration(ctx, m, m.ETag); err != nil {
					t.Fatal(err)
				}
				if got := secretOf(t, open(storetest.SecretKey), "m1"); got != clientSecret {
					t.Errorf("secret after an update by another key = %q", got)
				}
			})
			t.Run("ErrNoKey", func(t *testing.T) {
				keyless := open(nil)
				if got := secretOf(t, keyless, "m1"); got != "" {
					t.Errorf("a keyless store read %q", got)
				}
				err := keyless.CreateMigration(ctx, remoteMigration("m2"))
				if ferry.ErrorCode(err) != ferry.EINTERNAL {
					t.Errorf("CreateMigration without a key: %v, want EINTERNAL", err)
				}
				if strings.Contains(rawDump(t, b.driver, url), clientSecret) {
					t.Error("a keyless store wrote the secret in clear")
				}
			})
			t.Run("SetSecretKey", func(t *testing.T) {
				db := open(nil)
				if err := db.SetSecretKey(ctx, []byte("short")); err == nil {
					t.Error("SetSecretKey took a 5-byte key")
				}
				if err := db.SetSecretKey(ctx, storetest.SecretKey); err != nil {
					t.Fatal(err)
				}
				if got := secretOf(t, db, "m1"); got != clientSecret {
					t.Errorf("secret after SetSecretKey = %q", got)
				}
			})
			t.Run("ErrKeySize", func(t *testing.T) {
				if _, err := store.Open(ctx, store.Config{URL: url, SecretKey: []byte("short")}); err == nil {
					t.Error("Open took a 5-byte key")
				}
			})
			t.Run("SealsClearSecretsOnOpen", func(t *testing.T) {
				// A migration written before secrets were sealed.
				raw, err := sql.Open(b.driver, url)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				_, err = raw.ExecContext(ctx, `INSERT INTO migrations (id, subscription_id, rg_lc, name_lc, state, doc, etag)
					VALUES ('m0', 's1', 'rg', 'old', 'Paused', '{"ID":"m0","Name":"old","Target":{"Remote":{"APIEndpoint":"https://b.example","ClientID":"app","ClientSecret":"`+clientSecret+`"}}}', 'e0')`)
				if err != nil {
					t.Fatal(err)
				}
				db := open(storetest.SecretKey)
				if dump := rawDump(t, b.driver, url); strings.Contains(dump, clientSecret) {
					t.Fatalf("Open left a secret in clear:\n%s", dump)
				}
				if got := secretOf(t, db, "m0"); got != clientSecret {
					t.Errorf("secret of the old migration = %q", got)
				}
			})
		})
	}
}
