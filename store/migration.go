package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferry-iot/ferry"
)

var migrations = &table[ferry.Migration]{
	name: "migrations", what: "migration",
	key: []string{"id"}, cols: []string{"subscription_id", "rg_lc", "name_lc", "state"},
	row: func(m *ferry.Migration) []any {
		return []any{m.ID, m.SubscriptionID, lower(m.ResourceGroup), lower(m.Name), string(m.State)}
	},
	etag: func(m *ferry.Migration) *string { return &m.ETag },
}

// CreateMigration stores a migration.
func (o *ops) CreateMigration(ctx context.Context, m *ferry.Migration) error {
	if m.ID == "" || m.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A migration needs an ID and a name.")
	}
	return migrations.insert(ctx, o.d, o.wq(), m)
}

// GetMigration returns a migration by ID.
func (o *ops) GetMigration(ctx context.Context, id string) (*ferry.Migration, error) {
	return migrations.getKey(ctx, o.rq(), id)
}

// GetMigrationByName returns a migration by ARM location.
func (o *ops) GetMigrationByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*ferry.Migration, error) {
	return migrations.get(ctx, o.rq(), (&cond{}).eq("subscription_id", subscriptionID).eq("rg_lc", lower(resourceGroup)).eq("name_lc", lower(name)))
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
	return migrations.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// UpdateMigration replaces a migration if ifMatch matches.
func (o *ops) UpdateMigration(ctx context.Context, m *ferry.Migration, ifMatch string) error {
	return migrations.update(ctx, o.d, o.wq(), m, ifMatch)
}

// DeleteMigration removes a migration with its waves and records. Returns
// ENOTFOUND if it does not exist.
func (o *ops) DeleteMigration(ctx context.Context, id string) error {
	return migrations.del(ctx, o.d, o.wq(), []any{id}, "")
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

// TransitionMigrationDevices applies transitions and appends them to the
// history, all or nothing. Each is a compare-and-set on the device's state;
// a transition to commanded counts an attempt.
func (o *ops) TransitionMigrationDevices(ctx context.Context, t []*ferry.MigrationTransition) error {
	return o.atomic(ctx, func(q querier) error {
		for _, x := range t {
			d, err := migrationDevices.getForUpdate(ctx, o.d, q, x.MigrationID, x.DeviceID)
			if err != nil {
				return err
			}
			if d.State != x.From {
				return ferry.Errorf(ferry.ECONFLICT, "The device %s is %s, not %s.", x.DeviceID, d.State, x.From)
			}
			d.State, d.Reason, d.Deadline, d.UpdatedAt = x.To, x.Reason, x.Deadline, x.At
			if x.To == ferry.DeviceCommanded {
				d.Attempts++
			}
			doc, err := json.Marshal(d)
			if err != nil {
				return fmt.Errorf("transition: %w", err)
			}
			res, err := q.ExecContext(ctx, "UPDATE migration_devices SET state = $1, doc = $2 WHERE migration_id = $3 AND device_id = $4 AND state = $5",
				string(x.To), string(doc), x.MigrationID, x.DeviceID, string(x.From))
			if err != nil {
				return fmt.Errorf("transition: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("transition: %w", err)
			} else if n == 0 {
				return ferry.Errorf(ferry.ECONFLICT, "The device %s changed state meanwhile.", x.DeviceID)
			}
			tdoc, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("transition: %w", err)
			}
			if _, err := q.ExecContext(ctx, "INSERT INTO migration_transitions (migration_id, device_id, doc) VALUES ($1, $2, $3)",
				x.MigrationID, x.DeviceID, string(tdoc)); err != nil {
				return fmt.Errorf("transition: %w", err)
			}
		}
		return nil
	})
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
