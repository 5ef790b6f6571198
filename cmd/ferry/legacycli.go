package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/client"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/spf13/cobra"
)

// newLegacyCommand is `ferry legacy`, the legacy management tree, named
// and flagged like the retired `azsphere` CLI (sphere-surfaces.md §3). It
// speaks the PAPI v2 surface under /v2/.
func newLegacyCommand(e *env) *cobra.Command {
	var format string
	root := &cobra.Command{
		Use:   "legacy",
		Short: "Manage tenants, products, device groups, devices, images and roles on the legacy surface (like azsphere)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(root, &format)
	lc := &legacyCLI{sphereCLI{e: e, format: &format}}
	root.AddCommand(lc.tenantCommand(), lc.productCommand(), lc.deviceGroupCommand(), lc.deviceCommand(),
		lc.imageCommand(), lc.roleCommand(), lc.caCertificateCommand())
	lc.addShutdownCommands(root)
	wrapErrors(root, legacyError)
	return root
}

// wrapErrors passes the error of every command under c through f.
func wrapErrors(c *cobra.Command, f func(error) error) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error { return f(run(cmd, args)) }
	}
	for _, sub := range c.Commands() {
		wrapErrors(sub, f)
	}
}

// legacyCodeNames name the PAPI ErrorResponse codes (sphere-surfaces.md §2.1).
var legacyCodeNames = []string{"OperationFailed", "TenantInMigration", "TenantMigrationRequired", "ClientUpdateRequired",
	"InternalServerError", "BadRequest", "Forbidden", "Conflict", "NotFound"}

// legacyError names the legacy code of a server error: "legacy code 6
// Forbidden" rather than a bare "6".
func legacyError(err error) error {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return err
	}
	if n, convErr := strconv.Atoi(ce.Code); convErr == nil {
		ce.Code = fmt.Sprintf("legacy code %d", n)
		if n >= 0 && n < len(legacyCodeNames) {
			ce.Code += " " + legacyCodeNames[n]
		}
	}
	return err
}

type legacyCLI struct{ sphereCLI }

// tenantFlag is azsphere's --tenant (-t): a tenant ID or name.
type tenantFlag struct{ tenant string }

func (f *tenantFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.tenant, "tenant", "t", "", "the tenant's ID or name (default: the selected one, or your only one)")
}

// leaf makes a command that runs with a session and the tenant's path
// (/v2/tenants/{id}).
func (lc *legacyCLI) leaf(use, short string, f *tenantFlag, run func(ctx context.Context, s *session, tp string) error) *cobra.Command {
	cmd := lc.sphereCLI.leaf(use, short, func(ctx context.Context, s *session) error {
		id, err := s.legacyTenant(ctx, f.tenant)
		if err != nil {
			return err
		}
		return run(ctx, s, "/v2/tenants/"+url.PathEscape(id))
	})
	f.add(cmd)
	return cmd
}

// legacyTenant resolves --tenant: an ID or name among the caller's
// tenants; without it, the profile's selected tenant, else the caller's
// only tenant.
func (s *session) legacyTenant(ctx context.Context, flag string) (string, error) {
	var ts []legacy.Tenant
	if err := s.arm(ctx, http.MethodGet, "/v2/tenants", nil, &ts); err != nil {
		return "", err
	}
	if flag == "" {
		for _, t := range ts {
			if strings.EqualFold(t.Id, s.profile.DefaultTenant) {
				return t.Id, nil
			}
		}
		if len(ts) == 1 {
			return ts[0].Id, nil
		}
		return "", usagef("the flag --tenant is required: you have %d tenants and none is selected ('ferry legacy tenant select')", len(ts))
	}
	for _, t := range ts {
		if strings.EqualFold(t.Id, flag) || t.Name == flag {
			return t.Id, nil
		}
	}
	if ferry.IsUUID(flag) {
		return flag, nil // let the server answer for a tenant not listed
	}
	return "", fmt.Errorf("the tenant '%s' is not one of yours (legacy code %d, NotFound)", flag, legacy.CodeNotFound)
}

