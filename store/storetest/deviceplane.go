package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferry-iot/ferry"
)

func newHub(t *testing.T, s ferry.Tx, id, name, sub, rg string) *ferry.Hub {
	t.Helper()
	h := &ferry.Hub{ID: id, Name: name, HostName: name + ".example.com", SubscriptionID: sub, ResourceGroup: rg,
		Location: "westeurope", Tags: map[string]string{"a": "b"}, Policies: ferry.DefaultHubPolicies(), CreatedAt: t0}
	must(t, s.CreateHub(ctx, h))
	if h.ETag == "" {
		t.Fatal("CreateHub set no ETag")
	}
	return h
}

var _ = register("Hub", func(t *testing.T, s ferry.Store) {
	h := newHub(t, s, "h1", "Hub-A", "s1", "RG")
	newHub(t, s, "h2", "hub-b", "s1", "rg2")
	newHub(t, s, "h3", "hub-c", "s2", "rg")
	got, err := s.GetHub(ctx, "h1")
	must(t, err)
	if d := cmp.Diff(h, got); d != "" {
		t.Errorf("GetHub (-want +got):\n%s", d)
	}
	for _, f := range []func() (*ferry.Hub, error){
		func() (*ferry.Hub, error) { return s.GetHubByName(ctx, "HUB-a") },
		func() (*ferry.Hub, error) { return s.GetHubByHost(ctx, "hub-A.EXAMPLE.com") },
	} {
		got, err := f()
		must(t, err)
		if got.ID != "h1" {
			t.Errorf("got hub %s, want h1", got.ID)
		}
	}
	_, err = s.GetHubByHost(ctx, "nope")
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.CreateHub(ctx, &ferry.Hub{ID: "h9", Name: "hub-a", HostName: "x"}), ferry.ECONFLICT)
	wantCode(t, s.CreateHub(ctx, &ferry.Hub{ID: "h9", Name: "x", HostName: "HUB-B.example.com"}), ferry.ECONFLICT)
	wantCode(t, s.CreateHub(ctx, &ferry.Hub{ID: "h1", Name: "y", HostName: "y"}), ferry.ECONFLICT)
	for name, c := range map[string]struct {
		f    ferry.HubFilter
		want []string
	}{
		"All": {ferry.HubFilter{}, []string{"h1", "h2", "h3"}},
		"Sub": {ferry.HubFilter{SubscriptionID: "s1"}, []string{"h1", "h2"}},
		"RG":  {ferry.HubFilter{SubscriptionID: "s1", ResourceGroup: "rg"}, []string{"h1"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Hub], error) {
			c.f.ListOptions = o
			return s.ListHubs(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(h *ferry.Hub) string { return h.ID })); d != "" {
			t.Errorf("ListHubs %s (-want +got):\n%s", name, d)
		}
	}
	old := h.ETag
	h.Location = "northeurope"
	must(t, s.UpdateHub(ctx, h, old))
	if h.ETag == old {
		t.Error("UpdateHub kept the ETag")
	}
	h.Location = "x"
	wantCode(t, s.UpdateHub(ctx, h, old), ferry.EPRECONDITION)
	must(t, s.UpdateHub(ctx, h, "*"))
	h.Name = "hub-b"
	wantCode(t, s.UpdateHub(ctx, h, ""), ferry.ECONFLICT)
	wantCode(t, s.UpdateHub(ctx, &ferry.Hub{ID: "nope", Name: "n", HostName: "n"}, ""), ferry.ENOTFOUND)
	must(t, s.DeleteHub(ctx, "h3"))
	wantCode(t, s.DeleteHub(ctx, "h3"), ferry.ENOTFOUND)
})

