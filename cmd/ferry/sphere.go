package main

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/spf13/cobra"
)

// newSphereCommand is `ferry sphere`, the integrated management tree,
// named and flagged like `az sphere` (sphere-surfaces.md §3).
func newSphereCommand(e *env) *cobra.Command {
	var format string
	root := &cobra.Command{
		Use:   "sphere",
		Short: "Manage catalogs, products, device groups, deployments, devices, images and CA certificates (like az sphere)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(root, &format)
	sc := &sphereCLI{e: e, format: &format}
	root.AddCommand(sc.catalogCommand(), sc.productCommand(), sc.deviceGroupCommand(), sc.deploymentCommand(),
		sc.deviceCommand(), sc.imageCommand(), sc.caCertificateCommand())
	return root
}

// sphereCLI is what every `ferry sphere` command shares.
type sphereCLI struct {
	e      *env
	format *string
}

// leaf makes a command that runs with a session.
func (sc *sphereCLI) leaf(use, short string, run func(ctx context.Context, s *session) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sc.e.session()
			if err != nil {
				return err
			}
			return run(cmd.Context(), s)
		},
	}
}

func (sc *sphereCLI) render(v any, cols []column) error {
	return render(sc.e.stdout, *sc.format, v, cols)
}

// group makes a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: groupRun}
	c.AddCommand(subs...)
	return c
}

// noArgs refuses positional arguments with a usage error (exit 2): every
// value goes in a flag, as in az.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q for %q: values go in flags; see '%s --help'", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return nil
}

// groupRun is the RunE of a command that only holds subcommands: help
// when called alone, a usage error (exit 2) for an unknown subcommand.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown command %q for %q; see '%s --help'", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return cmd.Help()
}

var (
	catalogColumns = []column{{"Name", "name"}, {"Location", "location"},
		{"TenantId", "properties.tenantId"}, {"ProvisioningState", "properties.provisioningState"}}
	productColumns     = []column{{"Name", "name"}, {"Description", "properties.description"}, {"ProvisioningState", "properties.provisioningState"}}
	deviceGroupColumns = []column{{"Name", "name"}, {"Description", "properties.description"}, {"OsFeedType", "properties.osFeedType"},
		{"UpdatePolicy", "properties.updatePolicy"}, {"AllowCrashDumpsCollection", "properties.allowCrashDumpsCollection"},
		{"RegionalDataBoundary", "properties.regionalDataBoundary"}, {"HasDeployment", "properties.hasDeployment"}}
	deploymentColumns = []column{{"Name", "name"}, {"DeploymentId", "properties.deploymentId"},
		{"DeploymentDateUtc", "properties.deploymentDateUtc"}, {"ProvisioningState", "properties.provisioningState"}}
	sphereDeviceColumns = []column{{"DeviceId", "name"}, {"Product", "product"}, {"DeviceGroup", "deviceGroup"},
		{"ChipSku", "properties.chipSku"}, {"LastInstalledOsVersion", "properties.lastInstalledOsVersion"}}
	imageColumns = []column{{"ImageId", "properties.imageId"}, {"ImageName", "properties.imageName"}, {"ComponentId", "properties.componentId"},
		{"ImageType", "properties.imageType"}, {"RegionalDataBoundary", "properties.regionalDataBoundary"}}
	certificateColumns = []column{{"Name", "name"}, {"Status", "properties.status"}, {"Subject", "properties.subject"},
		{"Thumbprint", "properties.thumbprint"}, {"ExpiryUtc", "properties.expiryUtc"}}
)

// Catalogs.

