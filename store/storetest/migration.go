package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
)

func newMigration(t *testing.T, s ferry.Tx, id, sub, rg, name string, st ferry.MigrationState) *ferry.Migration {
	t.Helper()
	m := &ferry.Migration{ID: id, Name: name, SubscriptionID: sub, ResourceGroup: rg, SourceHubID: "h1",
		Selection: ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: []string{"d1"}},
		Target:    ferry.MigrationTarget{IDScope: "0ne", Remote: &ferry.RemoteFerry{APIEndpoint: "https://b", ClientSecret: "s"}},
		Waves:     ferry.WavePlan{Sizes: []int{1, 2}}, SuccessThreshold: 90, OnError: ferry.OnErrorPause,
		DeviceTimeout: time.Minute, CommandRate: 2.5, State: st, Preflight: json.RawMessage(`{"ok":true}`), CreatedAt: t0}
	must(t, s.CreateMigration(ctx, m))
	return m
}

var _ = register("Migration", func(t *testing.T, s ferry.Store) {
	m := newMigration(t, s, "m1", "s1", "RG", "Mig-A", ferry.MigrationCreated)
	newMigration(t, s, "m2", "s1", "rg", "mig-b", ferry.MigrationRunning)
	newMigration(t, s, "m3", "s2", "rg", "mig-a", ferry.MigrationCompleted)
	got, err := s.GetMigration(ctx, "m1")
	must(t, err)
	if d := cmp.Diff(m, got); d != "" {
		t.Errorf("GetMigration (-want +got):\n%s", d)
	}
	got, err = s.GetMigrationByName(ctx, "s1", "rg", "MIG-A")
	must(t, err)
	if got.ID != "m1" {
		t.Errorf("GetMigrationByName = %s", got.ID)
	}
	_, err = s.GetMigrationByName(ctx, "s2", "rg", "mig-b")
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.CreateMigration(ctx, &ferry.Migration{ID: "m9", SubscriptionID: "s1", ResourceGroup: "rg", Name: "mig-a"}), ferry.ECONFLICT)
	for name, c := range map[string]struct {
		f    ferry.MigrationFilter
		want []string
	}{
		"All":    {ferry.MigrationFilter{}, []string{"m1", "m2", "m3"}},
		"Sub":    {ferry.MigrationFilter{SubscriptionID: "s1"}, []string{"m1", "m2"}},
		"RG":     {ferry.MigrationFilter{SubscriptionID: "s2", ResourceGroup: "RG"}, []string{"m3"}},
		"States": {ferry.MigrationFilter{States: []ferry.MigrationState{ferry.MigrationRunning, ferry.MigrationCreated}}, []string{"m1", "m2"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Migration], error) {
			c.f.ListOptions = o
			return s.ListMigrations(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.Migration) string { return x.ID })); d != "" {
			t.Errorf("ListMigrations %s (-want +got):\n%s", name, d)
		}
	}
	old := m.ETag
	m.State = ferry.MigrationRunning
	must(t, s.UpdateMigration(ctx, m, old))
	wantCode(t, s.UpdateMigration(ctx, m, old), ferry.EPRECONDITION)
	wantCode(t, s.UpdateMigration(ctx, &ferry.Migration{ID: "nope", Name: "x"}, ""), ferry.ENOTFOUND)

	// Waves.
	must(t, s.PutMigrationWaves(ctx, []*ferry.MigrationWave{
		{MigrationID: "m1", Index: 1, Size: 2, State: ferry.WavePending},
		{MigrationID: "m1", Index: 0, Size: 1, State: ferry.WavePending},
	}))
	must(t, s.PutMigrationWaves(ctx, []*ferry.MigrationWave{{MigrationID: "m1", Index: 0, Size: 1, State: ferry.WaveRunning, StartedAt: t0}}))
	waves, err := s.ListMigrationWaves(ctx, "m1")
	must(t, err)
	if len(waves) != 2 || waves[0].Index != 0 || waves[0].State != ferry.WaveRunning || waves[1].Index != 1 {
		t.Errorf("ListMigrationWaves = %+v", waves)
	}

	// Device records.
	var devs []*ferry.MigrationDevice
	for i, id := range seq("d", 6) {
		devs = append(devs, &ferry.MigrationDevice{MigrationID: "m1", DeviceID: id, Wave: i / 3, State: ferry.DevicePending, UpdatedAt: t0})
	}
	must(t, s.AddMigrationDevices(ctx, devs))
	wantCode(t, s.AddMigrationDevices(ctx, []*ferry.MigrationDevice{{MigrationID: "m1", DeviceID: "new", State: ferry.DevicePending}, {MigrationID: "m1", DeviceID: "d000"}}), ferry.ECONFLICT)
	_, err = s.GetMigrationDevice(ctx, "m1", "new")
	wantCode(t, err, ferry.ENOTFOUND) // all or nothing
	wantCode(t, s.AddMigrationDevices(ctx, []*ferry.MigrationDevice{{MigrationID: "nope", DeviceID: "x"}}), ferry.ENOTFOUND)

	at := t0.Add(time.Minute)
	must(t, s.TransitionMigrationDevices(ctx, []*ferry.MigrationTransition{
		{MigrationID: "m1", DeviceID: "d000", From: ferry.DevicePending, To: ferry.DeviceCommanded, At: at, Deadline: at.Add(time.Minute)},
		{MigrationID: "m1", DeviceID: "d001", From: ferry.DevicePending, To: ferry.DeviceFailed, At: at, Reason: "offline"},
	}))
	d, err := s.GetMigrationDevice(ctx, "m1", "d000")
	must(t, err)
	want := &ferry.MigrationDevice{MigrationID: "m1", DeviceID: "d000", State: ferry.DeviceCommanded, Attempts: 1, Deadline: at.Add(time.Minute), UpdatedAt: at}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("after transition (-want +got):\n%s", diff)
	}
	// d001 is no longer pending: the batch fails and d002 stays pending.
	wantCode(t, s.TransitionMigrationDevices(ctx, []*ferry.MigrationTransition{
		{MigrationID: "m1", DeviceID: "d002", From: ferry.DevicePending, To: ferry.DeviceCommanded, At: at},
		{MigrationID: "m1", DeviceID: "d001", From: ferry.DevicePending, To: ferry.DeviceCommanded, At: at},
	}), ferry.ECONFLICT)
	d, err = s.GetMigrationDevice(ctx, "m1", "d002")
	must(t, err)
	if d.State != ferry.DevicePending {
		t.Errorf("d002 = %s after a failed batch, want pending", d.State)
	}
	// Inside WithTx, a refused batch leaves the transaction usable.
	must(t, s.WithTx(ctx, func(tx ferry.Tx) error {
		err := tx.TransitionMigrationDevices(ctx, []*ferry.MigrationTransition{
			{MigrationID: "m1", DeviceID: "d002", From: ferry.DevicePending, To: ferry.DeviceCommanded, At: at},
			{MigrationID: "m1", DeviceID: "d001", From: ferry.DevicePending, To: ferry.DeviceCommanded, At: at},
		})
		wantCode(t, err, ferry.ECONFLICT)
		return tx.TransitionMigrationDevices(ctx, []*ferry.MigrationTransition{
			{MigrationID: "m1", DeviceID: "d003", From: ferry.DevicePending, To: ferry.DeviceCommanded, At: at},
		})
	}))
	d, err = s.GetMigrationDevice(ctx, "m1", "d002")
	must(t, err)
	if d.State != ferry.DevicePending {
		t.Errorf("d002 = %s, want pending", d.State)
	}
	wantCode(t, s.TransitionMigrationDevices(ctx, []*ferry.MigrationTransition{{MigrationID: "m1", DeviceID: "nope", From: ferry.DevicePending, To: ferry.DeviceCommanded}}), ferry.ENOTFOUND)

	counts, err := s.CountMigrationDevices(ctx, "m1")
	must(t, err)
	wantCounts := map[int]map[ferry.DeviceMigrationState]int{
		0: {ferry.DeviceCommanded: 1, ferry.DeviceFailed: 1, ferry.DevicePending: 1},
		1: {ferry.DeviceCommanded: 1, ferry.DevicePending: 2},
	}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("CountMigrationDevices (-want +got):\n%s", diff)
	}
	for name, c := range map[string]struct {
		f    ferry.MigrationDeviceFilter
		want []string
	}{
		"All":       {ferry.MigrationDeviceFilter{MigrationID: "m1", Wave: -1}, seq("d", 6)},
		"Wave0":     {ferry.MigrationDeviceFilter{MigrationID: "m1", Wave: 0}, []string{"d000", "d001", "d002"}},
		"Commanded": {ferry.MigrationDeviceFilter{MigrationID: "m1", Wave: -1, States: []ferry.DeviceMigrationState{ferry.DeviceCommanded}}, []string{"d000", "d003"}},
		"Wave1Pend": {ferry.MigrationDeviceFilter{MigrationID: "m1", Wave: 1, States: []ferry.DeviceMigrationState{ferry.DevicePending}}, []string{"d004", "d005"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.MigrationDevice], error) {
			c.f.ListOptions = o
			return s.ListMigrationDevices(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.MigrationDevice) string { return x.DeviceID })); d != "" {
			t.Errorf("ListMigrationDevices %s (-want +got):\n%s", name, d)
		}
	}
	must(t, s.TransitionMigrationDevices(ctx, []*ferry.MigrationTransition{
		{MigrationID: "m1", DeviceID: "d000", From: ferry.DeviceCommanded, To: ferry.DeviceAcknowledged, At: at.Add(time.Second)},
	}))
	tr := func(dev string) []string {
		return ids(collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.MigrationTransition], error) {
			return s.ListMigrationTransitions(ctx, "m1", dev, o)
		}), func(x *ferry.MigrationTransition) string { return fmt.Sprintf("%s:%s>%s", x.DeviceID, x.From, x.To) })
	}
	if d := cmp.Diff([]string{"d000:pending>commanded", "d001:pending>failed", "d003:pending>commanded", "d000:commanded>acknowledged"}, tr("")); d != "" {
		t.Errorf("ListMigrationTransitions all (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"d000:pending>commanded", "d000:commanded>acknowledged"}, tr("d000")); d != "" {
		t.Errorf("ListMigrationTransitions d000 (-want +got):\n%s", d)
	}

	// One batch may take a device several steps (each From the previous
	// To) and span more devices than one statement carries.
	many := seq("bulk", 1203)
	var bulk []*ferry.MigrationDevice
	for _, id := range many {
		bulk = append(bulk, &ferry.MigrationDevice{MigrationID: "m1", DeviceID: id, Wave: 1, State: ferry.DevicePending, UpdatedAt: t0})
	}
	must(t, s.AddMigrationDevices(ctx, bulk))
	var steps []*ferry.MigrationTransition
	for i, id := range many {
		steps = append(steps, &ferry.MigrationTransition{MigrationID: "m1", DeviceID: id, From: ferry.DevicePending, To: ferry.DeviceCommanded,
			At: at, Deadline: at.Add(time.Minute)})
		if i%2 == 0 {
			steps = append(steps,
				&ferry.MigrationTransition{MigrationID: "m1", DeviceID: id, From: ferry.DeviceCommanded, To: ferry.DeviceAcknowledged, At: at.Add(time.Second), Reason: "ok"},
				&ferry.MigrationTransition{MigrationID: "m1", DeviceID: id, From: ferry.DeviceAcknowledged, To: ferry.DeviceCommanded, At: at.Add(2 * time.Second), Reason: "again"})
		}
	}
	must(t, s.TransitionMigrationDevices(ctx, steps))
	for _, i := range []int{0, 1, 600, 1202} {
		d, err := s.GetMigrationDevice(ctx, "m1", many[i])
		must(t, err)
		want := &ferry.MigrationDevice{MigrationID: "m1", DeviceID: many[i], Wave: 1, State: ferry.DeviceCommanded, Attempts: 1, UpdatedAt: at,
			Deadline: at.Add(time.Minute)}
		if i%2 == 0 {
			want.Attempts, want.Reason, want.UpdatedAt, want.Deadline = 2, "again", at.Add(2*time.Second), time.Time{}
		}
		if diff := cmp.Diff(want, d); diff != "" {
			t.Errorf("%s after a chain (-want +got):\n%s", many[i], diff)
		}
	}
	if d := cmp.Diff([]string{"bulk600:pending>commanded", "bulk600:commanded>acknowledged", "bulk600:acknowledged>commanded"}, tr("bulk600")); d != "" {
		t.Errorf("ListMigrationTransitions bulk600 (-want +got):\n%s", d)
	}
	// A chain that breaks in the middle, past the first statement's
	// devices, refuses the whole batch.
	steps = steps[:0]
	for _, id := range many {
		steps = append(steps, &ferry.MigrationTransition{MigrationID: "m1", DeviceID: id, From: ferry.DeviceCommanded, To: ferry.DeviceAcknowledged, At: at})
	}
	steps = append(steps, &ferry.MigrationTransition{MigrationID: "m1", DeviceID: many[900], From: ferry.DeviceCommanded, To: ferry.DeviceVerified, At: at})
	wantCode(t, s.TransitionMigrationDevices(ctx, steps), ferry.ECONFLICT)
	d, err = s.GetMigrationDevice(ctx, "m1", many[0])
	must(t, err)
	if d.State != ferry.DeviceCommanded {
		t.Errorf("%s = %s after a refused batch, want commanded", many[0], d.State)
	}
	if n := len(tr("bulk000")); n != 3 {
		t.Errorf("bulk000 has %d transitions after a refused batch, want 3", n)
	}

	must(t, s.DeleteMigration(ctx, "m1"))
	wantCode(t, s.DeleteMigration(ctx, "m1"), ferry.ENOTFOUND)
	_, err = s.GetMigrationDevice(ctx, "m1", "d000")
	wantCode(t, err, ferry.ENOTFOUND)
	waves, err = s.ListMigrationWaves(ctx, "m1")
	must(t, err)
	if len(waves) != 0 {
		t.Errorf("waves survived: %d", len(waves))
	}
})

