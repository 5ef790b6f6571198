package sphere_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/sphere"
	"github.com/ferry-iot/ferry/store/storetest"
)

func deviceID(c byte) string { return strings.Repeat(string(c), 128) }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ferry.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newCatalog(ctx context.Context, t *testing.T, svc *sphere.Service, name string) *ferry.Catalog {
	t.Helper()
	c := &ferry.Catalog{SubscriptionID: "00000000-0000-0000-0000-000000000001", ResourceGroup: "rg", Name: name}
	must(t, svc.CreateCatalog(ctx, c))
	return c
}

func TestService(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := ferry.NewContextWithCaller(context.Background(), &ferry.Caller{Principal: &ferry.Principal{ID: ferry.NewUUID(), Name: "op@example.com", Type: ferry.PrincipalUser}})
		svc := sphere.New(sphere.Config{Store: s})
		cat := newCatalog(ctx, t, svc, "cat1")
		other := newCatalog(ctx, t, svc, "cat2")

		t.Run("CatalogHasCA", func(t *testing.T) {
			if !ferry.IsUUID(cat.TenantID) || cat.SystemData.CreatedBy != "op@example.com" || cat.Location != "global" {
				t.Errorf("catalog = %+v", cat)
			}
			certs, err := svc.ListCertificates(ctx, cat.TenantID)
			must(t, err)
			if len(certs) != 1 || certs[0].Status != ferry.CertificateActive || certs[0].PrivateKey != nil {
				t.Fatalf("certificates = %+v", certs)
			}
			def, err := svc.GetCertificate(ctx, cat.TenantID, ferry.DefaultName)
			must(t, err)
			if def.SerialNumber != certs[0].SerialNumber {
				t.Errorf(".default = %s, want %s", def.SerialNumber, certs[0].SerialNumber)
			}
			chain, err := svc.CertificateChain(ctx, cat.TenantID, def.SerialNumber)
			must(t, err)
			ca, err := x509.ParseCertificate(chain[0])
			must(t, err)
			der, err := svc.ProofOfPossession(ctx, cat.TenantID, ferry.DefaultName, "ABC123")
			must(t, err)
			pop, err := x509.ParseCertificate(der)
			must(t, err)
			must(t, pki.CheckVerificationCert(ca, pop, "ABC123"))
			_, err = svc.ProofOfPossession(ctx, cat.TenantID, ferry.DefaultName, "bad nonce!")
			wantCode(t, err, ferry.EINVALID)
		})

		p := &ferry.Product{CatalogID: cat.TenantID, Name: "Dishwasher"}
		t.Run("ProductDefaults", func(t *testing.T) {
			op, err := svc.CreateProduct(ctx, p, false)
			must(t, err)
			if op.Type != ferry.OpCreateProduct || op.State != ferry.OpComplete {
				t.Errorf("op = %+v", op)
			}
			gs, err := svc.GenerateDefaultDeviceGroups(ctx, p.ID)
			must(t, err)
			again, err := svc.GenerateDefaultDeviceGroups(ctx, p.ID)
			must(t, err)
			if len(gs) != 5 || len(again) != 5 || gs[3].Name != "Production" || gs[3].ID != again[3].ID {
				t.Fatalf("default groups = %d then %d", len(gs), len(again))
			}
			if gs[0].UpdatePolicy != ferry.No3rdPartyAppUpdates || gs[2].OSFeedType != ferry.OSFeedRetailEval {
				t.Errorf("defaults = %+v", gs[:3])
			}
			_, err = svc.DeleteProduct(ctx, p.ID)
			wantCode(t, err, ferry.ECONFLICT)
			_, err = svc.CreateProduct(ctx, &ferry.Product{CatalogID: cat.TenantID, Name: "dishwasher"}, false)
			wantCode(t, err, ferry.ECONFLICT)
			_, err = svc.CreateProduct(ctx, &ferry.Product{CatalogID: cat.TenantID, Name: ".default"}, false)
			wantCode(t, err, ferry.EINVALID)
			withDefaults := &ferry.Product{CatalogID: cat.TenantID, Name: "Oven"}
			_, err = svc.CreateProduct(ctx, withDefaults, true)
			must(t, err)
			page, err := svc.ListDeviceGroups(ctx, ferry.DeviceGroupFilter{ProductID: withDefaults.ID})
			must(t, err)
			if len(page.Items) != 5 {
				t.Errorf("groups of Oven = %d, want 5", len(page.Items))
			}
		})

		t.Run("Claim", func(t *testing.T) {
			dev, err := svc.GetDeviceGroupByName(ctx, p.ID, "development")
			must(t, err)
			prod, err := svc.GetDeviceGroupByName(ctx, p.ID, "Production")
			must(t, err)
			op, err := svc.ClaimDevices(ctx, sphere.Claim{CatalogID: cat.TenantID, DeviceGroupID: dev.ID}, []string{deviceID('a'), deviceID('B'), deviceID('A')})
			must(t, err)
			if op.Type != ferry.OpBulkDeviceClaim {
				t.Errorf("op = %+v", op)
			}
			n, err := svc.CountDevices(ctx, ferry.DeviceFilter{DeviceGroupID: dev.ID})
			must(t, err)
			if n != 2 {
				t.Errorf("devices in Development = %d, want 2", n)
			}
			// Claiming is irreversible: another catalog cannot take it.
			_, err = svc.ClaimDevices(ctx, sphere.Claim{CatalogID: other.TenantID}, []string{deviceID('c'), deviceID('a')})
			wantCode(t, err, ferry.ECONFLICT)
			if _, err := svc.GetDevice(ctx, deviceID('c')); !ferry.IsCode(err, ferry.ENOTFOUND) {
				t.Errorf("half-written claim: %v", err)
			}
			_, _, err = svc.ClaimDevice(ctx, sphere.Claim{CatalogID: other.TenantID}, deviceID('b'))
			wantCode(t, err, ferry.ECONFLICT)
			// Bad input.
			_, err = svc.ClaimDevices(ctx, sphere.Claim{CatalogID: cat.TenantID}, nil)
			wantCode(t, err, ferry.EINVALID)
			_, err = svc.ClaimDevices(ctx, sphere.Claim{CatalogID: cat.TenantID}, []string{"short"})
			wantCode(t, err, ferry.EINVALID)
			many := make([]string, sphere.MaxClaimDevices+1)
			for i := range many {
				many[i] = deviceID('d')
			}
			_, err = svc.ClaimDevices(ctx, sphere.Claim{CatalogID: cat.TenantID}, many)
			wantCode(t, err, ferry.EINVALID)
			// A group of another catalog is not a target.
			_, err = svc.ClaimDevices(ctx, sphere.Claim{CatalogID: other.TenantID, DeviceGroupID: dev.ID}, []string{deviceID('e')})
			wantCode(t, err, ferry.ENOTFOUND)
			// Move, then to the catalog level.
			d, err := svc.MoveDevice(ctx, deviceID('a'), prod.ID, "")
			must(t, err)
			if d.DeviceGroupID != prod.ID || d.ProductID != p.ID {
				t.Errorf("moved device = %+v", d)
			}
			d, err = svc.MoveDevice(ctx, deviceID('a'), "", "")
			must(t, err)
			if d.DeviceGroupID != "" || d.ProductID != "" {
				t.Errorf("unassigned device = %+v", d)
			}
			_, err = svc.DeleteDeviceGroup(ctx, dev.ID)
			wantCode(t, err, ferry.ECONFLICT)
			wantCode(t, svc.DeleteDevice(ctx, deviceID('a')), ferry.ECONFLICT)
		})

		t.Run("ImageAndDeployment", func(t *testing.T) {
			content := []byte("image bytes\n#ferry-image name=HelloApp componentId=45f4d635-0000-4000-8000-000000000001 type=Applications\n")
			img, op, err := svc.UploadImage(ctx, sphere.ImageUpload{CatalogID: cat.TenantID, Content: content})
			must(t, err)
			if img.Name != "HelloApp" || img.ComponentID != "45f4d635-0000-4000-8000-000000000001" || img.Type != 10 || op.Type != ferry.OpImageUpload {
				t.Errorf("image = %+v, op = %+v", img, op)
			}
			got, err := svc.GetImageContent(ctx, img.ID)
			must(t, err)
			if string(got) != string(content) {
				t.Errorf("content = %q", got)
			}
			plain, _, err := svc.UploadImage(ctx, sphere.ImageUpload{CatalogID: cat.TenantID, Content: []byte{1, 2, 3}, RegionalDataBoundary: ferry.BoundaryEU})
			must(t, err)
			if plain.Type.String() != "Applications" || !ferry.IsUUID(plain.ComponentID) || plain.RegionalDataBoundary != ferry.BoundaryEU {
				t.Errorf("defaulted image = %+v", plain)
			}
			_, _, err = svc.UploadImage(ctx, sphere.ImageUpload{CatalogID: cat.TenantID})
			wantCode(t, err, ferry.EINVALID)
			_, _, err = svc.UploadImage(ctx, sphere.ImageUpload{ID: img.ID, CatalogID: cat.TenantID, Content: []byte{1}})
			wantCode(t, err, ferry.ECONFLICT)

			g, err := svc.GetDeviceGroupByName(ctx, p.ID, "Field Test")
			must(t, err)
			dep := &ferry.Deployment{DeviceGroupID: g.ID, Name: ".default", ImageIDs: []string{img.ID, plain.ID}}
			_, err = svc.CreateDeployment(ctx, dep)
			must(t, err)
			cur, err := svc.GetDeploymentByName(ctx, g.ID, ferry.DefaultName)
			must(t, err)
			if cur.ID != dep.ID || cur.Name != dep.ID || len(cur.ImageIDs) != 2 {
				t.Errorf("current deployment = %+v", cur)
			}
			has, err := svc.HasDeployment(ctx, g.ID)
			must(t, err)
			if !has {
				t.Error("HasDeployment = false")
			}
			wantCode(t, svc.DeleteImage(ctx, img.ID), ferry.ECONFLICT)
			_, err = svc.CreateDeployment(ctx, &ferry.Deployment{DeviceGroupID: g.ID, ImageIDs: []string{ferry.NewUUID()}})
			wantCode(t, err, ferry.ENOTFOUND)
			otherImg, _, err := svc.UploadImage(ctx, sphere.ImageUpload{CatalogID: other.TenantID, Content: []byte{9}})
			must(t, err)
			_, err = svc.CreateDeployment(ctx, &ferry.Deployment{DeviceGroupID: g.ID, ImageIDs: []string{otherImg.ID}})
			wantCode(t, err, ferry.ENOTFOUND)
		})

		t.Run("DeleteProduct", func(t *testing.T) {
			q := &ferry.Product{CatalogID: cat.TenantID, Name: "Kettle"}
			_, err := svc.CreateProduct(ctx, q, false)
			must(t, err)
			g := &ferry.DeviceGroup{ProductID: q.ID, Name: "Lab"}
			must(t, svc.CreateDeviceGroup(ctx, g))
			if g.OSFeedType != ferry.OSFeedRetail || g.UpdatePolicy != ferry.UpdateAll || g.CatalogID != cat.TenantID {
				t.Errorf("group defaults = %+v", g)
			}
			wantCode(t, svc.CreateDeviceGroup(ctx, &ferry.DeviceGroup{ProductID: q.ID, Name: "X", OSFeedType: "Beta"}), ferry.EINVALID)
			_, err = svc.DeleteDeviceGroup(ctx, g.ID)
			must(t, err)
			op, err := svc.DeleteProduct(ctx, q.ID)
			must(t, err)
			stored, err := svc.GetOperation(ctx, op.ID)
			must(t, err)
			if stored.Type != ferry.OpDeleteProduct || !strings.HasSuffix(stored.ResourceID, "/products/Kettle") {
				t.Errorf("operation = %+v", stored)
			}
		})
	})
}