func (sc *sphereCLI) catalogCommand() *cobra.Command {
	var f sphereFlags
	var location string
	create := sc.leaf("create", "Create a catalog", func(ctx context.Context, s *session) error {
		if err := need("name", f.catalog); err != nil {
			return err
		}
		p, err := f.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		var out map[string]any
		if err := s.armDo(ctx, http.MethodPut, withAPI(p, apiSphere), map[string]any{"location": location}, &out); err != nil {
			return err
		}
		return sc.render(out, catalogColumns)
	})
	catalogNameFlags(create, &f)
	create.Flags().StringVarP(&location, "location", "l", "global", "the location")

	var lf sphereFlags
	list := sc.leaf("list", "List catalogs in a resource group or the subscription", func(ctx context.Context, s *session) error {
		sub, err := s.subscription(ctx, lf.sub)
		if err != nil {
			return err
		}
		p := "/subscriptions/" + url.PathEscape(sub)
		if rg := s.resourceGroup(lf.rg); rg != "" {
			p += "/resourceGroups/" + url.PathEscape(rg)
		}
		all, err := s.armList(ctx, withAPI(p+"/providers/Microsoft.AzureSphere/catalogs", apiSphere))
		if err != nil {
			return err
		}
		return sc.render(all, catalogColumns)
	})
	list.Flags().StringVarP(&lf.rg, "resource-group", "g", "", "list only this resource group (default: the profile's)")
	list.Flags().StringVar(&lf.sub, "subscription", "", "the subscription ID")

	var sf sphereFlags
	show := sc.leaf("show", "Show a catalog", func(ctx context.Context, s *session) error {
		return sc.get(ctx, s, &sf, "", catalogColumns)
	})
	catalogNameFlags(show, &sf)

	var uf sphereFlags
	var tags []string
	update := sc.leaf("update", "Update a catalog's tags", func(ctx context.Context, s *session) error {
		p, err := uf.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		t := map[string]string{}
		for _, kv := range tags {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("--tags: want key=value, got %q", kv)
			}
			t[k] = v
		}
		var out map[string]any
		if err := s.armDo(ctx, http.MethodPatch, withAPI(p, apiSphere), map[string]any{"tags": t}, &out); err != nil {
			return err
		}
		return sc.render(out, catalogColumns)
	})
	catalogNameFlags(update, &uf)
	update.Flags().StringSliceVar(&tags, "tags", nil, "space- or comma-separated key=value tags (replace the current ones)")

	var df sphereFlags
	del := sc.leaf("delete", "Delete a catalog", func(ctx context.Context, s *session) error {
		if err := need("name", df.catalog); err != nil {
			return err
		}
		p, err := df.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		return s.armDo(ctx, http.MethodDelete, withAPI(p, apiSphere), nil, nil)
	})
	catalogNameFlags(del, &df)
	return group("catalog", "Manage catalogs", create, list, show, update, del)
}

// catalogNameFlags are the catalog commands' -g and --name/-n (also
// --catalog/-c, as az accepts both).
func catalogNameFlags(cmd *cobra.Command, f *sphereFlags) {
	f.add(cmd)
	cmd.Flags().StringVarP(&f.catalog, "name", "n", "", "the catalog's name")
}

// get shows the resource at the catalog path plus rel.
func (sc *sphereCLI) get(ctx context.Context, s *session, f *sphereFlags, rel string, cols []column) error {
	p, err := f.catalogPath(ctx, s)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := s.arm(ctx, http.MethodGet, withAPI(p+rel, apiSphere), nil, &out); err != nil {
		return err
	}
	return sc.render(out, cols)
}

// list shows the items of the collection at the catalog path plus rel.
func (sc *sphereCLI) list(ctx context.Context, s *session, f *sphereFlags, rel string, cols []column) error {
	p, err := f.catalogPath(ctx, s)
	if err != nil {
		return err
	}
	all, err := s.armList(ctx, withAPI(p+rel, apiSphere))
	if err != nil {
		return err
	}
	return sc.render(all, cols)
}

func esc(s string) string { return url.PathEscape(s) }

// Products.