var _ = register("DeviceIdentity", func(t *testing.T, s ferry.Store) {
	newHub(t, s, "h1", "hub-a", "", "")
	newHub(t, s, "h2", "hub-b", "", "")
	devs := seq("dev", 7)
	for i, id := range devs {
		d := &ferry.DeviceIdentity{HubID: "h1", DeviceID: id, GenerationID: "g" + id, Status: ferry.DeviceEnabled,
			Auth:            ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)},
			ConnectionState: ferry.Disconnected, ModelID: "dtmi:a;1", CreatedAt: t0}
		if i%2 == 1 {
			d.Status, d.ModelID = ferry.DeviceDisabled, "dtmi:b;1"
		}
		must(t, s.CreateDeviceIdentity(ctx, d))
		if d.ETag == "" {
			t.Fatal("no ETag")
		}
	}
	// The same device ID may live on another hub.
	must(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h2", DeviceID: "dev000", Status: ferry.DeviceEnabled}))
	wantCode(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h1", DeviceID: "dev000"}), ferry.ECONFLICT)
	wantCode(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "nohub", DeviceID: "x"}), ferry.ENOTFOUND)

	d, err := s.GetDeviceIdentity(ctx, "h1", "dev001")
	must(t, err)
	if d.Status != ferry.DeviceDisabled || d.Auth.Type != ferry.AuthSAS {
		t.Errorf("GetDeviceIdentity = %+v", d)
	}
	_, err = s.GetDeviceIdentity(ctx, "h1", "DEV001") // device IDs are case-sensitive
	wantCode(t, err, ferry.ENOTFOUND)

	for name, c := range map[string]struct {
		f    ferry.DeviceIdentityFilter
		want []string
	}{
		"All":       {ferry.DeviceIdentityFilter{HubID: "h1"}, devs},
		"IDs":       {ferry.DeviceIdentityFilter{HubID: "h1", IDs: []string{"dev002", "dev005", "zzz"}}, []string{"dev002", "dev005"}},
		"NoIDs":     {ferry.DeviceIdentityFilter{HubID: "h1", IDs: []string{}}, nil},
		"Status":    {ferry.DeviceIdentityFilter{HubID: "h1", Status: ferry.DeviceDisabled}, []string{"dev001", "dev003", "dev005"}},
		"Model":     {ferry.DeviceIdentityFilter{HubID: "h1", ModelID: "dtmi:a;1"}, []string{"dev000", "dev002", "dev004", "dev006"}},
		"Connected": {ferry.DeviceIdentityFilter{HubID: "h1", ConnectionState: ferry.Connected}, nil},
		"OtherHub":  {ferry.DeviceIdentityFilter{HubID: "h2"}, []string{"dev000"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceIdentity], error) {
			c.f.ListOptions = o
			return s.ListDeviceIdentities(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(d *ferry.DeviceIdentity) string { return d.DeviceID }), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("ListDeviceIdentities %s (-want +got):\n%s", name, d)
		}
		n, err := s.CountDeviceIdentities(ctx, c.f)
		must(t, err)
		if n != len(c.want) {
			t.Errorf("CountDeviceIdentities %s = %d, want %d", name, n, len(c.want))
		}
	}

	t.Run("Connections", func(t *testing.T) {
		at := t0.Add(time.Hour)
		before, err := s.GetDeviceIdentity(ctx, "h1", "dev000")
		must(t, err)
		must(t, s.UpdateConnections(ctx, "h1", []ferry.ConnectionUpdate{
			{DeviceID: "dev000", State: ferry.Connected, At: at, LastActivityAt: at, ModelID: "dtmi:ferry:announced;1"},
			{DeviceID: "unknown", State: ferry.Connected, At: at},
			{DeviceID: "dev002", LastActivityAt: at},
		}))
		must(t, s.UpdateConnections(ctx, "h1", []ferry.ConnectionUpdate{{DeviceID: "dev000", LastActivityAt: at}}))
		d, err := s.GetDeviceIdentity(ctx, "h1", "dev000")
		must(t, err)
		if d.ConnectionState != ferry.Connected || !d.ConnectionUpdatedAt.Equal(at) || !d.LastActivityAt.Equal(at) ||
			d.ModelID != "dtmi:ferry:announced;1" {
			t.Errorf("dev000 = %+v", d)
		}
		// Connection state is not a write of the identity: the rest of it,
		// its etag included, stays as it was.
		if d.ETag != before.ETag || d.Status != before.Status || d.GenerationID != before.GenerationID ||
			!reflect.DeepEqual(d.Auth, before.Auth) || !d.CreatedAt.Equal(before.CreatedAt) {
			t.Errorf("dev000 after connection updates = %+v, before %+v", d, before)
		}
		n, err := s.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: "h1", ModelID: "dtmi:ferry:announced;1"})
		must(t, err)
		if n != 1 {
			t.Errorf("identities listed by the announced model = %d, want 1", n)
		}
		d, err = s.GetDeviceIdentity(ctx, "h1", "dev002")
		must(t, err)
		if d.ConnectionState != ferry.Disconnected || !d.LastActivityAt.Equal(at) {
			t.Errorf("dev002 = %+v", d)
		}
		n, err = s.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: "h1", ConnectionState: ferry.Connected})
		must(t, err)
		if n != 1 {
			t.Errorf("connected = %d, want 1", n)
		}
	})

	t.Run("Update", func(t *testing.T) {
		d, err := s.GetDeviceIdentity(ctx, "h1", "dev003")
		must(t, err)
		old := d.ETag
		d.Status = ferry.DeviceEnabled
		must(t, s.UpdateDeviceIdentity(ctx, d, old))
		d.StatusReason = "x"
		wantCode(t, s.UpdateDeviceIdentity(ctx, d, old), ferry.EPRECONDITION)
		must(t, s.UpdateDeviceIdentity(ctx, d, `"`+d.ETag+`"`))
		wantCode(t, s.UpdateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h1", DeviceID: "nope"}, ""), ferry.ENOTFOUND)
	})

	t.Run("Twin", func(t *testing.T) {
		tw, err := s.GetTwin(ctx, "h1", "dev004")
		must(t, err)
		if tw.ETag == "" || tw.HubID != "h1" || tw.DeviceID != "dev004" {
			t.Fatalf("new twin = %+v", tw)
		}
		old := tw.ETag
		tw.Tags = map[string]any{"site": "berlin", "n": 1.5}
		tw.Desired = map[string]any{"fw": map[string]any{"v": "1.2"}}
		tw.DesiredVersion++
		tw.Version++
		must(t, s.UpdateTwin(ctx, tw, old))
		got, err := s.GetTwin(ctx, "h1", "dev004")
		must(t, err)
		if d := cmp.Diff(tw, got); d != "" {
			t.Errorf("GetTwin (-want +got):\n%s", d)
		}
		wantCode(t, s.UpdateTwin(ctx, tw, old), ferry.EPRECONDITION)
		_, err = s.GetTwin(ctx, "h1", "nope")
		wantCode(t, err, ferry.ENOTFOUND)
		wantCode(t, s.UpdateTwin(ctx, &ferry.Twin{HubID: "h1", DeviceID: "nope"}, ""), ferry.ENOTFOUND)
	})

	t.Run("Delete", func(t *testing.T) {
		d, err := s.GetDeviceIdentity(ctx, "h1", "dev006")
		must(t, err)
		wantCode(t, s.DeleteDeviceIdentity(ctx, "h1", "dev006", "wrong"), ferry.EPRECONDITION)
		must(t, s.EnqueueC2D(ctx, &ferry.C2DMessage{HubID: "h1", DeviceID: "dev006", Body: []byte("x"), EnqueuedAt: t0}))
		must(t, s.DeleteDeviceIdentity(ctx, "h1", "dev006", d.ETag))
		wantCode(t, s.DeleteDeviceIdentity(ctx, "h1", "dev006", ""), ferry.ENOTFOUND)
		_, err = s.GetTwin(ctx, "h1", "dev006")
		wantCode(t, err, ferry.ENOTFOUND)
		msgs, err := s.ListPendingC2D(ctx, "h1", "dev006")
		must(t, err)
		if len(msgs) != 0 {
			t.Errorf("messages survived their identity: %d", len(msgs))
		}
		// Re-creating gives a fresh twin.
		must(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h1", DeviceID: "dev006"}))
	})

	t.Run("DeleteHub", func(t *testing.T) {
		must(t, s.DeleteHub(ctx, "h1"))
		_, err := s.GetDeviceIdentity(ctx, "h1", "dev000")
		wantCode(t, err, ferry.ENOTFOUND)
		_, err = s.GetTwin(ctx, "h1", "dev000")
		wantCode(t, err, ferry.ENOTFOUND)
		_, err = s.GetDeviceIdentity(ctx, "h2", "dev000")
		must(t, err)
	})
})