var _ = register("Audit", func(t *testing.T, s ferry.Store) {
	var evs []*ferry.AuditEvent
	for i := range 8 {
		e := &ferry.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i/2) * time.Minute), Surface: ferry.SurfaceIntegrated,
			Operation: "ProductCreate", CatalogID: "t1", PrincipalID: "u1", PrincipalName: "u1@x", UserAgent: "cli",
			Result: ferry.ResultSuccess, StatusCode: 200, Duration: time.Millisecond}
		if i%2 == 1 {
			e.Surface, e.Operation, e.PrincipalID, e.PrincipalName, e.Result = ferry.SurfaceLegacy, "DeviceClaim", "u2", "u2@x", ferry.ResultFailure
		}
		if i >= 6 {
			e.CatalogID = "t2"
		}
		evs = append(evs, e)
	}
	must(t, s.AppendAudit(ctx, evs))
	must(t, s.AppendAudit(ctx, []*ferry.AuditEvent{{Time: t0.Add(-time.Hour), Operation: "Login", PrincipalID: "u1", UserAgent: "web", Result: ferry.ResultSuccess}}))
	for name, c := range map[string]struct {
		f    ferry.AuditFilter
		want []string
	}{
		"Newest":    {ferry.AuditFilter{Since: t0}, []string{"e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"}},
		"Until":     {ferry.AuditFilter{Since: t0, Until: t0.Add(time.Minute)}, []string{"e1", "e0"}},
		"Surface":   {ferry.AuditFilter{Surface: ferry.SurfaceLegacy}, []string{"e7", "e5", "e3", "e1"}},
		"Catalog":   {ferry.AuditFilter{CatalogID: "t2"}, []string{"e7", "e6"}},
		"Principal": {ferry.AuditFilter{PrincipalID: "u2", Since: t0.Add(2 * time.Minute)}, []string{"e7", "e5"}},
		"Operation": {ferry.AuditFilter{Operation: "ProductCreate", CatalogID: "t1"}, []string{"e4", "e2", "e0"}},
		"Result":    {ferry.AuditFilter{Result: ferry.ResultFailure, CatalogID: "t1"}, []string{"e5", "e3", "e1"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.AuditEvent], error) {
			c.f.ListOptions = o
			return s.ListAudit(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.AuditEvent) string { return x.ID })); d != "" {
			t.Errorf("ListAudit %s (-want +got):\n%s", name, d)
		}
	}
	sum, err := s.SummarizeAudit(ctx, ferry.AuditFilter{ListOptions: ferry.ListOptions{Limit: 1}})
	must(t, err)
	want := []*ferry.AuditSummary{
		{PrincipalID: "u1", PrincipalName: "u1@x", UserAgent: "cli", Operation: "ProductCreate", Count: 4, LastCall: t0.Add(3 * time.Minute)},
		{PrincipalID: "u1", PrincipalName: "", UserAgent: "web", Operation: "Login", Count: 1, LastCall: t0.Add(-time.Hour)},
		{PrincipalID: "u2", PrincipalName: "u2@x", UserAgent: "cli", Operation: "DeviceClaim", Count: 4, LastCall: t0.Add(3 * time.Minute)},
	}
	if d := cmp.Diff(want, sum); d != "" {
		t.Errorf("SummarizeAudit (-want +got):\n%s", d)
	}
})