func (sc *sphereCLI) productCommand() *cobra.Command {
	type pf struct {
		sphereFlags
		name, description string
	}
	flags := func(cmd *cobra.Command, f *pf) {
		f.add(cmd)
		cmd.Flags().StringVarP(&f.name, "name", "n", "", "the product's name")
		cmd.Flags().StringVarP(&f.name, "product", "p", "", "the product's name (same as --name)")
	}
	put := func(update bool) func(f *pf) func(ctx context.Context, s *session) error {
		return func(f *pf) func(ctx context.Context, s *session) error {
			return func(ctx context.Context, s *session) error {
				if err := need("name", f.name); err != nil {
					return err
				}
				p, err := f.catalogPath(ctx, s)
				if err != nil {
					return err
				}
				method, body := http.MethodPut, map[string]any{"properties": map[string]any{"description": f.description}}
				if update {
					method = http.MethodPatch
				}
				var out map[string]any
				if err := s.armDo(ctx, method, withAPI(p+"/products/"+esc(f.name), apiSphere), body, &out); err != nil {
					return err
				}
				return sc.render(out, productColumns)
			}
		}
	}
	var cf, uf, sf, df, lf pf
	create := sc.leaf("create", "Create a product", put(false)(&cf))
	flags(create, &cf)
	create.Flags().StringVar(&cf.description, "description", "", "the product's description")
	update := sc.leaf("update", "Update a product's description", put(true)(&uf))
	flags(update, &uf)
	update.Flags().StringVar(&uf.description, "description", "", "the product's description")
	show := sc.leaf("show", "Show a product", func(ctx context.Context, s *session) error {
		if err := need("name", sf.name); err != nil {
			return err
		}
		return sc.get(ctx, s, &sf.sphereFlags, "/products/"+esc(sf.name), productColumns)
	})
	flags(show, &sf)
	list := sc.leaf("list", "List a catalog's products", func(ctx context.Context, s *session) error {
		return sc.list(ctx, s, &lf.sphereFlags, "/products", productColumns)
	})
	lf.add(list)
	del := sc.leaf("delete", "Delete a product (it must have no device groups)", func(ctx context.Context, s *session) error {
		if err := need("name", df.name); err != nil {
			return err
		}
		p, err := df.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		return s.armDo(ctx, http.MethodDelete, withAPI(p+"/products/"+esc(df.name), apiSphere), nil, nil)
	})
	flags(del, &df)
	return group("product", "Manage products", create, list, show, update, del)
}

// Device groups.

// groupFlags name a device group: --product/-p and --device-group (also
// --name/-n on the device-group commands).
type groupFlags struct {
	sphereFlags
	product, group string
}

func (g *groupFlags) add(cmd *cobra.Command, nameAlias bool) {
	g.sphereFlags.add(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&g.product, "product", "p", "", "the product's name")
	fl.StringVar(&g.group, "device-group", "", "the device group's name")
	if nameAlias {
		fl.StringVarP(&g.group, "name", "n", "", "the device group's name (same as --device-group)")
	}
}

// path returns the device group's ARM path.
func (g *groupFlags) path(ctx context.Context, s *session) (string, error) {
	if err := need("product", g.product, "device-group", g.group); err != nil {
		return "", err
	}
	p, err := g.catalogPath(ctx, s)
	if err != nil {
		return "", err
	}
	return p + "/products/" + esc(g.product) + "/deviceGroups/" + esc(g.group), nil
}

// groupSettings are the writable device group properties, flagged as az
// names them.
type groupSettings struct {
	description, osFeed, updatePolicy, crashDumps, boundary string
}

func (gs *groupSettings) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&gs.description, "description", "", "the device group's description")
	fl.StringVar(&gs.osFeed, "os-feed", "", "the OS feed: Retail or RetailEval")
	fl.StringVarP(&gs.updatePolicy, "application-update", "a", "", "the update policy: UpdateAll or No3rdPartyAppUpdates")
	fl.StringVar(&gs.updatePolicy, "update-policy", "", "same as --application-update")
	fl.StringVar(&gs.crashDumps, "allow-crash-dumps-collection", "", "Enabled or Disabled")
	fl.StringVarP(&gs.boundary, "regional-data-boundary", "r", "", "the regional data boundary: None or EU")
}

