package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
)

var _ = register("Subscription", func(t *testing.T, s ferry.Store) {
	for _, id := range seq("s", 3) {
		must(t, s.PutSubscription(ctx, &ferry.Subscription{ID: id, DisplayName: id, State: "Enabled", CreatedAt: t0}))
	}
	must(t, s.PutSubscription(ctx, &ferry.Subscription{ID: "s000", DisplayName: "new", State: "Enabled", CreatedAt: t0}))
	got, err := s.GetSubscription(ctx, "s000")
	must(t, err)
	if got.DisplayName != "new" {
		t.Errorf("GetSubscription = %+v", got)
	}
	_, err = s.GetSubscription(ctx, "nope")
	wantCode(t, err, ferry.ENOTFOUND)
	all := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Subscription], error) { return s.ListSubscriptions(ctx, o) })
	if d := cmp.Diff(seq("s", 3), ids(all, func(x *ferry.Subscription) string { return x.ID })); d != "" {
		t.Errorf("ListSubscriptions (-want +got):\n%s", d)
	}

	for _, n := range []string{"rg-c", "RG-A", "rg-b"} {
		must(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: "s000", Name: n, Location: "global", Tags: map[string]string{"x": "y"}, CreatedAt: t0}))
	}
	must(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: "s001", Name: "rg-a"}))
	wantCode(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: "nope", Name: "rg"}), ferry.ENOTFOUND)
	g, err := s.GetResourceGroup(ctx, "s000", "rg-a")
	must(t, err)
	if g.Name != "RG-A" || g.Tags["x"] != "y" {
		t.Errorf("GetResourceGroup = %+v", g)
	}
	rgs := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.ResourceGroup], error) {
		return s.ListResourceGroups(ctx, "s000", o)
	})
	if d := cmp.Diff([]string{"RG-A", "rg-b", "rg-c"}, ids(rgs, func(x *ferry.ResourceGroup) string { return x.Name })); d != "" {
		t.Errorf("ListResourceGroups (-want +got):\n%s", d)
	}
	newHub(t, s, "h1", "hub", "s000", "rg-b")
	wantCode(t, s.DeleteResourceGroup(ctx, "s000", "RG-B"), ferry.ECONFLICT)
	must(t, s.DeleteResourceGroup(ctx, "s000", "rg-A"))
	wantCode(t, s.DeleteResourceGroup(ctx, "s000", "rg-a"), ferry.ENOTFOUND)
	_, err = s.GetResourceGroup(ctx, "s000", "rg-a")
	wantCode(t, err, ferry.ENOTFOUND)
})

func newCatalog(t *testing.T, s ferry.Tx, id, sub, rg, name string) *ferry.Catalog {
	t.Helper()
	c := &ferry.Catalog{TenantID: id, SubscriptionID: sub, ResourceGroup: rg, Name: name, Location: "global",
		LegacyName: "legacy " + id, LegacyAccess: ferry.LegacyEnabled, State: ferry.ProvisioningSucceeded,
		SystemData: ferry.SystemData{CreatedBy: "me", CreatedAt: t0}}
	must(t, s.CreateCatalog(ctx, c))
	if c.ETag == "" {
		t.Fatal("CreateCatalog set no ETag")
	}
	return c
}

