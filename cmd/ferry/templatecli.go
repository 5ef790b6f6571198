package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/dtdl"
	"github.com/spf13/cobra"
)

// apiCentral is the IoT Central REST API version whose shapes the hub's
// device template and device group routes follow.
const apiCentral = "2022-07-31"

var templateColumns = []column{{"Id", "@id"}, {"DisplayName", "displayName"}, {"DeviceMove", "deviceMove.supported"},
	{"Method", "deviceMove.method"}}

// deviceTemplateCommand is `ferry hub device-template`: DTDL models of
// devices, which say whether Ferry can move them. Templates are shared by
// every hub; --hub-name says through which hub's API to reach them.
func deviceTemplateCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "device-template", Short: "Import and manage device templates (DTDL models; shared by every hub)"}

	var it hubTarget
	var file string
	imp := &cobra.Command{
		Use:   "import",
		Short: "Import a DTDL interface, an array of interfaces or an IoT Central device template from a file",
		Long: `Import a device model from a JSON file: a DTDL v2 or v3 Interface, an array of
interfaces (the model with its component interfaces), or a device template
exported from IoT Central. A template with the same @id is replaced. The
output says whether Ferry can move the model's devices: through a component
whose schema is dtmi:azureiot:DeviceMigration;1 (method <component>*DeviceMove)
or a DeviceMove command at the root (method DeviceMove).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("the flag --file is required")
			}
			body, err := os.ReadFile(file)
			if err != nil {
				return usagef("--file: %v", err)
			}
			// Check here too, for a message that names the file.
			tp, err := dtdl.Parse(body)
			if err != nil {
				return usagef("%s: %v", file, err)
			}
			ctx := cmd.Context()
			s, host, err := it.resolve(ctx, e, false)
			if err != nil {
				return err
			}
			var out map[string]any
			if _, err := s.dataPlane(ctx, host, http.MethodPut, templatePath(tp.ID), body, nil, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, templateColumns)
		},
	}
	it.add(imp, false)
	imp.Flags().StringVarP(&file, "file", "f", "", "the JSON file holding the model")

	list := centralListCmd(e, format, "List device templates", "/api/deviceTemplates", templateColumns)

	show := dataShowCmd(e, format, &hubTarget{}, "Show a device template with its capability model",
		"id", "the template's @id (a DTMI)", templatePath, templateColumns)
	del := dataDeleteCmd(e, &hubTarget{}, "Delete a device template", "id", "the template's @id (a DTMI)", templatePath)

	cmd.AddCommand(imp, list, show, del)
	return cmd
}

func templatePath(id string) string {
	return "/api/deviceTemplates/" + url.PathEscape(id) + "?api-version=" + apiCentral
}

// centralList reads every page of an IoT Central-shaped list. nextLink
// carries the hub's host, which the CLI may not reach directly: only its
// centralListCmd is the list command of an IoT Central-shaped collection
// at a hub's host: every page of path, rendered with cols.
func centralListCmd(e *env, format *string, short, path string, cols []column) *cobra.Command {
	var ht hubTarget
	cmd := &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, err := ht.resolve(ctx, e, false)
			if err != nil {
				return err
			}
			all, err := centralList(ctx, s, host, path+"?api-version="+apiCentral)
			if err != nil {
				return err
			}
			return render(e.stdout, *format, all, cols)
		},
	}
	ht.add(cmd, false)
	return cmd
}

// path and query are followed, through the profile's server.
func centralList(ctx context.Context, s *session, host, path string) ([]any, error) {
	all := []any{}
	for path != "" {
		var page struct {
			Value    []any  `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if err := s.dataJSON(ctx, host, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		path = ""
		if page.NextLink != "" {
			u, err := url.Parse(page.NextLink)
			if err != nil {
				return nil, fmt.Errorf("the server sent a bad nextLink: %w", err)
			}
			path = u.EscapedPath() + "?" + u.RawQuery
		}
	}
	return all, nil
}

var hubGroupColumns = []column{{"Id", "id"}, {"DisplayName", "displayName"}, {"Filter", "filter"}, {"Description", "description"}}

// groupTarget is a hub device group addressed by --name or --id.
type groupTarget struct {
	hubTarget
	group, id string
}

func (t *groupTarget) add(cmd *cobra.Command) {
	t.hubTarget.add(cmd, false)
	cmd.Flags().StringVar(&t.group, "name", "", "the device group's name (its displayName)")
	cmd.Flags().StringVar(&t.id, "id", "", "the device group's ID, instead of its name")
}

// resolve returns the session, the hub's host and the group's ID, found by
// name (case does not count) when --id is not given.
func (t *groupTarget) resolve(ctx context.Context, e *env) (*session, string, string, error) {
	if t.group == "" && t.id == "" {
		return nil, "", "", usagef("give the device group's --name or --id")
	}
	s, host, err := t.hubTarget.resolve(ctx, e, false)
	if err != nil {
		return nil, "", "", err
	}
	if t.id != "" {
		return s, host, t.id, nil
	}
	all, err := centralList(ctx, s, host, "/api/deviceGroups?api-version="+apiCentral)
	if err != nil {
		return nil, "", "", err
	}
	for _, g := range all {
		if strings.EqualFold(str(g, "displayName"), t.group) {
			return s, host, str(g, "id"), nil
		}
	}
	return nil, "", "", fmt.Errorf("the IoT hub %s has no device group named %q", t.name, t.group)
}

