package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-iot/ferry"
)

// migrationDoc is how a migration is kept: its document without the
// remote target's client secret, which is kept sealed next to it.
type migrationDoc struct {
	*ferry.Migration
	SealedClientSecret string `json:",omitempty"`
}

var migrations = &table[migrationDoc]{
	name: "migrations", what: "migration",
	key: []string{"id"}, cols: []string{"subscription_id", "rg_lc", "name_lc", "state"},
	row: func(m *migrationDoc) []any {
		return []any{m.ID, m.SubscriptionID, lower(m.ResourceGroup), lower(m.Name), string(m.State)}
	},
	etag: func(m *migrationDoc) *string { return &m.ETag },
}

// sealMigration returns the document to keep for m: a copy whose client
// secret is replaced by its sealed form. The caller's m is not changed.
func (o *ops) sealMigration(m *ferry.Migration) (*migrationDoc, error) {
	c := *m
	doc := &migrationDoc{Migration: &c}
	if r := m.Target.Remote; r != nil && r.ClientSecret != "" {
		rc := *r
		rc.ClientSecret = ""
		c.Target.Remote = &rc
		sealed, err := o.sec.seal(r.ClientSecret, m.ID)
		if err != nil {
			return nil, fmt.Errorf("store migration: %w", err)
		}
		doc.SealedClientSecret = sealed
	}
	return doc, nil
}

// openMigration returns the migration kept in doc with its client secret.
// A secret that does not open (a store without the key, or with another
// one) is left empty: the migration still reads, and its target login
// fails instead.
func (o *ops) openMigration(doc *migrationDoc) *ferry.Migration {
	m := doc.Migration
	if m == nil {
		m = &ferry.Migration{}
	}
	if doc.SealedClientSecret != "" && m.Target.Remote != nil {
		if plain, err := o.sec.open(doc.SealedClientSecret, m.ID); err == nil {
			m.Target.Remote.ClientSecret = plain
		}
	}
	return m
}

func (o *ops) openMigrations(p ferry.Page[*migrationDoc]) ferry.Page[*ferry.Migration] {
	out := ferry.Page[*ferry.Migration]{Items: make([]*ferry.Migration, len(p.Items)), Next: p.Next}
	for i, d := range p.Items {
		out.Items[i] = o.openMigration(d)
	}
	return out
}

// CreateMigration stores a migration, its client secret sealed.
func (o *ops) CreateMigration(ctx context.Context, m *ferry.Migration) error {
	if m.ID == "" || m.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A migration needs an ID and a name.")
	}
	doc, err := o.sealMigration(m)
	if err != nil {
		return err
	}
	err = migrations.insert(ctx, o.d, o.wq(), doc)
	m.ETag = doc.ETag
	return err
}

// GetMigration returns a migration by ID.
func (o *ops) GetMigration(ctx context.Context, id string) (*ferry.Migration, error) {
	doc, err := migrations.getKey(ctx, o.rq(), id)
	if err != nil {
		return nil, err
	}
	return o.openMigration(doc), nil
}

// GetMigrationByName returns a migration by ARM location.
func (o *ops) GetMigrationByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*ferry.Migration, error) {
	doc, err := migrations.get(ctx, o.rq(), (&cond{}).eq("subscription_id", subscriptionID).eq("rg_lc", lower(resourceGroup)).eq("name_lc", lower(name)))
	if err != nil {
		return nil, err
	}
	return o.openMigration(doc), nil
}

// ListMigrations returns a page of migrations ordered by ID.
func (o *ops) ListMigrations(ctx context.Context, f ferry.MigrationFilter) (ferry.Page[*ferry.Migration], error) {
	c := &cond{}
	if f.SubscriptionID != "" {
		c.eq("subscription_id", f.SubscriptionID)
	}
	if f.ResourceGroup != "" {
		c.eq("rg_lc", lower(f.ResourceGroup))
	}
	if f.States != nil {
		st := make([]string, len(f.States))
		for i, s := range f.States {
			st[i] = string(s)
		}
		c.in("state", st)
	}
	p, err := migrations.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
	if err != nil {
		return ferry.Page[*ferry.Migration]{}, err
	}
	return o.openMigrations(p), nil
}