var _ = register("Catalog", func(t *testing.T, s ferry.Store) {
	c := newCatalog(t, s, "t1", "s1", "RG", "Cat-A")
	newCatalog(t, s, "t2", "s1", "rg", "cat-b")
	newCatalog(t, s, "t3", "s2", "rg", "cat-a")
	newCatalog(t, s, "t4", "", "", "")
	newCatalog(t, s, "t5", "", "", "")
	got, err := s.GetCatalog(ctx, "t1")
	must(t, err)
	if d := cmp.Diff(c, got); d != "" {
		t.Errorf("GetCatalog (-want +got):\n%s", d)
	}
	got, err = s.GetCatalogByName(ctx, "s1", "rg", "CAT-A")
	must(t, err)
	if got.TenantID != "t1" {
		t.Errorf("GetCatalogByName = %s", got.TenantID)
	}
	_, err = s.GetCatalogByName(ctx, "s2", "rg", "cat-b")
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.CreateCatalog(ctx, &ferry.Catalog{TenantID: "t1"}), ferry.ECONFLICT)
	wantCode(t, s.CreateCatalog(ctx, &ferry.Catalog{TenantID: "t9", SubscriptionID: "s1", ResourceGroup: "rg", Name: "cat-a"}), ferry.ECONFLICT)
	for name, cs := range map[string]struct {
		f    ferry.CatalogFilter
		want []string
	}{
		"All":     {ferry.CatalogFilter{}, []string{"t1", "t2", "t3", "t4", "t5"}},
		"Sub":     {ferry.CatalogFilter{SubscriptionID: "s1"}, []string{"t1", "t2"}},
		"RG":      {ferry.CatalogFilter{SubscriptionID: "s2", ResourceGroup: "RG"}, []string{"t3"}},
		"Tenants": {ferry.CatalogFilter{TenantIDs: []string{"t2", "t5", "t9"}}, []string{"t2", "t5"}},
		"None":    {ferry.CatalogFilter{TenantIDs: []string{}}, nil},
		"Legacy":  {ferry.CatalogFilter{LegacyOnly: true}, []string{"t4", "t5"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Catalog], error) {
			cs.f.ListOptions = o
			return s.ListCatalogs(ctx, cs.f)
		})
		if d := cmp.Diff(cs.want, ids(got, func(x *ferry.Catalog) string { return x.TenantID })); d != "" {
			t.Errorf("ListCatalogs %s (-want +got):\n%s", name, d)
		}
	}
	// Integrate a legacy tenant.
	c4, err := s.GetCatalog(ctx, "t4")
	must(t, err)
	old := c4.ETag
	c4.SubscriptionID, c4.ResourceGroup, c4.Name, c4.IntegratedAt = "s1", "rg", "cat-b", t0
	wantCode(t, s.UpdateCatalog(ctx, c4, old), ferry.ECONFLICT)
	c4.Name = "cat-4"
	must(t, s.UpdateCatalog(ctx, c4, old))
	if c4.ETag == old {
		t.Error("UpdateCatalog kept the ETag")
	}
	wantCode(t, s.UpdateCatalog(ctx, c4, old), ferry.EPRECONDITION)
	wantCode(t, s.UpdateCatalog(ctx, &ferry.Catalog{TenantID: "nope"}, ""), ferry.ENOTFOUND)
	got, err = s.GetCatalogByName(ctx, "s1", "rg", "cat-4")
	must(t, err)
	if got.TenantID != "t4" {
		t.Errorf("integrated catalog = %s", got.TenantID)
	}
})

// newTree makes a catalog with a product, a group and a device in it.
func newTree(t *testing.T, s ferry.Tx, cat string) {
	t.Helper()
	newCatalog(t, s, cat, "", "", "")
	must(t, s.CreateProduct(ctx, &ferry.Product{ID: cat + "-p", CatalogID: cat, Name: "P"}))
	must(t, s.CreateDeviceGroup(ctx, &ferry.DeviceGroup{ID: cat + "-g", CatalogID: cat, ProductID: cat + "-p", Name: "G"}))
	must(t, s.CreateDevice(ctx, &ferry.Device{ID: cat + "-d", CatalogID: cat, ProductID: cat + "-p", DeviceGroupID: cat + "-g"}))
}