func groupPath(id, suffix string) string {
	return "/api/deviceGroups/" + url.PathEscape(id) + suffix + "?api-version=" + apiCentral
}

// deviceGroupCommand is `ferry hub device-group`: IoT Central-style saved
// queries over a hub's devices, which migrations select devices by.
func deviceGroupCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "device-group", Short: "Manage a hub's device groups (saved device queries, as in IoT Central)"}

	var ct hubTarget
	var name, id, filter, desc string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a device group from a filter",
		Long: `Create a device group: a saved query over the hub's devices. --filter is IoT
Central's "SELECT * FROM devices WHERE ..." or just the condition, for
example "$template = 'dtmi:example:Thermostat;1' AND tags.site = 'berlin'".
The group's ID is --id, or a new UUID.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || filter == "" {
				return usagef("the flags --name and --filter are required")
			}
			if id == "" {
				id = ferry.NewUUID()
			}
			ctx := cmd.Context()
			s, host, err := ct.resolve(ctx, e, false)
			if err != nil {
				return err
			}
			body, err := json.Marshal(map[string]any{"displayName": name, "filter": filter, "description": desc})
			if err != nil {
				return err
			}
			var out map[string]any
			hdr := http.Header{"If-None-Match": {"*"}}
			if _, err := s.dataPlane(ctx, host, http.MethodPut, groupPath(id, ""), body, hdr, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, hubGroupColumns)
		},
	}
	ct.add(create, false)
	fl := create.Flags()
	fl.StringVar(&name, "name", "", "the group's name, unique in the hub")
	fl.StringVar(&id, "id", "", "the group's ID (default: a new UUID)")
	fl.StringVar(&filter, "filter", "", "the devices it holds: SELECT * FROM devices WHERE ..., or the condition alone")
	fl.StringVar(&desc, "description", "", "what the group is for")

	list := centralListCmd(e, format, "List a hub's device groups", "/api/deviceGroups", hubGroupColumns)

	var st groupTarget
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a device group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, gid, err := st.resolve(ctx, e)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.dataJSON(ctx, host, http.MethodGet, groupPath(gid, ""), nil, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, hubGroupColumns)
		},
	}
	st.add(show)

	var ut groupTarget
	var newName, newFilter, newDesc, etag string
	update := &cobra.Command{
		Use:   "update",
		Short: "Change a device group's name, filter or description",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			patch := map[string]any{}
			fl := cmd.Flags()
			if fl.Changed("new-name") {
				patch["displayName"] = newName
			}
			if fl.Changed("filter") {
				patch["filter"] = newFilter
			}
			if fl.Changed("description") {
				patch["description"] = newDesc
			}
			if len(patch) == 0 {
				return usagef("give --new-name, --filter or --description")
			}
			ctx := cmd.Context()
			s, host, gid, err := ut.resolve(ctx, e)
			if err != nil {
				return err
			}
			body, err := json.Marshal(patch)
			if err != nil {
				return err
			}
			hdr := http.Header{}
			if etag != "" {
				hdr.Set("If-Match", `"`+strings.Trim(etag, `"`)+`"`)
			}
			var out map[string]any
			if _, err := s.dataPlane(ctx, host, http.MethodPatch, groupPath(gid, ""), body, hdr, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, hubGroupColumns)
		},
	}
	ut.add(update)
	ufl := update.Flags()
	ufl.StringVar(&newName, "new-name", "", "the group's new name")
	ufl.StringVar(&newFilter, "filter", "", "the new filter")
	ufl.StringVar(&newDesc, "description", "", "the new description")
	ufl.StringVar(&etag, "etag", "", "update only if the group still has this etag")

	var dt groupTarget
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a device group (its devices stay)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, gid, err := dt.resolve(ctx, e)
			if err != nil {
				return err
			}
			return s.dataJSON(ctx, host, http.MethodDelete, groupPath(gid, ""), nil, nil)
		},
	}
	dt.add(del)

	var vt groupTarget
	devices := &cobra.Command{
		Use:   "devices",
		Short: "List the devices a device group's filter matches now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, gid, err := vt.resolve(ctx, e)
			if err != nil {
				return err
			}
			all, err := centralList(ctx, s, host, groupPath(gid, "/devices")+"&$top=1000")
			if err != nil {
				return err
			}
			return render(e.stdout, *format, all, []column{{"Id", "id"}, {"Enabled", "enabled"}, {"Template", "template"},
				{"ConnectionState", "connectionState"}})
		},
	}
	vt.add(devices)

	cmd.AddCommand(create, list, show, update, del, devices)
	return cmd
}