// legacyList reads every page of a legacy list, following
// Sphere-Continuation tokens.
func (s *session) legacyList(ctx context.Context, path string) ([]any, error) {
	all := []any{}
	token := ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.c.BaseURL+path, nil)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set(legacy.ContinuationHeader, token)
		}
		var page struct {
			Items             []any
			ContinuationToken *string
		}
		if _, err := s.c.Send(req, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.ContinuationToken == nil || *page.ContinuationToken == "" {
			return all, nil
		}
		token = *page.ContinuationToken
	}
}

// legacyOp sends a request whose answer is an Operation and polls the
// operation until it ends; it returns the final operation.
func (s *session) legacyOp(ctx context.Context, tp string, req *http.Request, what string) (*legacy.Operation, error) {
	var op legacy.Operation
	if _, err := s.c.Send(req, &op); err != nil {
		return nil, err
	}
	prog := s.e.progress(what)
	defer prog.done()
	for op.State == 0 || op.State == 1 { // NotStarted, InProgress
		prog.tick()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollInterval):
		}
		if err := s.arm(ctx, http.MethodGet, tp+"/operations/"+url.PathEscape(op.OperationId), nil, &op); err != nil {
			return nil, fmt.Errorf("poll operation: %w", err)
		}
	}
	if op.State == 3 { // Failed
		msg, code := "The operation failed.", legacy.CodeOperationFailed
		if op.Error != nil {
			msg, code = op.Error.Message, op.Error.Code
		}
		return &op, fmt.Errorf("%s (operation failed, legacy code %d)", msg, code)
	}
	return &op, nil
}