var _ = register("Product", func(t *testing.T, s ferry.Store) {
	newCatalog(t, s, "t1", "", "", "")
	newCatalog(t, s, "t2", "", "", "")
	for i, id := range seq("p", 5) {
		p := &ferry.Product{ID: id, CatalogID: "t1", Name: fmt.Sprint("Prod ", i), Description: "d", SystemData: ferry.SystemData{CreatedAt: t0}}
		must(t, s.CreateProduct(ctx, p))
		if p.ETag == "" {
			t.Fatal("no ETag")
		}
	}
	must(t, s.CreateProduct(ctx, &ferry.Product{ID: "q", CatalogID: "t2", Name: "prod 0"}))
	wantCode(t, s.CreateProduct(ctx, &ferry.Product{ID: "x", CatalogID: "t1", Name: "PROD 0"}), ferry.ECONFLICT)
	wantCode(t, s.CreateProduct(ctx, &ferry.Product{ID: "p000", CatalogID: "t1", Name: "other"}), ferry.ECONFLICT)
	wantCode(t, s.CreateProduct(ctx, &ferry.Product{ID: "x", CatalogID: "nope", Name: "x"}), ferry.ENOTFOUND)
	for name, c := range map[string]struct {
		f    ferry.ProductFilter
		want []string
	}{
		"All":  {ferry.ProductFilter{CatalogID: "t1"}, seq("p", 5)},
		"Name": {ferry.ProductFilter{CatalogID: "t1", Name: "prod 3"}, []string{"p003"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Product], error) {
			c.f.ListOptions = o
			return s.ListProducts(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.Product) string { return x.ID })); d != "" {
			t.Errorf("ListProducts %s (-want +got):\n%s", name, d)
		}
	}
	p, err := s.GetProduct(ctx, "p001")
	must(t, err)
	old := p.ETag
	p.Description = "new"
	must(t, s.UpdateProduct(ctx, p, old))
	wantCode(t, s.UpdateProduct(ctx, p, old), ferry.EPRECONDITION)
	p.Name = "prod 2"
	wantCode(t, s.UpdateProduct(ctx, p, ""), ferry.ECONFLICT)
	wantCode(t, s.UpdateProduct(ctx, &ferry.Product{ID: "nope", CatalogID: "t1", Name: "n"}, ""), ferry.ENOTFOUND)

	must(t, s.CreateDeviceGroup(ctx, &ferry.DeviceGroup{ID: "g1", CatalogID: "t1", ProductID: "p002", Name: "G"}))
	wantCode(t, s.DeleteProduct(ctx, "p002"), ferry.ECONFLICT)
	must(t, s.DeleteDeviceGroup(ctx, "g1"))
	must(t, s.DeleteProduct(ctx, "p002"))
	wantCode(t, s.DeleteProduct(ctx, "p002"), ferry.ENOTFOUND)
	_, err = s.GetProduct(ctx, "p002")
	wantCode(t, err, ferry.ENOTFOUND)
})

var _ = register("DeviceGroup", func(t *testing.T, s ferry.Store) {
	newCatalog(t, s, "t1", "", "", "")
	must(t, s.CreateProduct(ctx, &ferry.Product{ID: "p1", CatalogID: "t1", Name: "P1"}))
	must(t, s.CreateProduct(ctx, &ferry.Product{ID: "p2", CatalogID: "t1", Name: "P2"}))
	for i, dg := range ferry.DefaultDeviceGroups {
		dg.ID, dg.CatalogID, dg.ProductID = fmt.Sprintf("g%d", i), "t1", "p1"
		must(t, s.CreateDeviceGroup(ctx, &dg))
	}
	must(t, s.CreateDeviceGroup(ctx, &ferry.DeviceGroup{ID: "h0", CatalogID: "t1", ProductID: "p2", Name: "Development"}))
	wantCode(t, s.CreateDeviceGroup(ctx, &ferry.DeviceGroup{ID: "x", CatalogID: "t1", ProductID: "p1", Name: "development"}), ferry.ECONFLICT)
	wantCode(t, s.CreateDeviceGroup(ctx, &ferry.DeviceGroup{ID: "x", CatalogID: "t1", ProductID: "nope", Name: "x"}), ferry.ENOTFOUND)
	got, err := s.GetDeviceGroup(ctx, "g1")
	must(t, err)
	want := ferry.DefaultDeviceGroups[1]
	want.ID, want.CatalogID, want.ProductID, want.ETag = "g1", "t1", "p1", got.ETag
	if d := cmp.Diff(&want, got); d != "" {
		t.Errorf("GetDeviceGroup (-want +got):\n%s", d)
	}
	for name, c := range map[string]struct {
		f    ferry.DeviceGroupFilter
		want []string
	}{
		"Catalog": {ferry.DeviceGroupFilter{CatalogID: "t1"}, []string{"g0", "g1", "g2", "g3", "g4", "h0"}},
		"Product": {ferry.DeviceGroupFilter{ProductID: "p1"}, []string{"g0", "g1", "g2", "g3", "g4"}},
		"Name":    {ferry.DeviceGroupFilter{CatalogID: "t1", Name: "DEVELOPMENT"}, []string{"g0", "h0"}},
		"Both":    {ferry.DeviceGroupFilter{ProductID: "p2", Name: "development"}, []string{"h0"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceGroup], error) {
			c.f.ListOptions = o
			return s.ListDeviceGroups(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.DeviceGroup) string { return x.ID })); d != "" {
			t.Errorf("ListDeviceGroups %s (-want +got):\n%s", name, d)
		}
	}
	old := got.ETag
	got.UpdatePolicy = ferry.NoUpdates
	must(t, s.UpdateDeviceGroup(ctx, got, old))
	wantCode(t, s.UpdateDeviceGroup(ctx, got, old), ferry.EPRECONDITION)
	got.Name = "production"
	wantCode(t, s.UpdateDeviceGroup(ctx, got, ""), ferry.ECONFLICT)
	wantCode(t, s.UpdateDeviceGroup(ctx, &ferry.DeviceGroup{ID: "nope", CatalogID: "t1", ProductID: "p1", Name: "n"}, ""), ferry.ENOTFOUND)

	must(t, s.CreateDevice(ctx, &ferry.Device{ID: "d1", CatalogID: "t1", ProductID: "p1", DeviceGroupID: "g2"}))
	must(t, s.CreateImage(ctx, &ferry.Image{ID: "i1", CatalogID: "t1"}, []byte("x")))
	must(t, s.CreateDeployment(ctx, &ferry.Deployment{ID: "dep1", CatalogID: "t1", DeviceGroupID: "g3", ImageIDs: []string{"i1"}}))
	wantCode(t, s.DeleteDeviceGroup(ctx, "g2"), ferry.ECONFLICT)
	must(t, s.DeleteDeviceGroup(ctx, "g3"))
	_, err = s.GetDeployment(ctx, "dep1")
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.DeleteDeviceGroup(ctx, "g3"), ferry.ENOTFOUND)
})