var _ = register("DeviceEvent", func(t *testing.T, s ferry.Store) {
	var evs []*ferry.DeviceEvent
	for i := range 6 {
		e := &ferry.DeviceEvent{ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i) * time.Second), HubID: "h1",
			DeviceID: fmt.Sprintf("d%d", i%2), Type: "connected", Detail: json.RawMessage(`{"x":1}`)}
		if i >= 4 {
			e.HubID, e.Type = "h2", "disconnected"
		}
		evs = append(evs, e)
	}
	must(t, s.AppendDeviceEvents(ctx, evs))
	for name, c := range map[string]struct {
		f    ferry.DeviceEventFilter
		want []string
	}{
		"All":    {ferry.DeviceEventFilter{}, []string{"e5", "e4", "e3", "e2", "e1", "e0"}},
		"Hub":    {ferry.DeviceEventFilter{HubID: "h1"}, []string{"e3", "e2", "e1", "e0"}},
		"Device": {ferry.DeviceEventFilter{HubID: "h1", DeviceID: "d1"}, []string{"e3", "e1"}},
		"Type":   {ferry.DeviceEventFilter{Type: "disconnected"}, []string{"e5", "e4"}},
		"Since":  {ferry.DeviceEventFilter{Since: t0.Add(3 * time.Second)}, []string{"e5", "e4", "e3"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceEvent], error) {
			c.f.ListOptions = o
			return s.ListDeviceEvents(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.DeviceEvent) string { return x.ID })); d != "" {
			t.Errorf("ListDeviceEvents %s (-want +got):\n%s", name, d)
		}
	}
})

