package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-iot/ferry"
)

var principals = &table[ferry.Principal]{
	name: "principals", what: "principal",
	key: []string{"id"}, cols: []string{"name_lc", "type"},
	row: func(p *ferry.Principal) []any { return []any{p.ID, lower(p.Name), string(p.Type)} },
}

// CreatePrincipal stores a new principal.
func (o *ops) CreatePrincipal(ctx context.Context, p *ferry.Principal) error {
	if p.ID == "" || p.Name == "" || p.Type == "" {
		return ferry.Errorf(ferry.EINVALID, "A principal needs an ID, a name and a type.")
	}
	return principals.insert(ctx, o.d, o.wq(), p)
}

// GetPrincipal returns a principal by ID.
func (o *ops) GetPrincipal(ctx context.Context, id string) (*ferry.Principal, error) {
	return principals.getKey(ctx, o.rq(), id)
}

// GetPrincipalByName returns a principal by login name (case-insensitive).
func (o *ops) GetPrincipalByName(ctx context.Context, name string) (*ferry.Principal, error) {
	return principals.get(ctx, o.rq(), (&cond{}).eq("name_lc", lower(name)))
}

// ListPrincipals returns a page of principals ordered by ID.
func (o *ops) ListPrincipals(ctx context.Context, f ferry.PrincipalFilter) (ferry.Page[*ferry.Principal], error) {
	c := &cond{}
	if f.Type != "" {
		c.eq("type", string(f.Type))
	}
	return principals.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// UpdatePrincipal replaces a principal.
func (o *ops) UpdatePrincipal(ctx context.Context, p *ferry.Principal) error {
	return principals.update(ctx, o.d, o.wq(), p, "")
}

// DeletePrincipal removes a principal.
func (o *ops) DeletePrincipal(ctx context.Context, id string) error {
	return principals.del(ctx, o.d, o.wq(), []any{id}, "")
}

var signingKeys = &table[ferry.SigningKey]{
	name: "signing_keys", what: "signing key",
	key: []string{"id"}, cols: []string{"created_ns"},
	row: func(k *ferry.SigningKey) []any { return []any{k.ID, nanos(k.CreatedAt)} },
}

// CreateSigningKey stores a new key.
func (o *ops) CreateSigningKey(ctx context.Context, k *ferry.SigningKey) error {
	return signingKeys.insert(ctx, o.d, o.wq(), k)
}

// ListSigningKeys returns every key, newest first.
func (o *ops) ListSigningKeys(ctx context.Context) ([]*ferry.SigningKey, error) {
	return signingKeys.all(ctx, o.rq(), &cond{}, "created_ns DESC, id DESC")
}

// RetireSigningKey marks a key retired at t.
func (o *ops) RetireSigningKey(ctx context.Context, id string, t time.Time) error {
	return o.write(ctx, func(q querier) error {
		k, err := signingKeys.getForUpdate(ctx, o.d, q, id)
		if err != nil {
			return err
		}
		k.RetiredAt = t
		return signingKeys.update(ctx, o.d, q, k, "")
	})
}

// GetSetting returns a value.
func (o *ops) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := o.rq().QueryRowContext(ctx, "SELECT value FROM settings WHERE key = $1", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ferry.Errorf(ferry.ENOTFOUND, "The setting %q is not set.", key)
	}
	if err != nil {
		return "", fmt.Errorf("get setting: %w", err)
	}
	return v, nil
}

// PutSetting sets a value.
func (o *ops) PutSetting(ctx context.Context, key, value string) error {
	_, err := o.wq().ExecContext(ctx, "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)
	if err != nil {
		return fmt.Errorf("put setting: %w", err)
	}
	return nil
}

// PutSettingIfAbsent sets a value unless the key is set, and returns the
// value now stored.
func (o *ops) PutSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	var v string
	err := o.write(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, value); err != nil {
			return fmt.Errorf("put setting: %w", err)
		}
		if err := q.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = $1", key).Scan(&v); err != nil {
			return fmt.Errorf("put setting: %w", err)
		}
		return nil
	})
	return v, err
}