// UpdateMigration replaces a migration if ifMatch matches. A remote target
// without a client secret keeps the sealed one stored: a store that could
// not open it (see openMigration) does not erase it.
func (o *ops) UpdateMigration(ctx context.Context, m *ferry.Migration, ifMatch string) error {
	doc, err := o.sealMigration(m)
	if err != nil {
		return err
	}
	if m.Target.Remote != nil && m.Target.Remote.ClientSecret == "" {
		err = o.atomic(ctx, func(q querier) error {
			old, err := migrations.getForUpdate(ctx, o.d, q, m.ID)
			if err != nil {
				return err
			}
			if old.Migration != nil && old.Target.Remote != nil {
				doc.SealedClientSecret = old.SealedClientSecret
			}
			return migrations.update(ctx, o.d, q, doc, ifMatch)
		})
	} else {
		err = migrations.update(ctx, o.d, o.wq(), doc, ifMatch)
	}
	if err == nil {
		m.ETag = doc.ETag
	}
	return err
}

// DeleteMigration removes a migration with its waves and records. Returns
// ENOTFOUND if it does not exist.
func (o *ops) DeleteMigration(ctx context.Context, id string) error {
	return migrations.del(ctx, o.d, o.wq(), []any{id}, "")
}

// sealClearSecrets seals the client secrets that migrations written before
// secrets were sealed keep in clear. Without a key it leaves them.
func (db *DB) sealClearSecrets(ctx context.Context) error {
	if db.sec.aead == nil {
		return nil
	}
	all, err := migrations.all(ctx, db.w, &cond{}, "id")
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	for _, d := range all {
		if d.Migration == nil || d.Target.Remote == nil || d.Target.Remote.ClientSecret == "" {
			continue
		}
		doc, err := db.sealMigration(d.Migration)
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("open store: seal migration secrets: %w", err)
		}
		// The document changes, not the migration: its ETag stays.
		if _, err := db.w.ExecContext(ctx, "UPDATE migrations SET doc = $1 WHERE id = $2", string(b), d.ID); err != nil {
			return fmt.Errorf("open store: seal migration secrets: %w", err)
		}
	}
	return nil
}

var migrationWaves = &table[ferry.MigrationWave]{
	name: "migration_waves", what: "migration wave",
	key: []string{"migration_id", "idx"},
	row: func(w *ferry.MigrationWave) []any { return []any{w.MigrationID, int64(w.Index)} },
}