var _ = register("Monitor", func(t *testing.T, s ferry.Store) {
	for i, n := range []string{"zeta", "Alpha", "beta"} {
		r := &ferry.AlertRule{ID: fmt.Sprint("r", i), Name: n, Enabled: true, Metric: "m", Operator: "gt", Threshold: 1.5, Window: time.Minute, CreatedAt: t0}
		must(t, s.PutAlertRule(ctx, r))
		if r.ETag == "" {
			t.Fatal("no ETag")
		}
	}
	wantCode(t, s.PutAlertRule(ctx, &ferry.AlertRule{ID: "r9", Name: "ALPHA"}), ferry.ECONFLICT)
	r, err := s.GetAlertRule(ctx, "r1")
	must(t, err)
	r.Firing, r.LastFiredAt = true, t0
	must(t, s.PutAlertRule(ctx, r))
	rules, err := s.ListAlertRules(ctx)
	must(t, err)
	if d := cmp.Diff([]string{"Alpha", "beta", "zeta"}, ids(rules, func(x *ferry.AlertRule) string { return x.Name })); d != "" {
		t.Errorf("ListAlertRules (-want +got):\n%s", d)
	}
	if !rules[0].Firing {
		t.Error("update lost")
	}
	must(t, s.DeleteAlertRule(ctx, "r1"))
	wantCode(t, s.DeleteAlertRule(ctx, "r1"), ferry.ENOTFOUND)
	_, err = s.GetAlertRule(ctx, "r1")
	wantCode(t, err, ferry.ENOTFOUND)

	for i, n := range []string{"file", "hook"} {
		must(t, s.PutExportDestination(ctx, &ferry.ExportDestination{ID: fmt.Sprint("x", i), Name: n, Type: n,
			Config: map[string]string{"url": "http://x"}, Sources: []string{"telemetry"}, Enabled: true, CreatedAt: t0}))
	}
	wantCode(t, s.PutExportDestination(ctx, &ferry.ExportDestination{ID: "x9", Name: "FILE"}), ferry.ECONFLICT)
	x, err := s.GetExportDestination(ctx, "x1")
	must(t, err)
	if x.Config["url"] != "http://x" || x.ETag == "" {
		t.Errorf("GetExportDestination = %+v", x)
	}
	dests, err := s.ListExportDestinations(ctx)
	must(t, err)
	if d := cmp.Diff([]string{"file", "hook"}, ids(dests, func(x *ferry.ExportDestination) string { return x.Name })); d != "" {
		t.Errorf("ListExportDestinations (-want +got):\n%s", d)
	}
	must(t, s.DeleteExportDestination(ctx, "x0"))
	wantCode(t, s.DeleteExportDestination(ctx, "x0"), ferry.ENOTFOUND)
})