// legacyJSON makes a request with a JSON body.
func (s *session) legacyJSON(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = jsonBytes(body); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, s.c.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// lastSegment is the last path segment of an operation's ResourceLocation.
func lastSegment(op *legacy.Operation) string {
	if op == nil || op.ResourceLocation == nil {
		return ""
	}
	p := strings.TrimRight(*op.ResourceLocation, "/")
	return p[strings.LastIndex(p, "/")+1:]
}

var (
	tenantColumns        = []column{{"Id", "Id"}, {"Name", "Name"}, {"Roles", "Roles"}}
	legacyProductColumns = []column{{"Id", "Id"}, {"Name", "Name"}, {"Description", "Description"}}
	legacyGroupColumns   = []column{{"Id", "Id"}, {"Name", "Name"}, {"ProductId", "ProductId"}, {"OsFeedType", "OsFeedType"},
		{"UpdatePolicy", "UpdatePolicy"}, {"AllowCrashDumpsCollection", "AllowCrashDumpsCollection"}}
	legacyDeploymentColumns = []column{{"Id", "Id"}, {"DeploymentDateUtc", "DeploymentDateUtc"}, {"DeployedImages", "DeployedImages"}}
	legacyDeviceColumns     = []column{{"DeviceId", "DeviceId"}, {"ProductId", "ProductId"}, {"DeviceGroupId", "DeviceGroupId"}, {"ChipSku", "ChipSku"}}
	legacyImageColumns      = []column{{"Id", "Id"}, {"Name", "Name"}, {"ComponentId", "ComponentId"}, {"Type", "Type"}}
	legacyUserColumns       = []column{{"PrincipalId", "PrincipalId"}, {"DisplayName", "DisplayName"}, {"Mail", "Mail"}, {"Roles", "Roles"}}
	legacyCertColumns       = []column{{"Thumbprint", "Thumbprint"}, {"IsActive", "IsActive"}, {"IsRevoked", "IsRevoked"}}
)

// Tenants.

func (lc *legacyCLI) tenantCommand() *cobra.Command {
	var name, device string
	create := lc.sphereCLI.leaf("create", "Create a tenant, claiming an unclaimed device to it", func(ctx context.Context, s *session) error {
		if err := need("name", name, "device", device); err != nil {
			return err
		}
		req, err := s.legacyJSON(ctx, http.MethodPost, "/v2/tenants/create", map[string]any{"DeviceId": device, "TenantFriendlyName": name})
		if err != nil {
			return err
		}
		var op legacy.Operation
		if _, err := s.c.Send(req, &op); err != nil {
			return err
		}
		var t map[string]any
		if err := s.arm(ctx, http.MethodGet, "/v2/tenants/"+url.PathEscape(op.TenantId), nil, &t); err != nil {
			return err
		}
		return lc.render(t, tenantColumns)
	})
	create.Flags().StringVarP(&name, "name", "n", "", "the tenant's name")
	create.Flags().StringVarP(&device, "device", "d", "", "the ID of the unclaimed device that makes the tenant")
	create.Flags().Bool("force-additional", false, "accepted for compatibility: Ferry lets one user create several tenants")

	list := lc.sphereCLI.leaf("list", "List your tenants", func(ctx context.Context, s *session) error {
		var ts []any
		if err := s.arm(ctx, http.MethodGet, "/v2/tenants", nil, &ts); err != nil {
			return err
		}
		return lc.render(ts, tenantColumns)
	})
	var sf, self tenantFlag
	show := lc.leaf("show", "Show a tenant", &sf, func(ctx context.Context, s *session, tp string) error {
		var t map[string]any
		if err := s.arm(ctx, http.MethodGet, tp, nil, &t); err != nil {
			return err
		}
		return lc.render(t, tenantColumns)
	})
	show.Aliases = []string{"show-selected"}
	sel := lc.leaf("select", "Make a tenant the default of later legacy commands", &self, func(ctx context.Context, s *session, tp string) error {
		if self.tenant == "" {
			return usagef("the flag --tenant is required")
		}
		path, err := profilePath(s.e)
		if err != nil {
			return err
		}
		s.profile.DefaultTenant = strings.TrimPrefix(tp, "/v2/tenants/")
		if err := s.profile.Save(path); err != nil {
			return err
		}
		fmt.Fprintf(s.e.stdout, "Selected tenant %s.\n", s.profile.DefaultTenant)
		return nil
	})
	return group("tenant", "Manage tenants", create, list, show, sel)
}

// Products.

// productRef resolves a product name or ID to its ID.
func (s *session) productRef(ctx context.Context, tp, ref string) (string, error) {
	if ferry.IsUUID(ref) {
		return strings.ToLower(ref), nil
	}
	all, err := s.legacyList(ctx, tp+"/products")
	if err != nil {
		return "", err
	}
	for _, x := range all {
		if str(x, "Name") == ref {
			return str(x, "Id"), nil
		}
	}
	return "", fmt.Errorf("the product '%s' was not found (legacy code %d, NotFound)", ref, legacy.CodeNotFound)
}

func (lc *legacyCLI) productCommand() *cobra.Command {
	var cf, lf, sf, df tenantFlag
	var name, description string
	var noDefaults bool
	create := lc.leaf("create", "Create a product, with its default device groups", &cf, func(ctx context.Context, s *session, tp string) error {
		if err := need("name", name); err != nil {
			return err
		}
		req, err := s.legacyJSON(ctx, http.MethodPost, tp+"/products",
			map[string]any{"Name": name, "Description": description, "CreateDefaultGroups": !noDefaults})
		if err != nil {
			return err
		}
		if _, err := s.legacyOp(ctx, tp, req, "create product"); err != nil {
			return err
		}
		id, err := s.productRef(ctx, tp, name)
		if err != nil {
			return err
		}
		return lc.show(ctx, s, tp+"/products/"+url.PathEscape(id), legacyProductColumns)
	})
	create.Flags().StringVarP(&name, "name", "n", "", "the product's name")
	create.Flags().StringVar(&description, "description", "", "the product's description")
	create.Flags().BoolVar(&noDefaults, "no-default-device-groups", false, "do not create the default device groups")

	list := lc.leaf("list", "List the tenant's products", &lf, func(ctx context.Context, s *session, tp string) error {
		return lc.list(ctx, s, tp+"/products", legacyProductColumns)
	})
	var ref string
	show := lc.leaf("show", "Show a product", &sf, func(ctx context.Context, s *session, tp string) error {
		if err := need("product", ref); err != nil {
			return err
		}
		id, err := s.productRef(ctx, tp, ref)
		if err != nil {
			return err
		}
		return lc.show(ctx, s, tp+"/products/"+url.PathEscape(id), legacyProductColumns)
	})
	show.Flags().StringVarP(&ref, "product", "p", "", "the product's name or ID")
	var dref string
	del := lc.leaf("delete", "Delete a product (Administrator only)", &df, func(ctx context.Context, s *session, tp string) error {
		if err := need("product", dref); err != nil {
			return err
		}
		id, err := s.productRef(ctx, tp, dref)
		if err != nil {
			return err
		}
		req, err := s.legacyJSON(ctx, http.MethodDelete, tp+"/products/"+url.PathEscape(id), nil)
		if err != nil {
			return err
		}
		_, err = s.legacyOp(ctx, tp, req, "delete product")
		return err
	})
	del.Flags().StringVarP(&dref, "product", "p", "", "the product's name or ID")
	return group("product", "Manage products", create, list, show, del)
}

func (lc *legacyCLI) show(ctx context.Context, s *session, path string, cols []column) error {
	var out map[string]any
	if err := s.arm(ctx, http.MethodGet, path, nil, &out); err != nil {
		return err
	}
	return lc.render(out, cols)
}

func (lc *legacyCLI) list(ctx context.Context, s *session, path string, cols []column) error {
	all, err := s.legacyList(ctx, path)
	if err != nil {
		return err
	}
	return lc.render(all, cols)
}

// Device groups.

// groupRef resolves azsphere's --device-group: a GUID or "Product/Group".
func (s *session) groupRef(ctx context.Context, tp, ref string) (string, error) {
	if ferry.IsUUID(ref) {
		return strings.ToLower(ref), nil
	}
	pn, gn, ok := strings.Cut(ref, "/")
	if !ok {
		return "", usagef("--device-group: want a device group ID or 'Product/Group', got %q", ref)
	}
	pid, err := s.productRef(ctx, tp, pn)
	if err != nil {
		return "", err
	}
	all, err := s.legacyList(ctx, tp+"/devicegroups")
	if err != nil {
		return "", err
	}
	for _, x := range all {
		if strings.EqualFold(str(x, "ProductId"), pid) && str(x, "Name") == gn {
			return str(x, "Id"), nil
		}
	}
	return "", fmt.Errorf("the device group '%s' was not found (legacy code %d, NotFound)", ref, legacy.CodeNotFound)
}

// legacyEnum maps an az/azsphere enum name to its PAPI integer.
func legacyEnum(flag, v string, names ...string) (*int, error) {
	if v == "" {
		return nil, nil
	}
	for i, n := range names {
		if strings.EqualFold(n, v) {
			return &i, nil
		}
	}
	return nil, usagef("--%s: want one of %s, got %q", flag, strings.Join(names, ", "), v)
}

func (lc *legacyCLI) deviceGroupCommand() *cobra.Command {
	var cf, lf, sf, df tenantFlag
	var product, name, description, policy, feed string
	create := lc.leaf("create", "Create a device group", &cf, func(ctx context.Context, s *session, tp string) error {
		if err := need("product", product, "name", name); err != nil {
			return err
		}
		pol, err := legacyEnum("application-update", policy, "UpdateAll", "No3rdPartyAppUpdates", "NoUpdates")
		if err != nil {
			return err
		}
		fd, err := legacyEnum("os-feed", feed, "Retail", "RetailEval")
		if err != nil {
			return err
		}
		pid, err := s.productRef(ctx, tp, product)
		if err != nil {
			return err
		}
		body := map[string]any{"ProductId": pid, "Name": name, "Description": description, "UpdatePolicy": pol, "OsFeedType": fd}
		var out map[string]any
		if err := s.arm(ctx, http.MethodPost, tp+"/devicegroups", body, &out); err != nil {
			return err
		}
		return lc.render(out, legacyGroupColumns)
	})
	fl := create.Flags()
	fl.StringVarP(&product, "product", "p", "", "the product's name or ID")
	fl.StringVarP(&name, "name", "n", "", "the device group's name")
	fl.StringVarP(&description, "description", "d", "", "the device group's description")
	fl.StringVarP(&policy, "application-update", "a", "", "UpdateAll, No3rdPartyAppUpdates or NoUpdates")
	fl.StringVarP(&feed, "os-feed", "f", "", "Retail or RetailEval")

	list := lc.leaf("list", "List the tenant's device groups", &lf, func(ctx context.Context, s *session, tp string) error {
		return lc.list(ctx, s, tp+"/devicegroups", legacyGroupColumns)
	})
	var sref, dref string
	show := lc.leaf("show", "Show a device group", &sf, func(ctx context.Context, s *session, tp string) error {
		if err := need("device-group", sref); err != nil {
			return err
		}
		id, err := s.groupRef(ctx, tp, sref)
		if err != nil {
			return err
		}
		return lc.show(ctx, s, tp+"/devicegroups/"+url.PathEscape(id), legacyGroupColumns)
	})
	show.Flags().StringVarP(&sref, "device-group", "g", "", "the device group's ID or 'Product/Group'")
	del := lc.leaf("delete", "Delete a device group (Administrator only)", &df, func(ctx context.Context, s *session, tp string) error {
		if err := need("device-group", dref); err != nil {
			return err
		}
		id, err := s.groupRef(ctx, tp, dref)
		if err != nil {
			return err
		}
		req, err := s.legacyJSON(ctx, http.MethodDelete, tp+"/devicegroups/"+url.PathEscape(id), nil)
		if err != nil {
			return err
		}
		_, err = s.legacyOp(ctx, tp, req, "delete device group")
		return err
	})
	del.Flags().StringVarP(&dref, "device-group", "g", "", "the device group's ID or 'Product/Group'")

	var dcf, dlf tenantFlag
	var dcref, dlref string
	var images []string
	depCreate := lc.leaf("create", "Deploy images to a device group", &dcf, func(ctx context.Context, s *session, tp string) error {
		if err := need("device-group", dcref); err != nil {
			return err
		}
		if len(images) == 0 {
			return usagef("the flag --images is required")
		}
		id, err := s.groupRef(ctx, tp, dcref)
		if err != nil {
			return err
		}
		gp := tp + "/devicegroups/" + url.PathEscape(id)
		req, err := s.legacyJSON(ctx, http.MethodPost, gp+"/deployments", images)
		if err != nil {
			return err
		}
		if _, err := s.legacyOp(ctx, tp, req, "create deployment"); err != nil {
			return err
		}
		var g map[string]any
		if err := s.arm(ctx, http.MethodGet, gp, nil, &g); err != nil {
			return err
		}
		return lc.render(g["CurrentDeployment"], legacyDeploymentColumns)
	})
	depCreate.Flags().StringVarP(&dcref, "device-group", "g", "", "the device group's ID or 'Product/Group'")
	depCreate.Flags().StringSliceVarP(&images, "images", "i", nil, "the IDs of the images to deploy")
	depList := lc.leaf("list", "List a device group's deployments", &dlf, func(ctx context.Context, s *session, tp string) error {
		if err := need("device-group", dlref); err != nil {
			return err
		}
		id, err := s.groupRef(ctx, tp, dlref)
		if err != nil {
			return err
		}
		return lc.list(ctx, s, tp+"/devicegroups/"+url.PathEscape(id)+"/deployments", legacyDeploymentColumns)
	})
	depList.Flags().StringVarP(&dlref, "device-group", "g", "", "the device group's ID or 'Product/Group'")
	return group("device-group", "Manage device groups and their deployments", create, list, show, del,
		group("deployment", "Manage a device group's deployments", depCreate, depList))
}

// Devices.

func (lc *legacyCLI) deviceCommand() *cobra.Command {
	var cf, lf, sf, uf tenantFlag
	var cdev, sdev, udev, ugroup string
	claim := lc.leaf("claim", "Claim a device to the tenant (irreversible)", &cf, func(ctx context.Context, s *session, tp string) error {
		if err := need("device", cdev); err != nil {
			return err
		}
		req, err := s.legacyJSON(ctx, http.MethodPut, tp+"/devices/"+url.PathEscape(cdev)+"/claim", nil)
		if err != nil {
			return err
		}
		if _, err := s.legacyOp(ctx, tp, req, "claim device"); err != nil {
			return err
		}
		return lc.show(ctx, s, tp+"/devices/"+url.PathEscape(cdev), legacyDeviceColumns)
	})
	claim.Flags().StringVarP(&cdev, "device", "d", "", "the device's ID")
	list := lc.leaf("list", "List the tenant's devices", &lf, func(ctx context.Context, s *session, tp string) error {
		return lc.list(ctx, s, tp+"/devices", legacyDeviceColumns)
	})
	show := lc.leaf("show", "Show a device", &sf, func(ctx context.Context, s *session, tp string) error {
		if err := need("device", sdev); err != nil {
			return err
		}
		return lc.show(ctx, s, tp+"/devices/"+url.PathEscape(sdev), legacyDeviceColumns)
	})
	show.Flags().StringVarP(&sdev, "device", "d", "", "the device's ID")
	update := lc.leaf("update", "Place a device in a device group", &uf, func(ctx context.Context, s *session, tp string) error {
		if err := need("device", udev, "device-group", ugroup); err != nil {
			return err
		}
		gid, err := s.groupRef(ctx, tp, ugroup)
		if err != nil {
			return err
		}
		req, err := s.legacyJSON(ctx, http.MethodPut, tp+"/devices/"+url.PathEscape(udev)+"/devicegroup", gid)
		if err != nil {
			return err
		}
		if _, err := s.legacyOp(ctx, tp, req, "move device"); err != nil {
			return err
		}
		return lc.show(ctx, s, tp+"/devices/"+url.PathEscape(udev), legacyDeviceColumns)
	})
	update.Flags().StringVarP(&udev, "device", "d", "", "the device's ID")
	update.Flags().StringVarP(&ugroup, "device-group", "g", "", "the device group's ID or 'Product/Group'")
	return group("device", "Manage devices", claim, list, show, update)
}

// Images.

func (lc *legacyCLI) imageCommand() *cobra.Command {
	var af, lf, sf tenantFlag
	var file, id string
	add := lc.leaf("add", "Upload an image package", &af, func(ctx context.Context, s *session, tp string) error {
		if err := need("image", file); err != nil {
			return err
		}
		b, err := readFileArg("image", file)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.BaseURL+tp+"/images", bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		op, err := s.legacyOp(ctx, tp, req, "upload image")
		if err != nil {
			return err
		}
		imageID := lastSegment(op)
		if !ferry.IsUUID(imageID) {
			return fmt.Errorf("the upload finished but its operation names no image")
		}
		return lc.show(ctx, s, tp+"/images/"+url.PathEscape(imageID)+"/metadata", legacyImageColumns)
	})
	add.Flags().StringVar(&file, "image", "", "the image package file")
	list := lc.leaf("list", "List the tenant's images", &lf, func(ctx context.Context, s *session, tp string) error {
		return lc.list(ctx, s, tp+"/images", legacyImageColumns)
	})
	show := lc.leaf("show", "Show an image's metadata", &sf, func(ctx context.Context, s *session, tp string) error {
		if err := need("image", id); err != nil {
			return err
		}
		return lc.show(ctx, s, tp+"/images/"+url.PathEscape(id)+"/metadata", legacyImageColumns)
	})
	show.Flags().StringVarP(&id, "image", "i", "", "the image's ID")
	return group("image", "Manage images", add, list, show)
}

// Roles.

func (lc *legacyCLI) roleCommand() *cobra.Command {
	var af, lf, rf tenantFlag
	var user, role string
	change := func(verb string) func(ctx context.Context, s *session, tp string) error {
		return func(ctx context.Context, s *session, tp string) error {
			if err := need("user", user, "role", role); err != nil {
				return err
			}
			p := tp + "/users/" + url.PathEscape(user) + "/role/" + url.PathEscape(role) + "/" + verb
			return s.arm(ctx, http.MethodPost, p, nil, nil)
		}
	}
	add := lc.leaf("add", "Give a user a role in the tenant (Administrator, Contributor or Reader)", &af, change("assign"))
	remove := lc.leaf("remove", "Take a role from a user", &rf, change("unassign"))
	remove.Aliases = []string{"delete"}
	for _, c := range []*cobra.Command{add, remove} {
		c.Flags().StringVarP(&user, "user", "u", "", "the user's principal ID or e-mail")
		c.Flags().StringVarP(&role, "role", "r", "", "Administrator, Contributor or Reader")
	}
	list := lc.leaf("list", "List the tenant's users and their roles", &lf, func(ctx context.Context, s *session, tp string) error {
		var out struct {
			Principals []any
		}
		if err := s.arm(ctx, http.MethodGet, tp+"/users", nil, &out); err != nil {
			return err
		}
		if out.Principals == nil {
			out.Principals = []any{}
		}
		return lc.render(out.Principals, legacyUserColumns)
	})
	return group("role", "Manage the tenant's users and roles", add, list, remove)
}

// CA certificates.

func (lc *legacyCLI) caCertificateCommand() *cobra.Command {
	var lf, df tenantFlag
	list := lc.leaf("list", "List the tenant's CA certificates", &lf, func(ctx context.Context, s *session, tp string) error {
		var out []any
		if err := s.arm(ctx, http.MethodGet, tp+"/certificates", nil, &out); err != nil {
			return err
		}
		return lc.render(out, legacyCertColumns)
	})
	var thumbprint, outFile string
	var chain bool
	download := lc.leaf("download", "Download the tenant's CA certificate (PEM), or its chain", &df, func(ctx context.Context, s *session, tp string) error {
		p, typ := tp+"/cert", "CERTIFICATE"
		if chain {
			p, typ = tp+"/certchain", "PKCS7"
		}
		if thumbprint != "" {
			p += "?thumbprint=" + url.QueryEscape(thumbprint)
		}
		var b64 string
		if err := s.arm(ctx, http.MethodGet, p, nil, &b64); err != nil {
			return err
		}
		return s.e.writeCert(outFile, b64, typ)
	})
	download.Flags().StringVar(&thumbprint, "thumbprint", "", "the certificate's thumbprint (default: the active one)")
	download.Flags().StringVar(&outFile, "output-file", "", "where to write it (default: stdout)")
	download.Flags().BoolVar(&chain, "chain", false, "download the certificate chain (PKCS #7) instead")
	return group("ca-certificate", "Download and list the tenant's CA certificates", list, download)
}

func jsonBytes(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

func profilePath(e *env) (string, error) { return client.ProfilePath(e.getenv) }
