package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
)

func newService(t *testing.T, s ferry.Tx, id, name, scope, sub, rg string) *ferry.ProvisioningService {
	t.Helper()
	ps := &ferry.ProvisioningService{ID: id, Name: name, IDScope: scope, HostName: name + ".example.com",
		AllocationPolicy: ferry.AllocationHashed, LinkedHubs: []ferry.LinkedHub{{HubID: "h1", HostName: "h", AllocationWeight: 1}},
		Policies: ferry.DefaultProvisioningPolicies(), SubscriptionID: sub, ResourceGroup: rg, CreatedAt: t0}
	must(t, s.CreateProvisioningService(ctx, ps))
	return ps
}

var _ = register("ProvisioningService", func(t *testing.T, s ferry.Store) {
	ps := newService(t, s, "p1", "Dps-A", "0ne0000AAA", "s1", "RG")
	newService(t, s, "p2", "dps-b", "0ne0000BBB", "s1", "rg2")
	newService(t, s, "p3", "dps-c", "0ne0000CCC", "s2", "rg")
	got, err := s.GetProvisioningService(ctx, "p1")
	must(t, err)
	if d := cmp.Diff(ps, got); d != "" {
		t.Errorf("GetProvisioningService (-want +got):\n%s", d)
	}
	got, err = s.GetProvisioningServiceByName(ctx, "DPS-a")
	must(t, err)
	if got.ID != "p1" {
		t.Errorf("by name: %s", got.ID)
	}
	got, err = s.GetProvisioningServiceByScope(ctx, "0NE0000aaa")
	must(t, err)
	if got.ID != "p1" {
		t.Errorf("by scope: %s", got.ID)
	}
	_, err = s.GetProvisioningServiceByScope(ctx, "nope")
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.CreateProvisioningService(ctx, &ferry.ProvisioningService{ID: "p9", Name: "dps-a", IDScope: "x"}), ferry.ECONFLICT)
	wantCode(t, s.CreateProvisioningService(ctx, &ferry.ProvisioningService{ID: "p9", Name: "x", IDScope: "0ne0000bbb"}), ferry.ECONFLICT)
	for name, c := range map[string]struct {
		f    ferry.ProvisioningServiceFilter
		want []string
	}{
		"All": {ferry.ProvisioningServiceFilter{}, []string{"p1", "p2", "p3"}},
		"Sub": {ferry.ProvisioningServiceFilter{SubscriptionID: "s1"}, []string{"p1", "p2"}},
		"RG":  {ferry.ProvisioningServiceFilter{SubscriptionID: "s1", ResourceGroup: "rg"}, []string{"p1"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.ProvisioningService], error) {
			c.f.ListOptions = o
			return s.ListProvisioningServices(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.ProvisioningService) string { return x.ID })); d != "" {
			t.Errorf("ListProvisioningServices %s (-want +got):\n%s", name, d)
		}
	}
	old := ps.ETag
	ps.AllocationPolicy = ferry.AllocationStatic
	must(t, s.UpdateProvisioningService(ctx, ps, old))
	wantCode(t, s.UpdateProvisioningService(ctx, ps, old), ferry.EPRECONDITION)
	ps.IDScope = "0ne0000CCC"
	wantCode(t, s.UpdateProvisioningService(ctx, ps, ""), ferry.ECONFLICT)
	wantCode(t, s.UpdateProvisioningService(ctx, &ferry.ProvisioningService{ID: "nope", Name: "n", IDScope: "n"}, ""), ferry.ENOTFOUND)

	must(t, s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: "p1", ID: "g1"}, ""))
	must(t, s.PutRegistration(ctx, &ferry.RegistrationRecord{ServiceID: "p1", RegistrationID: "r1"}))
	must(t, s.DeleteProvisioningService(ctx, "p1"))
	wantCode(t, s.DeleteProvisioningService(ctx, "p1"), ferry.ENOTFOUND)
	_, err = s.GetEnrollmentGroup(ctx, "p1", "g1")
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetRegistration(ctx, "p1", "r1")
	wantCode(t, err, ferry.ENOTFOUND)
})