var _ = register("HubDeviceGroup", func(t *testing.T, s ferry.Store) {
	newHub(t, s, "h1", "hub-a", "", "")
	newHub(t, s, "h2", "hub-b", "", "")
	for i, n := range []string{"Zeta", "alpha", "Beta"} {
		g := &ferry.HubDeviceGroup{ID: fmt.Sprint("g", i), HubID: "h1", Name: n, Query: "tags.x = 1", CreatedAt: t0}
		must(t, s.CreateHubDeviceGroup(ctx, g))
	}
	must(t, s.CreateHubDeviceGroup(ctx, &ferry.HubDeviceGroup{ID: "g9", HubID: "h2", Name: "alpha"}))
	wantCode(t, s.CreateHubDeviceGroup(ctx, &ferry.HubDeviceGroup{ID: "g8", HubID: "h1", Name: "ALPHA"}), ferry.ECONFLICT)
	gs, err := s.ListHubDeviceGroups(ctx, "h1")
	must(t, err)
	if d := cmp.Diff([]string{"alpha", "Beta", "Zeta"}, ids(gs, func(g *ferry.HubDeviceGroup) string { return g.Name })); d != "" {
		t.Errorf("ListHubDeviceGroups (-want +got):\n%s", d)
	}
	// IDs are the hub's: another hub may use the same one.
	must(t, s.CreateHubDeviceGroup(ctx, &ferry.HubDeviceGroup{ID: "g0", HubID: "h2", Name: "other"}))
	wantCode(t, s.CreateHubDeviceGroup(ctx, &ferry.HubDeviceGroup{ID: "g0", HubID: "h1", Name: "again"}), ferry.ECONFLICT)
	g, err := s.GetHubDeviceGroup(ctx, "h1", "g0")
	must(t, err)
	if g.HubID != "h1" || g.Name != "Zeta" {
		t.Errorf("GetHubDeviceGroup(h1, g0) = %+v", g)
	}
	old := g.ETag
	g.Description = "d"
	must(t, s.UpdateHubDeviceGroup(ctx, g, old))
	wantCode(t, s.UpdateHubDeviceGroup(ctx, g, old), ferry.EPRECONDITION)
	g.Name = "beta"
	wantCode(t, s.UpdateHubDeviceGroup(ctx, g, ""), ferry.ECONFLICT)
	must(t, s.DeleteHubDeviceGroup(ctx, "h1", "g0"))
	wantCode(t, s.DeleteHubDeviceGroup(ctx, "h1", "g0"), ferry.ENOTFOUND)
	_, err = s.GetHubDeviceGroup(ctx, "h1", "g0")
	wantCode(t, err, ferry.ENOTFOUND)
	if g, err := s.GetHubDeviceGroup(ctx, "h2", "g0"); err != nil || g.Name != "other" {
		t.Errorf("the other hub's g0 after the delete: %+v, %v", g, err)
	}
})

