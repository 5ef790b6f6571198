package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-iot/ferry"
)

var hubs = &table[ferry.Hub]{
	name: "hubs", what: "hub",
	key: []string{"id"}, cols: []string{"name_lc", "host_lc", "subscription_id", "rg_lc"},
	row: func(h *ferry.Hub) []any {
		return []any{h.ID, lower(h.Name), lower(h.HostName), nullable(h.SubscriptionID), nullable(lower(h.ResourceGroup))}
	},
	etag: func(h *ferry.Hub) *string { return &h.ETag },
}

// CreateHub stores a hub.
func (o *ops) CreateHub(ctx context.Context, h *ferry.Hub) error {
	if h.ID == "" || h.Name == "" || h.HostName == "" {
		return ferry.Errorf(ferry.EINVALID, "A hub needs an ID, a name and a host name.")
	}
	return hubs.insert(ctx, o.d, o.wq(), h)
}

// GetHub returns a hub by ID.
func (o *ops) GetHub(ctx context.Context, id string) (*ferry.Hub, error) {
	return hubs.getKey(ctx, o.hotR(), id)
}

// GetHubByName returns a hub by name (case-insensitive).
func (o *ops) GetHubByName(ctx context.Context, name string) (*ferry.Hub, error) {
	return hubs.get(ctx, o.rq(), (&cond{}).eq("name_lc", lower(name)))
}

// GetHubByHost returns a hub by host name (case-insensitive).
func (o *ops) GetHubByHost(ctx context.Context, host string) (*ferry.Hub, error) {
	return hubs.get(ctx, o.hotR(), (&cond{}).eq("host_lc", lower(host)))
}