// PutMigrationWaves creates or replaces waves.
func (o *ops) PutMigrationWaves(ctx context.Context, w []*ferry.MigrationWave) error {
	return o.atomic(ctx, func(q querier) error {
		for _, x := range w {
			if err := migrationWaves.upsert(ctx, o.d, q, x); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListMigrationWaves returns a migration's waves in order.
func (o *ops) ListMigrationWaves(ctx context.Context, migrationID string) ([]*ferry.MigrationWave, error) {
	return migrationWaves.all(ctx, o.rq(), (&cond{}).eq("migration_id", migrationID), "idx")
}

var migrationDevices = &table[ferry.MigrationDevice]{
	name: "migration_devices", what: "migration device",
	key: []string{"migration_id", "device_id"}, cols: []string{"wave", "state"},
	row: func(d *ferry.MigrationDevice) []any {
		return []any{d.MigrationID, d.DeviceID, int64(d.Wave), string(d.State)}
	},
}

// AddMigrationDevices stores new device records, all or none.
func (o *ops) AddMigrationDevices(ctx context.Context, d []*ferry.MigrationDevice) error {
	return o.atomic(ctx, func(q querier) error {
		for _, x := range d {
			if err := migrationDevices.insert(ctx, o.d, q, x); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetMigrationDevice returns one record.
func (o *ops) GetMigrationDevice(ctx context.Context, migrationID, deviceID string) (*ferry.MigrationDevice, error) {
	return migrationDevices.getKey(ctx, o.rq(), migrationID, deviceID)
}

// ListMigrationDevices returns a page of records ordered by device ID.
func (o *ops) ListMigrationDevices(ctx context.Context, f ferry.MigrationDeviceFilter) (ferry.Page[*ferry.MigrationDevice], error) {
	c := (&cond{}).eq("migration_id", f.MigrationID)
	if f.Wave >= 0 {
		c.eq("wave", int64(f.Wave))
	}
	if f.States != nil {
		st := make([]string, len(f.States))
		for i, s := range f.States {
			st[i] = string(s)
		}
		c.in("state", st)
	}
	return migrationDevices.list(ctx, o.rq(), c, []string{"device_id"}, false, f.ListOptions)
}

// CountMigrationDevices counts records by wave and state.
func (o *ops) CountMigrationDevices(ctx context.Context, migrationID string) (map[int]map[ferry.DeviceMigrationState]int, error) {
	rows, err := o.rq().QueryContext(ctx, "SELECT wave, state, COUNT(*) FROM migration_devices WHERE migration_id = $1 GROUP BY wave, state", migrationID)
	if err != nil {
		return nil, fmt.Errorf("count migration devices: %w", err)
	}
	defer rows.Close()
	out := map[int]map[ferry.DeviceMigrationState]int{}
	for rows.Next() {
		var (
			wave  int64
			state string
			n     int
		)
		if err := rows.Scan(&wave, &state, &n); err != nil {
			return nil, fmt.Errorf("count migration devices: %w", err)
		}
		if out[int(wave)] == nil {
			out[int(wave)] = map[ferry.DeviceMigrationState]int{}
		}
		out[int(wave)][ferry.DeviceMigrationState(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count migration devices: %w", err)
	}
	return out, nil
}

// transitionChunk bounds the devices (and history rows) one statement of
// TransitionMigrationDevices carries, well under both databases' limits on
// bound parameters.
const transitionChunk = 500

// TransitionMigrationDevices applies transitions and appends them to the
// history, all or nothing. Each is a compare-and-set on the device's state;
// a transition to commanded counts an attempt. Several transitions of one
// device must follow each other (each From the previous To).
//
// The cost is per batch, not per transition: per migration and chunk of
// devices one read of their records and one multi-row INSERT of the
// history, and one prepared UPDATE per device (guarded by its state),
// instead of a read, a write and an insert for every transition (which
// SQLite also parsed anew each time).
func (o *ops) TransitionMigrationDevices(ctx context.Context, t []*ferry.MigrationTransition) error {
	if len(t) == 0 {
		return nil
	}
	// Devices by migration, in order of first appearance.
	var migs []string
	devs := map[string][]string{}
	seen := map[[2]string]bool{}
	for _, x := range t {
		k := [2]string{x.MigrationID, x.DeviceID}
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := devs[x.MigrationID]; !ok {
			migs = append(migs, x.MigrationID)
		}
		devs[x.MigrationID] = append(devs[x.MigrationID], x.DeviceID)
	}
	return o.atomic(ctx, func(q querier) error {
		recs := make(map[[2]string]*ferry.MigrationDevice, len(seen))
		for _, mid := range migs {
			for ids := range slices.Chunk(devs[mid], transitionChunk) {
				if err := o.readMigrationDevices(ctx, q, mid, ids, recs); err != nil {
					return err
				}
			}
		}
		from := make(map[[2]string]ferry.DeviceMigrationState, len(recs))
		for _, x := range t {
			k := [2]string{x.MigrationID, x.DeviceID}
			d := recs[k]
			if d == nil {
				return migrationDevices.notFound()
			}
			if d.State != x.From {
				return ferry.Errorf(ferry.ECONFLICT, "The device %s is %s, not %s.", x.DeviceID, d.State, x.From)
			}
			if _, ok := from[k]; !ok {
				from[k] = d.State
			}
			d.State, d.Reason, d.Deadline, d.UpdatedAt = x.To, x.Reason, x.Deadline, x.At
			if x.To == ferry.DeviceCommanded {
				d.Attempts++
			}
		}
		for _, mid := range migs {
			for ids := range slices.Chunk(devs[mid], transitionChunk) {
				if err := o.writeMigrationDevices(ctx, q, mid, ids, recs, from); err != nil {
					return err
				}
			}
		}
		return o.insertTransitions(ctx, q, t)
	})
}

// insertTransitionSQL appends one transition to the history.
const insertTransitionSQL = "INSERT INTO migration_transitions (migration_id, device_id, doc) VALUES ($1, $2, $3)"

// insertTransitions appends transitions to the history: on SQLite one
// prepared INSERT each (a multi-row INSERT is parsed anew every time, which
// cost more than the rows), on PostgreSQL multi-row INSERTs (one round
// trip per chunk).
func (o *ops) insertTransitions(ctx context.Context, q querier, t []*ferry.MigrationTransition) error {
	if !o.d.postgres {
		q = o.hotTx(q)
		for _, x := range t {
			doc, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("transition: %w", err)
			}
			if _, err := q.ExecContext(ctx, insertTransitionSQL, x.MigrationID, x.DeviceID, string(doc)); err != nil {
				return fmt.Errorf("transition: %w", err)
			}
		}
		return nil
	}
	for part := range slices.Chunk(t, transitionChunk) {
		args := make([]any, 0, 3*len(part))
		var b strings.Builder
		b.WriteString("INSERT INTO migration_transitions (migration_id, device_id, doc) VALUES ")
		for i, x := range part {
			doc, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("transition: %w", err)
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "(%s)", placeholders(len(args)+1, 3))
			args = append(args, x.MigrationID, x.DeviceID, string(doc))
		}
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("transition: %w", err)
		}
	}
	return nil
}

// readMigrationDevices reads the records of one migration's devices into
// recs, locking them on PostgreSQL.
func (o *ops) readMigrationDevices(ctx context.Context, q querier, migrationID string, ids []string, recs map[[2]string]*ferry.MigrationDevice) error {
	c := (&cond{}).eq("migration_id", migrationID).in("device_id", ids)
	s := "SELECT doc FROM migration_devices" + c.where()
	if o.d.postgres {
		s += " FOR UPDATE"
	}
	rows, err := q.QueryContext(ctx, s, c.args...)
	if err != nil {
		return fmt.Errorf("transition: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return fmt.Errorf("transition: %w", err)
		}
		d, err := migrationDevices.decode(doc)
		if err != nil {
			return err
		}
		recs[[2]string{d.MigrationID, d.DeviceID}] = d
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("transition: %w", err)
	}
	return nil
}

// writeMigrationDevices writes one migration's changed records, each only
// if its state is still the one it was read in: one UPDATE per device,
// prepared once. (One UPDATE … FROM (VALUES …) for all of them let SQLite
// scan the migration's records for every statement: 18% of the server's
// CPU in a 10,000-device migration.)
func (o *ops) writeMigrationDevices(ctx context.Context, q querier, migrationID string, ids []string,
	recs map[[2]string]*ferry.MigrationDevice, from map[[2]string]ferry.DeviceMigrationState) error {
	const upd = "UPDATE migration_devices SET state = $1, doc = $2 WHERE migration_id = $3 AND device_id = $4 AND state = $5"
	q = o.hotTx(q) // prepared once on SQLite
	exec := func(args ...any) (sql.Result, error) { return q.ExecContext(ctx, upd, args...) }
	for _, id := range ids {
		k := [2]string{migrationID, id}
		d := recs[k]
		doc, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("transition: %w", err)
		}
		res, err := exec(string(d.State), string(doc), migrationID, id, string(from[k]))
		if err != nil {
			return fmt.Errorf("transition: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("transition: %w", err)
		} else if n == 0 {
			return ferry.Errorf(ferry.ECONFLICT, "The device %s changed state meanwhile.", id)
		}
	}
	return nil
}

var migrationTransitions = &table[ferry.MigrationTransition]{name: "migration_transitions", what: "transition"}

// ListMigrationTransitions returns a device's history (all devices when
// deviceID is ""), oldest first.
func (o *ops) ListMigrationTransitions(ctx context.Context, migrationID, deviceID string, opt ferry.ListOptions) (ferry.Page[*ferry.MigrationTransition], error) {
	c := (&cond{}).eq("migration_id", migrationID)
	if deviceID != "" {
		c.eq("device_id", deviceID)
	}
	return migrationTransitions.list(ctx, o.rq(), c, []string{"seq"}, false, opt)
}