var _ = register("DeviceTemplate", func(t *testing.T, s ferry.Store) {
	for _, id := range seq("dtmi:x:m;", 5) {
		must(t, s.PutDeviceTemplate(ctx, &ferry.DeviceTemplate{ID: id, DisplayName: id, Model: json.RawMessage(`{"@id":"` + id + `"}`), CreatedAt: t0}))
	}
	tp := &ferry.DeviceTemplate{ID: "dtmi:x:m;000", DisplayName: "new", Model: json.RawMessage(`{"a":1}`), HasDeviceMove: true, MigrationComponent: "mig", CreatedAt: t0}
	must(t, s.PutDeviceTemplate(ctx, tp))
	got, err := s.GetDeviceTemplate(ctx, tp.ID)
	must(t, err)
	if got.ETag != tp.ETag || got.DisplayName != "new" || !got.HasDeviceMove || string(got.Model) != `{"a":1}` && string(got.Model) != `{"a": 1}` {
		t.Errorf("GetDeviceTemplate = %+v", got)
	}
	all := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceTemplate], error) {
		return s.ListDeviceTemplates(ctx, o)
	})
	if d := cmp.Diff(seq("dtmi:x:m;", 5), ids(all, func(x *ferry.DeviceTemplate) string { return x.ID })); d != "" {
		t.Errorf("ListDeviceTemplates (-want +got):\n%s", d)
	}
	must(t, s.DeleteDeviceTemplate(ctx, tp.ID))
	wantCode(t, s.DeleteDeviceTemplate(ctx, tp.ID), ferry.ENOTFOUND)
	_, err = s.GetDeviceTemplate(ctx, tp.ID)
	wantCode(t, err, ferry.ENOTFOUND)
})