var _ = register("Device", func(t *testing.T, s ferry.Store) {
	newTree(t, s, "t1")
	newCatalog(t, s, "t2", "", "", "")
	var all []string
	for i := range 6 {
		id := fmt.Sprintf("%0128x", i+1)
		d := &ferry.Device{ID: id, CatalogID: "t1", ChipSKU: "MT3620AN", ClaimedAt: t0}
		if i < 3 {
			d.ProductID, d.DeviceGroupID = "t1-p", "t1-g"
		}
		must(t, s.CreateDevice(ctx, d))
		if d.ID != strings.ToUpper(id) || d.ETag == "" {
			t.Fatalf("CreateDevice left %+v", d)
		}
		all = append(all, d.ID)
	}
	all = append(all, "T1-D")
	slices.Sort(all)
	wantCode(t, s.CreateDevice(ctx, &ferry.Device{ID: strings.ToLower(all[0]), CatalogID: "t2"}), ferry.ECONFLICT)
	d, err := s.GetDevice(ctx, strings.ToLower(all[0]))
	must(t, err)
	if d.ChipSKU != "MT3620AN" || !d.ClaimedAt.Equal(t0) {
		t.Errorf("GetDevice = %+v", d)
	}
	for name, c := range map[string]struct {
		f    ferry.DeviceFilter
		want []string
	}{
		"Catalog":    {ferry.DeviceFilter{CatalogID: "t1"}, all},
		"Product":    {ferry.DeviceFilter{ProductID: "t1-p"}, append(slices.Clone(all[:3]), "T1-D")},
		"Group":      {ferry.DeviceFilter{CatalogID: "t1", DeviceGroupID: "t1-g"}, append(slices.Clone(all[:3]), "T1-D")},
		"Unassigned": {ferry.DeviceFilter{CatalogID: "t1", Unassigned: true}, all[3:6]},
		"IDs":        {ferry.DeviceFilter{IDs: []string{strings.ToLower(all[1]), "t1-d", "nope"}}, []string{all[1], "T1-D"}},
		"Other":      {ferry.DeviceFilter{CatalogID: "t2"}, nil},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Device], error) {
			c.f.ListOptions = o
			return s.ListDevices(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.Device) string { return x.ID })); d != "" {
			t.Errorf("ListDevices %s (-want +got):\n%s", name, d)
		}
		n, err := s.CountDevices(ctx, c.f)
		must(t, err)
		if n != len(c.want) {
			t.Errorf("CountDevices %s = %d, want %d", name, n, len(c.want))
		}
	}
	old := d.ETag
	d.ProductID, d.DeviceGroupID = "", ""
	must(t, s.UpdateDevice(ctx, d, old))
	wantCode(t, s.UpdateDevice(ctx, d, old), ferry.EPRECONDITION)
	d.DeviceGroupID = "nope"
	wantCode(t, s.UpdateDevice(ctx, d, ""), ferry.ENOTFOUND)
	wantCode(t, s.UpdateDevice(ctx, &ferry.Device{ID: "nope", CatalogID: "t1"}, ""), ferry.ENOTFOUND)
	must(t, s.DeleteDevice(ctx, "t1-d"))
	wantCode(t, s.DeleteDevice(ctx, "T1-D"), ferry.ENOTFOUND)
})