// ListHubs returns a page of hubs ordered by ID.
func (o *ops) ListHubs(ctx context.Context, f ferry.HubFilter) (ferry.Page[*ferry.Hub], error) {
	c := &cond{}
	if f.SubscriptionID != "" {
		c.eq("subscription_id", f.SubscriptionID)
	}
	if f.ResourceGroup != "" {
		c.eq("rg_lc", lower(f.ResourceGroup))
	}
	return hubs.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// UpdateHub replaces a hub if ifMatch matches.
func (o *ops) UpdateHub(ctx context.Context, h *ferry.Hub, ifMatch string) error {
	return hubs.update(ctx, o.d, o.wq(), h, ifMatch)
}

// DeleteHub removes a hub with its identities, twins, messages and jobs.
func (o *ops) DeleteHub(ctx context.Context, id string) error {
	return hubs.del(ctx, o.d, o.wq(), []any{id}, "")
}

var identities = &table[ferry.DeviceIdentity]{
	name: "device_identities", what: "device identity",
	key: []string{"hub_id", "device_id"}, cols: []string{"status", "connection_state", "model_id"},
	row: func(d *ferry.DeviceIdentity) []any {
		return []any{d.HubID, d.DeviceID, string(d.Status), string(d.ConnectionState), d.ModelID}
	},
	etag: func(d *ferry.DeviceIdentity) *string { return &d.ETag },
}

var twins = &table[ferry.Twin]{
	name: "twins", what: "twin",
	key:  []string{"hub_id", "device_id"},
	row:  func(t *ferry.Twin) []any { return []any{t.HubID, t.DeviceID} },
	etag: func(t *ferry.Twin) *string { return &t.ETag },
}

// CreateDeviceIdentity stores an identity with an empty twin.
func (o *ops) CreateDeviceIdentity(ctx context.Context, d *ferry.DeviceIdentity) error {
	if d.HubID == "" || d.DeviceID == "" {
		return ferry.Errorf(ferry.EINVALID, "A device identity needs a hub and a device ID.")
	}
	o.warm(ctx, identities.putSQL(false), twins.putSQL(false))
	return o.write(ctx, func(q querier) error {
		q = o.hotTx(q)
		if err := identities.insert(ctx, o.d, q, d); err != nil {
			return err
		}
		tw := &ferry.Twin{HubID: d.HubID, DeviceID: d.DeviceID, Tags: map[string]any{},
			Desired: map[string]any{}, Reported: map[string]any{}, DesiredVersion: 1, ReportedVersion: 1, Version: 1}
		return twins.insert(ctx, o.d, q, tw)
	})
}

// GetDeviceIdentity returns an identity.
func (o *ops) GetDeviceIdentity(ctx context.Context, hubID, deviceID string) (*ferry.DeviceIdentity, error) {
	return identities.getKey(ctx, o.hotR(), hubID, deviceID)
}

func identityCond(f ferry.DeviceIdentityFilter) *cond {
	c := (&cond{}).eq("hub_id", f.HubID)
	if f.IDs != nil {
		c.in("device_id", f.IDs)
	}
	if f.Status != "" {
		c.eq("status", string(f.Status))
	}
	if f.ConnectionState != "" {
		c.eq("connection_state", string(f.ConnectionState))
	}
	if f.ModelID != "" {
		c.eq("model_id", f.ModelID)
	}
	return c
}

// ListDeviceIdentities returns a page of identities ordered by device ID.
func (o *ops) ListDeviceIdentities(ctx context.Context, f ferry.DeviceIdentityFilter) (ferry.Page[*ferry.DeviceIdentity], error) {
	if f.HubID == "" {
		return ferry.Page[*ferry.DeviceIdentity]{}, ferry.Errorf(ferry.EINVALID, "A hub is required.")
	}
	return identities.list(ctx, o.rq(), identityCond(f), []string{"device_id"}, false, f.ListOptions)
}

// CountDeviceIdentities counts identities that match f.
func (o *ops) CountDeviceIdentities(ctx context.Context, f ferry.DeviceIdentityFilter) (int, error) {
	if f.HubID == "" {
		return 0, ferry.Errorf(ferry.EINVALID, "A hub is required.")
	}
	return identities.count(ctx, o.rq(), identityCond(f))
}

// UpdateDeviceIdentity replaces an identity if ifMatch matches.
func (o *ops) UpdateDeviceIdentity(ctx context.Context, d *ferry.DeviceIdentity, ifMatch string) error {
	return identities.update(ctx, o.d, o.hotW(), d, ifMatch)
}

// DeleteDeviceIdentity removes an identity with its twin and messages.
func (o *ops) DeleteDeviceIdentity(ctx context.Context, hubID, deviceID, ifMatch string) error {
	return identities.del(ctx, o.d, o.wq(), []any{hubID, deviceID}, ifMatch)
}

// UpdateConnections applies connection and activity updates in one
// transaction. They leave the identity's ETag alone, as IoT Hub does. On
// SQLite the read and the write are prepared once per batch, not per row.
func (o *ops) UpdateConnections(ctx context.Context, hubID string, u []ferry.ConnectionUpdate) error {
	if len(u) == 0 {
		return nil
	}
	// One statement per device: the changed fields are merged into the
	// document in the database (a JSON merge patch), rather than the
	// document read, decoded, re-encoded and written back, which was a
	// seventh of a server's CPU while thousands of devices connected.
	upd := `UPDATE device_identities SET doc = json_patch(doc, $1),
		connection_state = COALESCE($2, connection_state), model_id = COALESCE($3, model_id)
		WHERE hub_id = $4 AND device_id = $5`
	if o.d.postgres {
		upd = `UPDATE device_identities SET doc = (doc::jsonb || $1::jsonb)::json,
		connection_state = COALESCE($2, connection_state), model_id = COALESCE($3, model_id)
		WHERE hub_id = $4 AND device_id = $5`
	}
	o.warm(ctx, upd)
	return o.write(ctx, func(q querier) error {
		q = o.hotTx(q) // prepared once on SQLite
		for _, x := range u {
			patch, state, model := connectionPatch(x)
			if patch == nil {
				continue
			}
			if _, err := q.ExecContext(ctx, upd, string(patch), state, model, hubID, x.DeviceID); err != nil {
				return fmt.Errorf("update connections: %w", err)
			}
		}
		return nil
	})
}

// connectionPatch returns the fields of a device identity's document that
// u changes, as a JSON object (nil if none), and the new values of the
// connection_state and model_id columns (nil to keep them).
func connectionPatch(u ferry.ConnectionUpdate) (patch []byte, state, model any) {
	var p struct {
		ConnectionState     ferry.ConnectionState `json:",omitempty"`
		ConnectionUpdatedAt *time.Time            `json:",omitempty"`
		LastActivityAt      *time.Time            `json:",omitempty"`
		ModelID             string                `json:",omitempty"`
	}
	if u.State != "" {
		p.ConnectionState, p.ConnectionUpdatedAt, state = u.State, &u.At, string(u.State)
	}
	if !u.LastActivityAt.IsZero() {
		p.LastActivityAt = &u.LastActivityAt
	}
	if u.ModelID != "" {
		p.ModelID, model = u.ModelID, u.ModelID
	}
	if state == nil && model == nil && p.LastActivityAt == nil {
		return nil, nil, nil
	}
	patch, _ = json.Marshal(p) // strings and times: cannot fail
	return patch, state, model
}

// GetTwin returns a twin.
func (o *ops) GetTwin(ctx context.Context, hubID, deviceID string) (*ferry.Twin, error) {
	return twins.getKey(ctx, o.hotR(), hubID, deviceID)
}

// UpdateTwin replaces a twin if ifMatch matches and sets a new ETag.
func (o *ops) UpdateTwin(ctx context.Context, t *ferry.Twin, ifMatch string) error {
	return twins.update(ctx, o.d, o.hotW(), t, ifMatch)
}

var hubDeviceGroups = &table[ferry.HubDeviceGroup]{
	name: "hub_device_groups", what: "device group",
	key: []string{"hub_id", "id"}, cols: []string{"name_lc"},
	row:  func(g *ferry.HubDeviceGroup) []any { return []any{g.HubID, g.ID, lower(g.Name)} },
	etag: func(g *ferry.HubDeviceGroup) *string { return &g.ETag },
}

// CreateHubDeviceGroup stores a group.
func (o *ops) CreateHubDeviceGroup(ctx context.Context, g *ferry.HubDeviceGroup) error {
	if g.ID == "" || g.HubID == "" || g.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A device group needs an ID, a hub and a name.")
	}
	return hubDeviceGroups.insert(ctx, o.d, o.wq(), g)
}