var _ = register("C2D", func(t *testing.T, s ferry.Store) {
	newHub(t, s, "h1", "hub-a", "", "")
	must(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h1", DeviceID: "d1"}))
	must(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h1", DeviceID: "d2"}))
	wantCode(t, s.EnqueueC2D(ctx, &ferry.C2DMessage{HubID: "h1", DeviceID: "nope"}), ferry.ENOTFOUND)
	first := &ferry.C2DMessage{HubID: "h1", DeviceID: "d1", MessageID: "m0", Properties: map[string]string{"k": "v"},
		Body: []byte{0, 1, 2}, EnqueuedAt: t0}
	must(t, s.EnqueueC2D(ctx, first))
	if first.ID == "" {
		t.Fatal("EnqueueC2D set no ID")
	}
	for i := 1; i < ferry.MaxPendingC2D; i++ {
		must(t, s.EnqueueC2D(ctx, &ferry.C2DMessage{HubID: "h1", DeviceID: "d1", MessageID: fmt.Sprint("m", i), EnqueuedAt: t0.Add(time.Duration(i) * time.Second)}))
	}
	wantCode(t, s.EnqueueC2D(ctx, &ferry.C2DMessage{HubID: "h1", DeviceID: "d1", EnqueuedAt: t0}), ferry.ETHROTTLED)
	must(t, s.EnqueueC2D(ctx, &ferry.C2DMessage{HubID: "h1", DeviceID: "d2", EnqueuedAt: t0}))
	msgs, err := s.ListPendingC2D(ctx, "h1", "d1")
	must(t, err)
	if len(msgs) != ferry.MaxPendingC2D || msgs[0].MessageID != "m0" || msgs[1].MessageID != "m1" {
		t.Fatalf("ListPendingC2D: %d messages, first %+v", len(msgs), msgs[0])
	}
	if d := cmp.Diff(first, msgs[0]); d != "" {
		t.Errorf("first message (-want +got):\n%s", d)
	}
	must(t, s.CompleteC2D(ctx, first.ID))
	wantCode(t, s.CompleteC2D(ctx, first.ID), ferry.ENOTFOUND)
	n, err := s.PurgeC2D(ctx, "h1", "d1")
	must(t, err)
	if n != ferry.MaxPendingC2D-1 {
		t.Errorf("PurgeC2D = %d", n)
	}
	msgs, err = s.ListPendingC2D(ctx, "h1", "d2")
	must(t, err)
	if len(msgs) != 1 {
		t.Errorf("d2 has %d messages, want 1", len(msgs))
	}
})

var _ = register("Job", func(t *testing.T, s ferry.Store) {
	newHub(t, s, "h1", "hub-a", "", "")
	newHub(t, s, "h2", "hub-b", "", "")
	for i, id := range seq("job", 5) {
		j := &ferry.Job{ID: id, HubID: "h1", Type: ferry.JobDeviceMethod, Status: ferry.JobScheduled, QueryCondition: "*",
			MethodName: "reboot", MethodPayload: json.RawMessage(`{"x":1}`), ResponseTimeout: 30 * time.Second, StartTime: t0, CreatedAt: t0}
		if i >= 3 {
			j.Type, j.Status = ferry.JobUpdateTwin, ferry.JobCompleted
		}
		must(t, s.CreateJob(ctx, j))
	}
	must(t, s.CreateJob(ctx, &ferry.Job{ID: "job000", HubID: "h2", Type: ferry.JobUpdateTwin}))
	wantCode(t, s.CreateJob(ctx, &ferry.Job{ID: "job000", HubID: "h1"}), ferry.ECONFLICT)
	for name, c := range map[string]struct {
		f    ferry.JobFilter
		want []string
	}{
		"All":    {ferry.JobFilter{HubID: "h1"}, seq("job", 5)},
		"Type":   {ferry.JobFilter{HubID: "h1", Type: ferry.JobUpdateTwin}, []string{"job003", "job004"}},
		"Status": {ferry.JobFilter{HubID: "h1", Status: ferry.JobScheduled}, []string{"job000", "job001", "job002"}},
		"Hub2":   {ferry.JobFilter{HubID: "h2"}, []string{"job000"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Job], error) {
			c.f.ListOptions = o
			return s.ListJobs(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(j *ferry.Job) string { return j.ID })); d != "" {
			t.Errorf("ListJobs %s (-want +got):\n%s", name, d)
		}
	}
	j, err := s.GetJob(ctx, "h1", "job001")
	must(t, err)
	j.Status, j.Statistics.DeviceCount = ferry.JobRunning, 3
	must(t, s.UpdateJob(ctx, j))
	got, err := s.GetJob(ctx, "h1", "job001")
	must(t, err)
	if d := cmp.Diff(j, got); d != "" {
		t.Errorf("GetJob after update (-want +got):\n%s", d)
	}
	wantCode(t, s.UpdateJob(ctx, &ferry.Job{ID: "nope", HubID: "h1"}), ferry.ENOTFOUND)
	_, err = s.GetJob(ctx, "h2", "job001")
	wantCode(t, err, ferry.ENOTFOUND)

	var jd []*ferry.JobDevice
	for _, d := range seq("d", 5) {
		jd = append(jd, &ferry.JobDevice{JobID: "job001", DeviceID: d, Status: ferry.JobPending})
	}
	must(t, s.PutJobDevices(ctx, "h1", jd))
	must(t, s.PutJobDevices(ctx, "h1", []*ferry.JobDevice{{JobID: "job001", DeviceID: "d002", Status: ferry.JobCompleted, Result: json.RawMessage(`{"status":200}`)}}))
	all := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.JobDevice], error) {
		return s.ListJobDevices(ctx, "h1", "job001", o)
	})
	if d := cmp.Diff(seq("d", 5), ids(all, func(d *ferry.JobDevice) string { return d.DeviceID })); d != "" {
		t.Errorf("ListJobDevices (-want +got):\n%s", d)
	}
	if all[2].Status != ferry.JobCompleted {
		t.Errorf("d002 = %+v", all[2])
	}
	must(t, s.DeleteHub(ctx, "h1"))
	_, err = s.GetJob(ctx, "h1", "job001")
	wantCode(t, err, ferry.ENOTFOUND)
})