var _ = register("ImageDeployment", func(t *testing.T, s ferry.Store) {
	newTree(t, s, "t1")
	newTree(t, s, "t2")
	img := &ferry.Image{ID: "i000", CatalogID: "t1", Name: "app", ComponentID: "c", Type: 10, Size: 3, SHA256: "ab",
		RegionalDataBoundary: ferry.BoundaryNone, SystemData: ferry.SystemData{CreatedAt: t0}}
	must(t, s.CreateImage(ctx, img, []byte{1, 2, 3}))
	for _, id := range seq("i", 4)[1:] {
		must(t, s.CreateImage(ctx, &ferry.Image{ID: id, CatalogID: "t1"}, nil))
	}
	must(t, s.CreateImage(ctx, &ferry.Image{ID: "j", CatalogID: "t2"}, []byte{9}))
	wantCode(t, s.CreateImage(ctx, &ferry.Image{ID: "i000", CatalogID: "t1"}, nil), ferry.ECONFLICT)
	wantCode(t, s.CreateImage(ctx, &ferry.Image{ID: "x", CatalogID: "nope"}, nil), ferry.ENOTFOUND)
	got, err := s.GetImage(ctx, "i000")
	must(t, err)
	if d := cmp.Diff(img, got); d != "" {
		t.Errorf("GetImage (-want +got):\n%s", d)
	}
	b, err := s.GetImageContent(ctx, "i000")
	must(t, err)
	if !slices.Equal(b, []byte{1, 2, 3}) {
		t.Errorf("GetImageContent = %v", b)
	}
	_, err = s.GetImageContent(ctx, "nope")
	wantCode(t, err, ferry.ENOTFOUND)
	imgs := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Image], error) {
		return s.ListImages(ctx, ferry.ImageFilter{CatalogID: "t1", ListOptions: o})
	})
	if d := cmp.Diff(seq("i", 4), ids(imgs, func(x *ferry.Image) string { return x.ID })); d != "" {
		t.Errorf("ListImages (-want +got):\n%s", d)
	}

	for i, id := range seq("dep", 4) {
		dep := &ferry.Deployment{ID: id, CatalogID: "t1", DeviceGroupID: "t1-g", ImageIDs: []string{"i000", "i001"},
			DeployedAt: t0.Add(time.Duration(i) * time.Minute)}
		must(t, s.CreateDeployment(ctx, dep))
		if dep.Name != id {
			t.Errorf("Name = %q, want the ID", dep.Name)
		}
	}
	must(t, s.CreateDeployment(ctx, &ferry.Deployment{ID: "e", Name: "Named", CatalogID: "t2", DeviceGroupID: "t2-g", ImageIDs: []string{"j"}, DeployedAt: t0}))
	wantCode(t, s.CreateDeployment(ctx, &ferry.Deployment{ID: "e2", Name: "named", CatalogID: "t2", DeviceGroupID: "t2-g"}), ferry.ECONFLICT)
	wantCode(t, s.CreateDeployment(ctx, &ferry.Deployment{ID: "e3", CatalogID: "t2", DeviceGroupID: "nope"}), ferry.ENOTFOUND)
	wantCode(t, s.CreateDeployment(ctx, &ferry.Deployment{ID: "e4", CatalogID: "t2", DeviceGroupID: "t2-g", ImageIDs: []string{"nope"}}), ferry.ENOTFOUND)
	_, err = s.GetDeployment(ctx, "e4")
	wantCode(t, err, ferry.ENOTFOUND)
	dep, err := s.GetDeploymentByName(ctx, "t1-g", ferry.DefaultName)
	must(t, err)
	if dep.ID != "dep003" {
		t.Errorf(".default = %s, want dep003", dep.ID)
	}
	dep, err = s.GetDeploymentByName(ctx, "t2-g", "NAMED")
	must(t, err)
	if dep.ID != "e" || !slices.Equal(dep.ImageIDs, []string{"j"}) {
		t.Errorf("by name = %+v", dep)
	}
	_, err = s.GetDeploymentByName(ctx, "nope", ferry.DefaultName)
	wantCode(t, err, ferry.ENOTFOUND)
	for name, c := range map[string]struct {
		f    ferry.DeploymentFilter
		want []string
	}{
		"Catalog": {ferry.DeploymentFilter{CatalogID: "t1"}, seq("dep", 4)},
		"Group":   {ferry.DeploymentFilter{DeviceGroupID: "t2-g"}, []string{"e"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Deployment], error) {
			c.f.ListOptions = o
			return s.ListDeployments(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.Deployment) string { return x.ID })); d != "" {
			t.Errorf("ListDeployments %s (-want +got):\n%s", name, d)
		}
	}
	wantCode(t, s.DeleteImage(ctx, "i000"), ferry.ECONFLICT)
	must(t, s.DeleteImage(ctx, "i002"))
	wantCode(t, s.DeleteImage(ctx, "i002"), ferry.ENOTFOUND)
	for _, id := range seq("dep", 4) {
		must(t, s.DeleteDeployment(ctx, id))
	}
	wantCode(t, s.DeleteDeployment(ctx, "dep000"), ferry.ENOTFOUND)
	must(t, s.DeleteImage(ctx, "i000"))
	_, err = s.GetImageContent(ctx, "i000")
	wantCode(t, err, ferry.ENOTFOUND)
})

