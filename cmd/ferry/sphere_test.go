package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deviceID is a 128-character device ID, as Azure Sphere chips have.
func deviceID(c byte) string { return strings.Repeat(string(c), 128) }

// TestSphereCLI drives the integrated tree as an operator would: defaults
// in the profile, a catalog, a product with its default device groups, an
// image, a deployment and a claimed device moved into a group.
func TestSphereCLI(t *testing.T) {
	ce := loginCLI(t)
	ce.createResourceGroup(t, "fleet")
	ce.ok(t, nil, "config", "set", "defaults.group=fleet", "defaults.sphere.catalog=Contoso")
	if out := ce.ok(t, nil, "config", "get", "defaults.sphere.catalog"); out != "defaults.sphere.catalog=Contoso\n" {
		t.Errorf("config get: %q", out)
	}

	var cat map[string]any
	ce.ok(t, &cat, "sphere", "catalog", "create", "-n", "Contoso")
	if str(cat, "properties.provisioningState") != "Succeeded" || str(cat, "properties.tenantId") == "" {
		t.Fatalf("catalog: %v", cat)
	}
	ce.ok(t, nil, "sphere", "product", "create", "-n", "Dishwasher", "--description", "DW100")
	var groups []map[string]any
	ce.ok(t, &groups, "sphere", "device-group", "create-defaults", "-p", "Dishwasher")
	if len(groups) != 5 {
		t.Fatalf("default device groups: %d, want 5", len(groups))
	}
	var dg map[string]any
	ce.ok(t, &dg, "sphere", "device-group", "update", "-p", "Dishwasher", "--device-group", "Field Test",
		"--os-feed", "RetailEval", "--regional-data-boundary", "EU")
	if str(dg, "properties.osFeedType") != "RetailEval" || str(dg, "properties.regionalDataBoundary") != "EU" {
		t.Errorf("device group update: %v", dg)
	}

	pkg := filepath.Join(t.TempDir(), "app.imagepackage")
	if err := os.WriteFile(pkg, []byte("image bytes\n#ferry-image name=DishwasherApp type=Applications\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var img map[string]any
	ce.ok(t, &img, "sphere", "image", "add", "--image", pkg)
	imageID := str(img, "properties.imageId")
	if imageID == "" || str(img, "properties.imageName") != "DishwasherApp" {
		t.Fatalf("image: %v", img)
	}
	var dep map[string]any
	ce.ok(t, &dep, "sphere", "deployment", "create", "-p", "Dishwasher", "--device-group", "Field Test", "--images", imageID)
	if !strings.Contains(str(dep, "properties.deployedImages"), imageID) {
		t.Errorf("deployment: %v", dep)
	}
	ce.ok(t, &dg, "sphere", "device-group", "show", "-p", "Dishwasher", "--device-group", "Field Test")
	if str(dg, "properties.hasDeployment") != "true" {
		t.Errorf("device group after deployment: %v", dg)
	}

	dev := deviceID('a')
	var claimed []map[string]any
	ce.ok(t, &claimed, "sphere", "device", "claim", "-d", dev)
	if len(claimed) != 1 || claimed[0]["product"] != ".unassigned" {
		t.Fatalf("claim: %v", claimed)
	}
	ce.ok(t, nil, "sphere", "device", "assign", "-d", dev, "--target-product", "Dishwasher", "--target-device-group", "Field Test")
	table := ce.ok(t, nil, "sphere", "device", "list", "-o", "table")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DeviceId") || !strings.Contains(strings.ToLower(lines[2]), dev) ||
		!strings.Contains(lines[2], "Field Test") || !strings.Contains(lines[2], "Dishwasher") {
		t.Errorf("device list table:\n%s", table)
	}
	var count map[string]any
	ce.ok(t, &count, "sphere", "device", "show-count", "-p", "Dishwasher", "--device-group", "Field Test")
	if str(count, "value") != "1" {
		t.Errorf("count: %v", count)
	}
	pem := ce.ok(t, nil, "sphere", "ca-certificate", "download")
	if !strings.HasPrefix(pem, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("ca-certificate download: %q", pem)
	}

	t.Run("ErrMissingFlag", func(t *testing.T) {
		code, _, errs := ce.run(t, "sphere", "product", "create")
		if code != 2 || !strings.Contains(errs, "--name") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
	t.Run("ErrUnknownCatalog", func(t *testing.T) {
		code, _, errs := ce.run(t, "sphere", "product", "list", "-c", "Nowhere")
		if code != 1 || !strings.Contains(errs, "ResourceNotFound") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("exit %d: %q", code, errs)
		}
	})
	t.Run("ErrBadEnum", func(t *testing.T) {
		code, _, errs := ce.run(t, "sphere", "device-group", "update", "-p", "Dishwasher", "-n", "Production", "--os-feed", "Beta")
		if code != 1 || !strings.Contains(errs, "osFeedType") {
			t.Errorf("exit %d: %q", code, errs)
		}
	})
	t.Run("ErrBadOutput", func(t *testing.T) {
		if code, _, _ := ce.run(t, "sphere", "catalog", "list", "-o", "yaml"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
}