var _ = register("Enrollment", func(t *testing.T, s ferry.Store) {
	newService(t, s, "p1", "dps-a", "0ne0000AAA", "", "")
	newService(t, s, "p2", "dps-b", "0ne0000BBB", "", "")

	t.Run("Group", func(t *testing.T) {
		g := &ferry.EnrollmentGroup{ServiceID: "p1", ID: "Group-A", Status: ferry.EnrollmentEnabled,
			Attestation:       ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: "k1", SecondaryKey: "k2"},
			ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
			InitialTwin:       ferry.InitialTwin{Tags: map[string]any{"a": "b"}}, CreatedAt: t0, UpdatedAt: t0}
		wantCode(t, s.PutEnrollmentGroup(ctx, g, "some-etag"), ferry.EPRECONDITION) // must be empty to create
		must(t, s.PutEnrollmentGroup(ctx, g, ""))
		if g.ETag == "" {
			t.Fatal("no ETag")
		}
		got, err := s.GetEnrollmentGroup(ctx, "p1", "group-a")
		must(t, err)
		if d := cmp.Diff(g, got); d != "" {
			t.Errorf("GetEnrollmentGroup (-want +got):\n%s", d)
		}
		old := g.ETag
		g.Status = ferry.EnrollmentDisabled
		must(t, s.PutEnrollmentGroup(ctx, g, old))
		wantCode(t, s.PutEnrollmentGroup(ctx, g, old), ferry.EPRECONDITION)
		wantCode(t, s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: "nope", ID: "x"}, ""), ferry.ENOTFOUND)
		for _, id := range []string{"g2", "g3", "g4"} {
			must(t, s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: "p1", ID: id}, ""))
		}
		must(t, s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: "p2", ID: "g2"}, ""))
		all := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.EnrollmentGroup], error) {
			return s.ListEnrollmentGroups(ctx, ferry.EnrollmentFilter{ServiceID: "p1", ListOptions: o})
		})
		if d := cmp.Diff([]string{"g2", "g3", "g4", "Group-A"}, ids(all, func(x *ferry.EnrollmentGroup) string { return x.ID })); d != "" {
			t.Errorf("ListEnrollmentGroups (-want +got):\n%s", d)
		}
		wantCode(t, s.DeleteEnrollmentGroup(ctx, "p1", "GROUP-A", old), ferry.EPRECONDITION)
		must(t, s.DeleteEnrollmentGroup(ctx, "p1", "GROUP-A", g.ETag))
		wantCode(t, s.DeleteEnrollmentGroup(ctx, "p1", "group-a", ""), ferry.ENOTFOUND)
	})

	t.Run("Individual", func(t *testing.T) {
		e := &ferry.IndividualEnrollment{ServiceID: "p1", RegistrationID: "Dev-1", DeviceID: "dev-1", Status: ferry.EnrollmentEnabled,
			Attestation: ferry.Attestation{Type: ferry.AttestX509, PrimaryThumbprint: "AB", PrimaryCertificate: []byte{1, 2}}, CreatedAt: t0}
		must(t, s.PutIndividualEnrollment(ctx, e, ""))
		got, err := s.GetIndividualEnrollment(ctx, "p1", "DEV-1")
		must(t, err)
		if d := cmp.Diff(e, got); d != "" {
			t.Errorf("GetIndividualEnrollment (-want +got):\n%s", d)
		}
		old := e.ETag
		must(t, s.PutIndividualEnrollment(ctx, e, old))
		wantCode(t, s.PutIndividualEnrollment(ctx, e, old), ferry.EPRECONDITION)
		wantCode(t, s.PutIndividualEnrollment(ctx, &ferry.IndividualEnrollment{ServiceID: "nope", RegistrationID: "x"}, ""), ferry.ENOTFOUND)
		for _, id := range []string{"dev-2", "dev-3"} {
			must(t, s.PutIndividualEnrollment(ctx, &ferry.IndividualEnrollment{ServiceID: "p1", RegistrationID: id}, ""))
		}
		all := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.IndividualEnrollment], error) {
			return s.ListIndividualEnrollments(ctx, ferry.EnrollmentFilter{ServiceID: "p1", ListOptions: o})
		})
		if d := cmp.Diff([]string{"Dev-1", "dev-2", "dev-3"}, ids(all, func(x *ferry.IndividualEnrollment) string { return x.RegistrationID })); d != "" {
			t.Errorf("ListIndividualEnrollments (-want +got):\n%s", d)
		}
		wantCode(t, s.DeleteIndividualEnrollment(ctx, "p1", "dev-1", old), ferry.EPRECONDITION)
		must(t, s.DeleteIndividualEnrollment(ctx, "p1", "dev-1", ""))
		wantCode(t, s.DeleteIndividualEnrollment(ctx, "p1", "dev-1", ""), ferry.ENOTFOUND)
		_, err = s.GetIndividualEnrollment(ctx, "p1", "dev-1")
		wantCode(t, err, ferry.ENOTFOUND)
	})

	t.Run("Registration", func(t *testing.T) {
		for i, id := range seq("reg", 5) {
			r := &ferry.RegistrationRecord{ServiceID: "p1", RegistrationID: id, DeviceID: id, AssignedHub: "h",
				Status: ferry.RegistrationAssigned, Substatus: ferry.SubstatusInitialAssignment, CreatedAt: t0}
			if i%2 == 0 {
				r.EnrollmentGroupID = "G1"
			}
			must(t, s.PutRegistration(ctx, r))
			if r.ETag == "" {
				t.Fatal("no ETag")
			}
		}
		r, err := s.GetRegistration(ctx, "p1", "REG001")
		must(t, err)
		old := r.ETag
		r.Status = ferry.RegistrationFailed
		must(t, s.PutRegistration(ctx, r))
		if r.ETag == old {
			t.Error("PutRegistration kept the ETag")
		}
		for name, c := range map[string]struct {
			f    ferry.EnrollmentFilter
			want []string
		}{
			"All":   {ferry.EnrollmentFilter{ServiceID: "p1"}, seq("reg", 5)},
			"Group": {ferry.EnrollmentFilter{ServiceID: "p1", EnrollmentGroupID: "g1"}, []string{"reg000", "reg002", "reg004"}},
			"Other": {ferry.EnrollmentFilter{ServiceID: "p2"}, nil},
		} {
			got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.RegistrationRecord], error) {
				c.f.ListOptions = o
				return s.ListRegistrations(ctx, c.f)
			})
			if d := cmp.Diff(c.want, ids(got, func(x *ferry.RegistrationRecord) string { return x.RegistrationID })); d != "" {
				t.Errorf("ListRegistrations %s (-want +got):\n%s", name, d)
			}
		}
		wantCode(t, s.DeleteRegistration(ctx, "p1", "reg001", old), ferry.EPRECONDITION)
		must(t, s.DeleteRegistration(ctx, "p1", "reg001", r.ETag))
		_, err = s.GetRegistration(ctx, "p1", "reg001")
		wantCode(t, err, ferry.ENOTFOUND)
		wantCode(t, s.DeleteRegistration(ctx, "p1", "reg001", ""), ferry.ENOTFOUND)
	})

	t.Run("CA", func(t *testing.T) {
		for _, n := range []string{"ca-b", "ca-a"} {
			must(t, s.PutProvisioningCA(ctx, &ferry.ProvisioningCA{ServiceID: "p1", Name: n, DER: []byte{1}, Subject: "CN=" + n, Thumbprint: "AA", NotBefore: t0, NotAfter: t0, CreatedAt: t0}, ""))
		}
		c, err := s.GetProvisioningCA(ctx, "p1", "ca-a")
		must(t, err)
		old := c.ETag
		c.Verified = true
		must(t, s.PutProvisioningCA(ctx, c, old))
		wantCode(t, s.PutProvisioningCA(ctx, c, old), ferry.EPRECONDITION)
		cas, err := s.ListProvisioningCAs(ctx, "p1")
		must(t, err)
		if d := cmp.Diff([]string{"ca-a", "ca-b"}, ids(cas, func(x *ferry.ProvisioningCA) string { return x.Name })); d != "" {
			t.Errorf("ListProvisioningCAs (-want +got):\n%s", d)
		}
		if !cas[0].Verified {
			t.Error("update lost")
		}
		must(t, s.DeleteProvisioningCA(ctx, "p1", "ca-a"))
		wantCode(t, s.DeleteProvisioningCA(ctx, "p1", "ca-a"), ferry.ENOTFOUND)
		_, err = s.GetProvisioningCA(ctx, "p1", "ca-a")
		wantCode(t, err, ferry.ENOTFOUND)
	})
})