var _ = register("Certificate", func(t *testing.T, s ferry.Store) {
	for i, serial := range []string{"0A", "0B", "0C"} {
		c := &ferry.Certificate{CatalogID: "t1", SerialNumber: serial, Thumbprint: "T" + serial, Subject: "CN=x", DER: []byte{1},
			PrivateKey: []byte{2}, NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), Status: ferry.CertificateActive, CreatedAt: t0.Add(time.Duration(i) * time.Hour)}
		if i == 2 {
			c.Status = ferry.CertificateInactive
		}
		must(t, s.CreateCertificate(ctx, c))
	}
	wantCode(t, s.CreateCertificate(ctx, &ferry.Certificate{CatalogID: "t1", SerialNumber: "0A"}), ferry.ECONFLICT)
	c, err := s.GetCertificate(ctx, "t1", ferry.DefaultName)
	must(t, err)
	if c.SerialNumber != "0B" {
		t.Errorf(".default = %s, want the newest active 0B", c.SerialNumber)
	}
	_, err = s.GetCertificate(ctx, "t2", ferry.DefaultName)
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetCertificate(ctx, "t1", "FF")
	wantCode(t, err, ferry.ENOTFOUND)
	all, err := s.ListCertificates(ctx, "t1")
	must(t, err)
	if d := cmp.Diff([]string{"0C", "0B", "0A"}, ids(all, func(x *ferry.Certificate) string { return x.SerialNumber })); d != "" {
		t.Errorf("ListCertificates (-want +got):\n%s", d)
	}
	must(t, s.UpdateCertificateStatus(ctx, "t1", "0B", ferry.CertificateRevoked))
	wantCode(t, s.UpdateCertificateStatus(ctx, "t1", "FF", ferry.CertificateRevoked), ferry.ENOTFOUND)
	c, err = s.GetCertificate(ctx, "t1", ferry.DefaultName)
	must(t, err)
	if c.SerialNumber != "0A" {
		t.Errorf(".default after revoking 0B = %s", c.SerialNumber)
	}
	c, err = s.GetCertificate(ctx, "t1", "0B")
	must(t, err)
	if c.Status != ferry.CertificateRevoked || !slices.Equal(c.PrivateKey, []byte{2}) {
		t.Errorf("0B = %+v", c)
	}
})