// GetHubDeviceGroup returns a hub's group by ID.
func (o *ops) GetHubDeviceGroup(ctx context.Context, hubID, id string) (*ferry.HubDeviceGroup, error) {
	return hubDeviceGroups.getKey(ctx, o.rq(), hubID, id)
}

// ListHubDeviceGroups returns a hub's groups ordered by name.
func (o *ops) ListHubDeviceGroups(ctx context.Context, hubID string) ([]*ferry.HubDeviceGroup, error) {
	return hubDeviceGroups.all(ctx, o.rq(), (&cond{}).eq("hub_id", hubID), "name_lc, id")
}

// UpdateHubDeviceGroup replaces a group if ifMatch matches.
func (o *ops) UpdateHubDeviceGroup(ctx context.Context, g *ferry.HubDeviceGroup, ifMatch string) error {
	return hubDeviceGroups.update(ctx, o.d, o.wq(), g, ifMatch)
}

// DeleteHubDeviceGroup removes a hub's group.
func (o *ops) DeleteHubDeviceGroup(ctx context.Context, hubID, id string) error {
	return hubDeviceGroups.del(ctx, o.d, o.wq(), []any{hubID, id}, "")
}

var deviceTemplates = &table[ferry.DeviceTemplate]{
	name: "device_templates", what: "device template",
	key:  []string{"id"},
	row:  func(t *ferry.DeviceTemplate) []any { return []any{t.ID} },
	etag: func(t *ferry.DeviceTemplate) *string { return &t.ETag },
}

// PutDeviceTemplate creates or replaces a template.
func (o *ops) PutDeviceTemplate(ctx context.Context, t *ferry.DeviceTemplate) error {
	if t.ID == "" {
		return ferry.Errorf(ferry.EINVALID, "A device template needs an ID.")
	}
	return deviceTemplates.upsert(ctx, o.d, o.wq(), t)
}

// GetDeviceTemplate returns a template.
func (o *ops) GetDeviceTemplate(ctx context.Context, id string) (*ferry.DeviceTemplate, error) {
	return deviceTemplates.getKey(ctx, o.rq(), id)
}

// ListDeviceTemplates returns a page of templates ordered by ID.
func (o *ops) ListDeviceTemplates(ctx context.Context, opt ferry.ListOptions) (ferry.Page[*ferry.DeviceTemplate], error) {
	return deviceTemplates.list(ctx, o.rq(), nil, []string{"id"}, false, opt)
}

// DeleteDeviceTemplate removes a template.
func (o *ops) DeleteDeviceTemplate(ctx context.Context, id string) error {
	return deviceTemplates.del(ctx, o.d, o.wq(), []any{id}, "")
}

var c2dMessages = &table[ferry.C2DMessage]{
	name: "c2d_messages", what: "cloud-to-device message",
	key: []string{"id"}, cols: []string{"hub_id", "device_id", "enqueued_ns"},
	row: func(m *ferry.C2DMessage) []any { return []any{m.ID, m.HubID, m.DeviceID, nanos(m.EnqueuedAt)} },
}