// properties returns the set fields; the server checks the enums.
func (gs *groupSettings) properties() map[string]any {
	m := map[string]any{}
	for k, v := range map[string]string{"description": gs.description, "osFeedType": gs.osFeed, "updatePolicy": gs.updatePolicy,
		"allowCrashDumpsCollection": gs.crashDumps, "regionalDataBoundary": gs.boundary} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

func (sc *sphereCLI) deviceGroupCommand() *cobra.Command {
	var cf, uf, sf, df groupFlags
	var cs, us groupSettings
	write := func(method string, f *groupFlags, gs *groupSettings) func(ctx context.Context, s *session) error {
		return func(ctx context.Context, s *session) error {
			p, err := f.path(ctx, s)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.armDo(ctx, method, withAPI(p, apiSphere), map[string]any{"properties": gs.properties()}, &out); err != nil {
				return err
			}
			return sc.render(out, deviceGroupColumns)
		}
	}
	create := sc.leaf("create", "Create a device group", write(http.MethodPut, &cf, &cs))
	cf.add(create, true)
	cs.add(create)
	update := sc.leaf("update", "Update a device group's settings", write(http.MethodPatch, &uf, &us))
	uf.add(update, true)
	us.add(update)
	show := sc.leaf("show", "Show a device group", func(ctx context.Context, s *session) error {
		p, err := sf.path(ctx, s)
		if err != nil {
			return err
		}
		var out map[string]any
		if err := s.arm(ctx, http.MethodGet, withAPI(p, apiSphere), nil, &out); err != nil {
			return err
		}
		return sc.render(out, deviceGroupColumns)
	})
	sf.add(show, true)
	del := sc.leaf("delete", "Delete a device group", func(ctx context.Context, s *session) error {
		p, err := df.path(ctx, s)
		if err != nil {
			return err
		}
		return s.armDo(ctx, http.MethodDelete, withAPI(p, apiSphere), nil, nil)
	})
	df.add(del, true)

	var lf groupFlags
	list := sc.leaf("list", "List the device groups of a product, or of the whole catalog", func(ctx context.Context, s *session) error {
		p, err := lf.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		var all []any
		if lf.product != "" {
			all, err = s.armList(ctx, withAPI(p+"/products/"+esc(lf.product)+"/deviceGroups", apiSphere))
		} else {
			all, err = s.armPostList(ctx, withAPI(p+"/listDeviceGroups", apiSphere), map[string]any{})
		}
		if err != nil {
			return err
		}
		return sc.render(all, deviceGroupColumns)
	})
	lf.sphereFlags.add(list)
	list.Flags().StringVarP(&lf.product, "product", "p", "", "list only this product's device groups")

	var ddf groupFlags
	defaults := sc.leaf("create-defaults", "Create a product's default device groups", func(ctx context.Context, s *session) error {
		if err := need("product", ddf.product); err != nil {
			return err
		}
		p, err := ddf.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		all, err := s.armPostList(ctx, withAPI(p+"/products/"+esc(ddf.product)+"/generateDefaultDeviceGroups", apiSphere), nil)
		if err != nil {
			return err
		}
		return sc.render(all, deviceGroupColumns)
	})
	ddf.sphereFlags.add(defaults)
	defaults.Flags().StringVarP(&ddf.product, "product", "p", "", "the product's name")
	return group("device-group", "Manage device groups", create, createDefaultsAlias(defaults), list, show, update, del)
}

func createDefaultsAlias(c *cobra.Command) *cobra.Command {
	c.Aliases = []string{"create-default"}
	return c
}

// Deployments.

func (sc *sphereCLI) deploymentCommand() *cobra.Command {
	var cf, lf, sf groupFlags
	var images []string
	var deploymentID, name string
	create := sc.leaf("create", "Deploy images to a device group", func(ctx context.Context, s *session) error {
		if len(images) == 0 {
			return usagef("the flag --images is required")
		}
		p, err := cf.path(ctx, s)
		if err != nil {
			return err
		}
		var imgs []any
		for _, id := range images {
			imgs = append(imgs, map[string]any{"properties": map[string]any{"imageId": id}})
		}
		props := map[string]any{"deployedImages": imgs}
		if deploymentID != "" {
			props["deploymentId"] = deploymentID
		}
		var out map[string]any
		path := withAPI(p+"/deployments/"+esc(ferry.DefaultName), apiSphere)
		if err := s.armDo(ctx, http.MethodPut, path, map[string]any{"properties": props}, &out); err != nil {
			return err
		}
		return sc.render(out, deploymentColumns)
	})
	cf.add(create, false)
	create.Flags().StringSliceVar(&images, "images", nil, "the IDs of the images to deploy")
	create.Flags().StringVar(&deploymentID, "deployment-id", "", "the deployment's ID (a GUID; default: a new one)")
	list := sc.leaf("list", "List a device group's deployments", func(ctx context.Context, s *session) error {
		p, err := lf.path(ctx, s)
		if err != nil {
			return err
		}
		all, err := s.armList(ctx, withAPI(p+"/deployments", apiSphere))
		if err != nil {
			return err
		}
		return sc.render(all, deploymentColumns)
	})
	lf.add(list, false)
	show := sc.leaf("show", "Show a deployment (default: the device group's current one)", func(ctx context.Context, s *session) error {
		p, err := sf.path(ctx, s)
		if err != nil {
			return err
		}
		if name == "" {
			name = ferry.DefaultName
		}
		var out map[string]any
		if err := s.arm(ctx, http.MethodGet, withAPI(p+"/deployments/"+esc(name), apiSphere), nil, &out); err != nil {
			return err
		}
		return sc.render(out, deploymentColumns)
	})
	sf.add(show, false)
	show.Flags().StringVar(&name, "deployment-id", "", "the deployment's name or ID (default: .default, the current one)")
	show.Flags().StringVar(&name, "deployment-name", "", "same as --deployment-id")
	return group("deployment", "Manage deployments", create, list, show)
}

// Devices.

// unassigned is the product and device group name of the catalog level.
const unassigned = ".unassigned"

// findDevice returns a device of the catalog by ID, wherever it is.
func (s *session) findDevice(ctx context.Context, catalog, id string) (map[string]any, error) {
	all, err := s.armPostList(ctx, withAPI(catalog+"/listDevices", apiSphere, "$filter", "deviceId eq '"+id+"'"), nil)
	if err != nil {
		return nil, err
	}
	for _, x := range all {
		if m, ok := x.(map[string]any); ok && strings.EqualFold(str(m, "name"), id) {
			return withPlace(m), nil
		}
	}
	return nil, fmt.Errorf("the device '%s' was not found in the catalog (ResourceNotFound)", id)
}

// withPlace adds the device's product and device group names, read from
// its resource ID, for tables.
func withPlace(m map[string]any) map[string]any {
	segs := strings.Split(str(m, "id"), "/")
	for i := 0; i+1 < len(segs); i++ {
		switch strings.ToLower(segs[i]) {
		case "products":
			m["product"] = segs[i+1]
		case "devicegroups":
			m["deviceGroup"] = segs[i+1]
		}
	}
	return m
}

func (sc *sphereCLI) deviceCommand() *cobra.Command {
	var cf groupFlags
	var ids []string
	claim := sc.leaf("claim", "Claim devices to the catalog, or straight into a device group (irreversible)", func(ctx context.Context, s *session) error {
		if len(ids) == 0 {
			return usagef("the flag --device (-d) is required")
		}
		if cf.product == "" && cf.group == "" {
			cf.product, cf.group = unassigned, unassigned
		}
		p, err := cf.path(ctx, s)
		if err != nil {
			return err
		}
		body := map[string]any{"deviceIdentifiers": ids}
		if err := s.armDo(ctx, http.MethodPost, withAPI(p+"/claimDevices", apiSphere), body, nil); err != nil {
			return err
		}
		cat, _ := cf.catalogPath(ctx, s)
		var out []any
		for _, id := range ids {
			d, err := s.findDevice(ctx, cat, id)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return sc.render(out, sphereDeviceColumns)
	})
	cf.add(claim, false)
	claim.Flags().StringSliceVarP(&ids, "device", "d", nil, "the IDs of the devices to claim (at most 1,000)")

	var lf groupFlags
	list := sc.leaf("list", "List the devices of the catalog, a product or a device group", func(ctx context.Context, s *session) error {
		p, err := lf.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		var all []any
		if lf.group != "" {
			g, err := lf.path(ctx, s)
			if err != nil {
				return err
			}
			all, err = s.armList(ctx, withAPI(g+"/devices", apiSphere))
			if err != nil {
				return err
			}
		} else if all, err = s.armPostList(ctx, withAPI(p+"/listDevices", apiSphere), nil); err != nil {
			return err
		}
		out := []any{}
		for _, x := range all {
			m, ok := x.(map[string]any)
			if !ok {
				continue
			}
			m = withPlace(m)
			if lf.product != "" && !strings.EqualFold(str(m, "product"), lf.product) {
				continue
			}
			out = append(out, m)
		}
		return sc.render(out, sphereDeviceColumns)
	})
	lf.add(list, false)

	var sf groupFlags
	var showID string
	show := sc.leaf("show", "Show a device", func(ctx context.Context, s *session) error {
		if err := need("device", showID); err != nil {
			return err
		}
		p, err := sf.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		d, err := s.findDevice(ctx, p, showID)
		if err != nil {
			return err
		}
		return sc.render(d, sphereDeviceColumns)
	})
	sf.sphereFlags.add(show)
	show.Flags().StringVarP(&showID, "device", "d", "", "the device's ID")

	move := func(target *groupFlags, id *string, toCatalog bool) func(ctx context.Context, s *session) error {
		return func(ctx context.Context, s *session) error {
			if err := need("device", *id); err != nil {
				return err
			}
			if toCatalog {
				target.product, target.group = unassigned, unassigned
			}
			if err := need("target-product", target.product, "target-device-group", target.group); err != nil {
				return err
			}
			p, err := target.catalogPath(ctx, s)
			if err != nil {
				return err
			}
			d, err := s.findDevice(ctx, p, *id)
			if err != nil {
				return err
			}
			groupID := p + "/products/" + esc(target.product) + "/deviceGroups/" + esc(target.group)
			var out map[string]any
			body := map[string]any{"properties": map[string]any{"deviceGroupId": groupID}}
			if err := s.armDo(ctx, http.MethodPatch, withAPI(str(d, "id"), apiSphere), body, &out); err != nil {
				return err
			}
			return sc.render(withPlace(out), sphereDeviceColumns)
		}
	}
	var af, uf groupFlags
	var aid, uid string
	assign := sc.leaf("assign", "Move a device into a device group", move(&af, &aid, false))
	assign.Aliases = []string{"move"}
	af.sphereFlags.add(assign)
	assign.Flags().StringVarP(&aid, "device", "d", "", "the device's ID")
	assign.Flags().StringVar(&af.product, "target-product", "", "the product of the device group to move to")
	assign.Flags().StringVar(&af.group, "target-device-group", "", "the device group to move to")
	assign.Flags().StringVar(&af.group, "targeted-device-group", "", "same as --target-device-group")
	unassign := sc.leaf("unassign", "Move a device back to the catalog level", move(&uf, &uid, true))
	uf.sphereFlags.add(unassign)
	unassign.Flags().StringVarP(&uid, "device", "d", "", "the device's ID")

	var cnt groupFlags
	count := sc.leaf("show-count", "Count the devices of the catalog, a product or a device group", func(ctx context.Context, s *session) error {
		p, err := cnt.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		switch {
		case cnt.group != "":
			if p, err = cnt.path(ctx, s); err != nil {
				return err
			}
		case cnt.product != "":
			p += "/products/" + esc(cnt.product)
		}
		var out map[string]any
		if _, err := s.c.Do(ctx, http.MethodPost, withAPI(p+"/countDevices", apiSphere), nil, &out); err != nil {
			return err
		}
		return sc.render(out, []column{{"Value", "value"}})
	})
	cnt.add(count, false)
	return group("device", "Manage devices", claim, list, show, assign, unassign, count)
}

// Images.

func (sc *sphereCLI) imageCommand() *cobra.Command {
	var af sphereFlags
	var file, boundary, imageID string
	add := sc.leaf("add", "Upload an image package to the catalog", func(ctx context.Context, s *session) error {
		if err := need("image", file); err != nil {
			return err
		}
		b, err := readFileArg("image", file)
		if err != nil {
			return err
		}
		p, err := af.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		if imageID == "" {
			imageID = ferry.NewUUID()
		}
		props := map[string]any{"image": base64.StdEncoding.EncodeToString(b), "imageId": imageID}
		if boundary != "" {
			props["regionalDataBoundary"] = boundary
		}
		var out map[string]any
		if err := s.armDo(ctx, http.MethodPut, withAPI(p+"/images/"+esc(imageID), apiSphere), map[string]any{"properties": props}, &out); err != nil {
			return err
		}
		return sc.render(out, imageColumns)
	})
	af.add(add)
	add.Flags().StringVar(&file, "image", "", "the image package file")
	add.Flags().StringVar(&file, "image-path", "", "same as --image")
	add.Flags().StringVarP(&boundary, "regional-data-boundary", "r", "", "None or EU")
	add.Flags().StringVar(&imageID, "image-id", "", "the image's ID (a GUID; default: a new one)")

	var lf sphereFlags
	list := sc.leaf("list", "List the catalog's images", func(ctx context.Context, s *session) error {
		return sc.list(ctx, s, &lf, "/images", imageColumns)
	})
	lf.add(list)
	var sf sphereFlags
	var id string
	show := sc.leaf("show", "Show an image", func(ctx context.Context, s *session) error {
		if err := need("image", id); err != nil {
			return err
		}
		return sc.get(ctx, s, &sf, "/images/"+esc(id), imageColumns)
	})
	sf.add(show)
	show.Flags().StringVar(&id, "image", "", "the image's ID")
	return group("image", "Manage images", add, list, show)
}

// CA certificates.

func (sc *sphereCLI) caCertificateCommand() *cobra.Command {
	var lf sphereFlags
	list := sc.leaf("list", "List the catalog's CA certificates", func(ctx context.Context, s *session) error {
		return sc.list(ctx, s, &lf, "/certificates", certificateColumns)
	})
	lf.add(list)

	type dl struct {
		sphereFlags
		serial, outFile, code string
	}
	flags := func(cmd *cobra.Command, d *dl) {
		d.add(cmd)
		cmd.Flags().StringVar(&d.serial, "serial-number", "", "the certificate's serial number (default: the active one)")
		cmd.Flags().StringVar(&d.outFile, "output-file", "", "where to write it (default: stdout)")
	}
	certPath := func(ctx context.Context, s *session, d *dl) (string, error) {
		p, err := d.catalogPath(ctx, s)
		if err != nil {
			return "", err
		}
		if d.serial == "" {
			d.serial = ferry.DefaultName
		}
		return p + "/certificates/" + esc(d.serial), nil
	}
	var df, cf, pf dl
	download := sc.leaf("download", "Download a CA certificate (PEM)", func(ctx context.Context, s *session) error {
		p, err := certPath(ctx, s, &df)
		if err != nil {
			return err
		}
		var out map[string]any
		if err := s.arm(ctx, http.MethodGet, withAPI(p, apiSphere), nil, &out); err != nil {
			return err
		}
		return sc.e.writeCert(df.outFile, str(out, "properties.certificate"), "CERTIFICATE")
	})
	flags(download, &df)
	chain := sc.leaf("download-chain", "Download a CA certificate's chain (PKCS #7, .p7b)", func(ctx context.Context, s *session) error {
		p, err := certPath(ctx, s, &cf)
		if err != nil {
			return err
		}
		var out map[string]any
		if _, err := s.c.Do(ctx, http.MethodPost, withAPI(p+"/retrieveCertChain", apiSphere), nil, &out); err != nil {
			return err
		}
		return sc.e.writeCert(cf.outFile, str(out, "certificateChain"), "PKCS7")
	})
	flags(chain, &cf)
	proof := sc.leaf("download-proof", "Download a proof-of-possession certificate for a verification code", func(ctx context.Context, s *session) error {
		if err := need("verification-code", pf.code); err != nil {
			return err
		}
		p, err := certPath(ctx, s, &pf)
		if err != nil {
			return err
		}
		var out map[string]any
		body := map[string]any{"proofOfPossessionNonce": pf.code}
		if _, err := s.c.Do(ctx, http.MethodPost, withAPI(p+"/retrieveProofOfPossessionNonce", apiSphere), body, &out); err != nil {
			return err
		}
		return sc.e.writeCert(pf.outFile, str(out, "certificate"), "CERTIFICATE")
	})
	flags(proof, &pf)
	proof.Flags().StringVar(&pf.code, "verification-code", "", "the verification code (nonce) the provisioning service gave")
	return group("ca-certificate", "Download and list the catalog's CA certificates", list, download, chain, proof)
}

// writeCert writes base64 DER as PEM to a file, or to stdout when file is "".
func (e *env) writeCert(file, b64, pemType string) error {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(der) == 0 {
		return fmt.Errorf("the server sent no certificate")
	}
	out := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
	if file == "" {
		_, err = e.stdout.Write(out)
		return err
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		return fmt.Errorf("write --output-file: %w", err)
	}
	return nil
}
