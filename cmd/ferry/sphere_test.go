package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/client"
	"github.com/ferry-iot/ferry/store/storetest"
)

// deviceID is a 128-character device ID, as Azure Sphere chips have.
func deviceID(c byte) string { return strings.Repeat(string(c), 128) }

// TestSphereCLI drives the integrated tree as an operator would: defaults
// in the profile, a catalog, a product with its default device groups, an
// image, a deployment and a claimed device moved into a group; then reads
// and changes the same resources through the legacy tree, and assigns
// roles; on both databases.
func TestSphereCLI(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var extra []string
			if backend == "postgres" {
				extra = []string{"--db", storetest.NewPostgresSchema(t)}
			}
			testSphereCLI(t, loginCLI(t, extra...))
		})
	}
}

func testSphereCLI(t *testing.T, ce *cliEnv) {
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

	t.Run("CACertificates", func(t *testing.T) {
		var certs []map[string]any
		ce.ok(t, &certs, "sphere", "ca-certificate", "list")
		if len(certs) == 0 || str(certs[0], "properties.status") != "Active" {
			t.Fatalf("ca-certificate list: %v", certs)
		}
		chain := filepath.Join(t.TempDir(), "chain.p7b")
		ce.ok(t, nil, "sphere", "ca-certificate", "download-chain", "--serial-number", str(certs[0], "name"), "--output-file", chain)
		if b, err := os.ReadFile(chain); err != nil || !strings.HasPrefix(string(b), "-----BEGIN PKCS7-----") {
			t.Errorf("download-chain: %q %v", b, err)
		}
		proof := ce.ok(t, nil, "sphere", "ca-certificate", "download-proof", "--verification-code", "5A1B2C3D")
		if !strings.HasPrefix(proof, "-----BEGIN CERTIFICATE-----") {
			t.Errorf("download-proof: %q", proof)
		}
		if code, _, errs := ce.run(t, "sphere", "ca-certificate", "download-proof"); code != 2 || !strings.Contains(errs, "--verification-code") {
			t.Errorf("download-proof without a code: exit %d: %s", code, errs)
		}
	})
	t.Run("ListsAndShows", func(t *testing.T) {
		var imgs, deps, prods []map[string]any
		ce.ok(t, &imgs, "sphere", "image", "list")
		ce.ok(t, &deps, "sphere", "deployment", "list", "-p", "Dishwasher", "--device-group", "Field Test")
		ce.ok(t, &prods, "sphere", "product", "list")
		if len(imgs) != 1 || len(deps) != 1 || len(prods) != 1 {
			t.Errorf("images %d, deployments %d, products %d; want 1 each", len(imgs), len(deps), len(prods))
		}
		var cur map[string]any
		ce.ok(t, &cur, "sphere", "deployment", "show", "-p", "Dishwasher", "--device-group", "Field Test")
		if str(cur, "properties.deploymentId") != str(deps[0], "properties.deploymentId") {
			t.Errorf("current deployment %v, list %v", cur, deps)
		}
		var c map[string]any
		ce.ok(t, &c, "sphere", "catalog", "update", "--tags", "env=test")
		if str(c, "tags.env") != "test" {
			t.Errorf("catalog update: %v", c)
		}
		table := ce.ok(t, nil, "sphere", "device-group", "list", "-o", "table")
		if strings.Count(table, "\n") != 2+5 {
			t.Errorf("device-group list table:\n%s", table)
		}
		code, _, errs := ce.run(t, "sphere", "product", "delete", "-n", "Dishwasher")
		if code != 1 || !strings.Contains(errs, "HTTP 409") {
			t.Errorf("deleting a product with device groups: exit %d: %s", code, errs)
		}
	})
	t.Run("Legacy", func(t *testing.T) {
		testLegacyCLI(t, ce, str(cat, "properties.tenantId"), dev, imageID)
	})

	t.Run("Roles", func(t *testing.T) {
		testRoleCLI(t, ce, str(cat, "id"))
	})

	t.Run("Unassign", func(t *testing.T) {
		var d map[string]any
		ce.ok(t, &d, "sphere", "device", "unassign", "-d", dev)
		if d["product"] != ".unassigned" || d["deviceGroup"] != ".unassigned" {
			t.Errorf("unassign: %v", d)
		}
	})

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
	t.Run("ErrUnknownCommand", func(t *testing.T) {
		for _, args := range [][]string{{"sphere", "catalogue"}, {"sphere", "product", "show", "Dishwasher"}, {"legacy", "tenant", "nuke"}} {
			if code, _, _ := ce.run(t, args...); code != 2 {
				t.Errorf("ferry %s: exit %d, want 2", strings.Join(args, " "), code)
			}
		}
	})
	t.Run("ErrBadOutput", func(t *testing.T) {
		if code, _, _ := ce.run(t, "sphere", "catalog", "list", "-o", "yaml"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
}

// testLegacyCLI reads and changes, through `ferry legacy`, what the
// integrated tree made in tenant (the catalog), and makes a legacy-only
// tenant.
func testLegacyCLI(t *testing.T, ce *cliEnv, tenant, dev, imageID string) {
	ctx := context.Background()
	var me struct{ ObjectID string }
	if _, err := ce.client(t).Do(ctx, http.MethodGet, "/api/me", nil, &me); err != nil {
		t.Fatal(err)
	}
	// A catalog born on the integrated surface has no legacy roles yet.
	if err := ce.m.Store.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: tenant, PrincipalID: me.ObjectID,
		Role: ferry.LegacyAdministrator, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	var tn map[string]any
	ce.ok(t, &tn, "legacy", "tenant", "show")
	if str(tn, "Id") != tenant || str(tn, "Name") != "Contoso" {
		t.Fatalf("tenant show: %v", tn)
	}
	var prod map[string]any
	ce.ok(t, &prod, "legacy", "product", "show", "-p", "Dishwasher")
	if str(prod, "Description") != "DW100" {
		t.Errorf("product: %v", prod)
	}
	var grp map[string]any
	ce.ok(t, &grp, "legacy", "device-group", "show", "--device-group", "Dishwasher/Field Test")
	if str(grp, "OsFeedType") != "1" || !strings.Contains(str(grp, "CurrentDeployment"), imageID) {
		t.Errorf("device group: %v", grp)
	}
	var d map[string]any
	ce.ok(t, &d, "legacy", "device", "show", "--device", dev)
	if str(d, "DeviceGroupId") != str(grp, "Id") {
		t.Errorf("device: %v", d)
	}
	var img map[string]any
	ce.ok(t, &img, "legacy", "image", "show", "--image", imageID)
	if str(img, "Name") != "DishwasherApp" || str(img, "Type") != "10" {
		t.Errorf("image: %v", img)
	}

	// Legacy writes, seen on the integrated side.
	ce.ok(t, nil, "legacy", "device-group", "create", "-p", "Dishwasher", "-n", "Line", "-a", "NoUpdates", "-f", "Retail")
	ce.ok(t, nil, "legacy", "device", "update", "--device", dev, "--device-group", "Dishwasher/Line")
	var moved map[string]any
	ce.ok(t, &moved, "sphere", "device", "show", "-d", dev)
	if moved["deviceGroup"] != "Line" {
		t.Errorf("device after a legacy move: %v", moved)
	}
	var up map[string]any
	pkg := filepath.Join(t.TempDir(), "legacy.imagepackage")
	if err := os.WriteFile(pkg, []byte("legacy\n#ferry-image name=LegacyApp type=Applications\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ce.ok(t, &up, "legacy", "image", "add", "--image", pkg)
	if str(up, "Name") != "LegacyApp" {
		t.Fatalf("legacy image add: %v", up)
	}
	var dep map[string]any
	ce.ok(t, &dep, "legacy", "device-group", "deployment", "create", "-g", "Dishwasher/Line", "--images", str(up, "Id"))
	if !strings.Contains(str(dep, "DeployedImages"), str(up, "Id")) {
		t.Errorf("legacy deployment: %v", dep)
	}
	users := ce.ok(t, nil, "legacy", "role", "list", "-o", "table")
	if !strings.Contains(users, me.ObjectID) || !strings.Contains(users, "Administrator") {
		t.Errorf("role list:\n%s", users)
	}
	if out := ce.ok(t, nil, "legacy", "ca-certificate", "download"); !strings.HasPrefix(out, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("legacy ca-certificate download: %q", out)
	}

	t.Run("ErrContributorDeletes", func(t *testing.T) {
		sp, secret, err := ce.m.Identity.CreateServicePrincipal(ctx, "legacy script")
		if err != nil {
			t.Fatal(err)
		}
		if err := ce.m.Store.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: tenant, PrincipalID: sp.ID,
			Role: ferry.LegacyContributor, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		script := &cliEnv{m: ce.m, getenv: envFrom(map[string]string{"FERRY_CONFIG_DIR": t.TempDir(), "FERRY_CLIENT_SECRET": secret})}
		path, _ := client.ProfilePath(ce.getenv)
		p, err := client.LoadProfile(path)
		if err != nil {
			t.Fatal(err)
		}
		script.ok(t, nil, "login", "--url", ce.m.issuerURL(), "--client-id", sp.Name, "--ca-file", p.CAFile)
		script.ok(t, nil, "legacy", "product", "show", "-p", "Dishwasher")
		code, _, errs := script.run(t, "legacy", "product", "delete", "-p", "Dishwasher")
		if code != 1 || !strings.Contains(errs, "legacy code 6 Forbidden") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("exit %d: %q", code, errs)
		}
	})

	// A tenant that exists only on the legacy surface.
	var nt map[string]any
	ce.ok(t, &nt, "legacy", "tenant", "create", "--name", "Fabrikam", "--device", deviceID('f'))
	if str(nt, "Name") != "Fabrikam" || !strings.Contains(str(nt, "Roles"), "Administrator") {
		t.Fatalf("tenant create: %v", nt)
	}
	t.Run("ErrTenantAmbiguous", func(t *testing.T) {
		if code, _, errs := ce.run(t, "legacy", "product", "list"); code != 2 || !strings.Contains(errs, "--tenant") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
	ce.ok(t, nil, "legacy", "tenant", "select", "--tenant", "Fabrikam")
	var prods []any
	ce.ok(t, &prods, "legacy", "product", "list")
	if len(prods) != 0 {
		t.Errorf("products of the new tenant: %v", prods)
	}
	t.Run("ErrClaimTaken", func(t *testing.T) {
		code, _, errs := ce.run(t, "legacy", "device", "claim", "--device", dev)
		if code != 1 || !strings.Contains(errs, "legacy code 7 Conflict") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
}

// testRoleCLI assigns a built-in role to a service principal at a catalog,
// lists it and deletes it.
func testRoleCLI(t *testing.T, ce *cliEnv, catalogID string) {
	sp, _, err := ce.m.Identity.CreateServicePrincipal(context.Background(), "deployer")
	if err != nil {
		t.Fatal(err)
	}
	var defs []map[string]any
	ce.ok(t, &defs, "role", "definition", "list", "--name", "Azure Sphere Contributor")
	if len(defs) != 1 || str(defs[0], "properties.type") != "BuiltInRole" {
		t.Fatalf("definition list: %v", defs)
	}
	var a map[string]any
	ce.ok(t, &a, "role", "assignment", "create", "--assignee", sp.ID, "--role", "Azure Sphere Contributor", "--scope", catalogID)
	if !strings.EqualFold(str(a, "properties.scope"), catalogID) || a["roleName"] != "Azure Sphere Contributor" {
		t.Fatalf("assignment create: %v", a)
	}
	table := ce.ok(t, nil, "role", "assignment", "list", "--assignee", sp.ID, "--scope", catalogID, "-o", "table")
	if !strings.Contains(table, "Azure Sphere Contributor") || !strings.Contains(table, sp.ID) {
		t.Errorf("assignment list:\n%s", table)
	}
	ce.ok(t, nil, "role", "assignment", "delete", "--assignee", sp.ID, "--role", "Azure Sphere Contributor", "--scope", catalogID)
	var left []any
	ce.ok(t, &left, "role", "assignment", "list", "--assignee", sp.ID, "--scope", catalogID)
	if len(left) != 0 {
		t.Errorf("after delete: %v", left)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"ErrUnknownRole", []string{"create", "--assignee", sp.ID, "--role", "Chief Wizard", "--scope", catalogID}, 1, "RoleDefinitionDoesNotExist"},
		{"ErrAssigneeNotGUID", []string{"create", "--assignee", "bob", "--role", "Reader"}, 2, "object ID"},
		{"ErrUnknownPrincipal", []string{"create", "--assignee", ferry.NewUUID(), "--role", "Reader", "--scope", catalogID}, 1, "PrincipalNotFound"},
		{"ErrDeleteNothing", []string{"delete"}, 2, "--ids"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := ce.run(t, append([]string{"role", "assignment"}, c.args...)...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d: %s", code, errs)
			}
		})
	}
}