// EnqueueC2D queues a message.
func (o *ops) EnqueueC2D(ctx context.Context, m *ferry.C2DMessage) error {
	if m.ID == "" {
		m.ID = ferry.NewUUID()
	}
	return o.write(ctx, func(q querier) error {
		// Lock the identity so that concurrent enqueues count in turn.
		if _, err := identities.getForUpdate(ctx, o.d, q, m.HubID, m.DeviceID); err != nil {
			return err
		}
		n, err := c2dMessages.count(ctx, q, (&cond{}).eq("hub_id", m.HubID).eq("device_id", m.DeviceID))
		if err != nil {
			return err
		}
		if n >= ferry.MaxPendingC2D {
			return ferry.Errorf(ferry.ETHROTTLED, "The device already has %d pending cloud-to-device messages.", n)
		}
		return c2dMessages.insert(ctx, o.d, q, m)
	})
}

// ListPendingC2D returns a device's pending messages, oldest first.
func (o *ops) ListPendingC2D(ctx context.Context, hubID, deviceID string) ([]*ferry.C2DMessage, error) {
	return c2dMessages.all(ctx, o.rq(), (&cond{}).eq("hub_id", hubID).eq("device_id", deviceID), "enqueued_ns, id")
}

// CompleteC2D removes a delivered (or rejected) message.
func (o *ops) CompleteC2D(ctx context.Context, id string) error {
	return c2dMessages.del(ctx, o.d, o.wq(), []any{id}, "")
}

// PurgeC2D removes all of a device's pending messages.
func (o *ops) PurgeC2D(ctx context.Context, hubID, deviceID string) (int, error) {
	res, err := o.wq().ExecContext(ctx, "DELETE FROM c2d_messages WHERE hub_id = $1 AND device_id = $2", hubID, deviceID)
	if err != nil {
		return 0, fmt.Errorf("purge messages: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge messages: %w", err)
	}
	return int(n), nil
}

var jobs = &table[ferry.Job]{
	name: "jobs", what: "job",
	key: []string{"hub_id", "id"}, cols: []string{"type", "status"},
	row: func(j *ferry.Job) []any { return []any{j.HubID, j.ID, string(j.Type), string(j.Status)} },
}

var jobDevices = &table[ferry.JobDevice]{
	name: "job_devices", what: "job device",
	key: []string{"hub_id", "job_id", "device_id"},
	// hub_id is filled in by PutJobDevices.
}

// CreateJob stores a job.
func (o *ops) CreateJob(ctx context.Context, j *ferry.Job) error {
	if j.ID == "" || j.HubID == "" {
		return ferry.Errorf(ferry.EINVALID, "A job needs an ID and a hub.")
	}
	return jobs.insert(ctx, o.d, o.wq(), j)
}

// GetJob returns a job.
func (o *ops) GetJob(ctx context.Context, hubID, id string) (*ferry.Job, error) {
	return jobs.getKey(ctx, o.rq(), hubID, id)
}

// ListJobs returns a page of jobs ordered by ID.
func (o *ops) ListJobs(ctx context.Context, f ferry.JobFilter) (ferry.Page[*ferry.Job], error) {
	c := (&cond{}).eq("hub_id", f.HubID)
	if f.Type != "" {
		c.eq("type", string(f.Type))
	}
	if f.Status != "" {
		c.eq("status", string(f.Status))
	}
	return jobs.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// UpdateJob replaces a job.
func (o *ops) UpdateJob(ctx context.Context, j *ferry.Job) error {
	return jobs.update(ctx, o.d, o.wq(), j, "")
}

// PutJobDevices creates or replaces per-device outcomes.
func (o *ops) PutJobDevices(ctx context.Context, hubID string, d []*ferry.JobDevice) error {
	if len(d) == 0 {
		return nil
	}
	t := *jobDevices
	t.row = func(x *ferry.JobDevice) []any { return []any{hubID, x.JobID, x.DeviceID} }
	return o.write(ctx, func(q querier) error {
		for _, x := range d {
			if err := t.upsert(ctx, o.d, q, x); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListJobDevices returns a page of a job's device outcomes ordered by device ID.
func (o *ops) ListJobDevices(ctx context.Context, hubID, jobID string, opt ferry.ListOptions) (ferry.Page[*ferry.JobDevice], error) {
	return jobDevices.list(ctx, o.rq(), (&cond{}).eq("hub_id", hubID).eq("job_id", jobID), []string{"device_id"}, false, opt)
}