var _ = register("Operation", func(t *testing.T, s ferry.Store) {
	op := &ferry.Operation{ID: "o1", CatalogID: "t1", Type: ferry.OpImageUpload, State: ferry.OpInProgress, CreatedAt: t0}
	must(t, s.CreateOperation(ctx, op))
	wantCode(t, s.CreateOperation(ctx, &ferry.Operation{ID: "o1"}), ferry.ECONFLICT)
	op.State, op.CompletedAt, op.ResourceID = ferry.OpComplete, t0, "/x"
	must(t, s.UpdateOperation(ctx, op))
	got, err := s.GetOperation(ctx, "o1")
	must(t, err)
	if d := cmp.Diff(op, got); d != "" {
		t.Errorf("GetOperation (-want +got):\n%s", d)
	}
	wantCode(t, s.UpdateOperation(ctx, &ferry.Operation{ID: "nope"}), ferry.ENOTFOUND)
	_, err = s.GetOperation(ctx, "nope")
	wantCode(t, err, ferry.ENOTFOUND)
})

var _ = register("DeviceInsight", func(t *testing.T, s ferry.Store) {
	var in []*ferry.DeviceInsight
	for i, id := range seq("in", 6) {
		dev := "DEV1"
		if i%2 == 1 {
			dev = "DEV2"
		}
		in = append(in, &ferry.DeviceInsight{ID: id, CatalogID: "t1", DeviceID: dev, Description: "crash",
			Start: t0.Add(time.Duration(i) * time.Hour), End: t0.Add(time.Duration(i) * time.Hour), EventCount: i})
	}
	in = append(in, &ferry.DeviceInsight{CatalogID: "t2", DeviceID: "DEV1", Start: t0})
	must(t, s.AddDeviceInsights(ctx, in))
	if in[6].ID == "" {
		t.Error("AddDeviceInsights set no ID")
	}
	for name, c := range map[string]struct {
		f    ferry.DeviceInsightFilter
		want []string
	}{
		"Catalog": {ferry.DeviceInsightFilter{CatalogID: "t1"}, seq("in", 6)},
		"Device":  {ferry.DeviceInsightFilter{CatalogID: "t1", DeviceID: "dev2"}, []string{"in001", "in003", "in005"}},
		"Since":   {ferry.DeviceInsightFilter{CatalogID: "t1", Since: t0.Add(4 * time.Hour)}, []string{"in004", "in005"}},
	} {
		got := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceInsight], error) {
			c.f.ListOptions = o
			return s.ListDeviceInsights(ctx, c.f)
		})
		if d := cmp.Diff(c.want, ids(got, func(x *ferry.DeviceInsight) string { return x.ID })); d != "" {
			t.Errorf("ListDeviceInsights %s (-want +got):\n%s", name, d)
		}
	}
})

var _ = register("DeleteCatalog", func(t *testing.T, s ferry.Store) {
	newTree(t, s, "t1")
	newTree(t, s, "t2")
	must(t, s.CreateImage(ctx, &ferry.Image{ID: "i1", CatalogID: "t1"}, []byte("x")))
	must(t, s.CreateDeployment(ctx, &ferry.Deployment{ID: "dep1", CatalogID: "t1", DeviceGroupID: "t1-g", ImageIDs: []string{"i1"}}))
	must(t, s.CreateCertificate(ctx, &ferry.Certificate{CatalogID: "t1", SerialNumber: "01", Status: ferry.CertificateActive}))
	must(t, s.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: "t1", PrincipalID: "u", Role: ferry.LegacyReader}))
	must(t, s.DeleteCatalog(ctx, "t1"))
	wantCode(t, s.DeleteCatalog(ctx, "t1"), ferry.ENOTFOUND)
	for name, err := range map[string]error{
		"product": func() error { _, err := s.GetProduct(ctx, "t1-p"); return err }(),
		"group":   func() error { _, err := s.GetDeviceGroup(ctx, "t1-g"); return err }(),
		"device":  func() error { _, err := s.GetDevice(ctx, "t1-d"); return err }(),
		"image":   func() error { _, err := s.GetImage(ctx, "i1"); return err }(),
		"deploy":  func() error { _, err := s.GetDeployment(ctx, "dep1"); return err }(),
		"cert":    func() error { _, err := s.GetCertificate(ctx, "t1", "01"); return err }(),
	} {
		if !ferry.IsCode(err, ferry.ENOTFOUND) {
			t.Errorf("%s after DeleteCatalog: %v, want ENOTFOUND", name, err)
		}
	}
	roles, err := s.ListLegacyRoles(ctx, "t1", "")
	must(t, err)
	if len(roles) != 0 {
		t.Errorf("legacy roles survived: %d", len(roles))
	}
	_, err = s.GetDevice(ctx, "t2-d")
	must(t, err)
})
