package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry/sas"
	"github.com/spf13/cobra"
)

// newDPSCommand is `ferry dps`, named and flagged like `az iot dps`.
func newDPSCommand(e *env) *cobra.Command {
	var format string
	dps := &cobra.Command{
		Use:   "dps",
		Short: "Manage device provisioning services, their linked hubs and enrollments",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(dps, &format)
	o := &format
	dps.AddCommand(dpsCreate(e, o), dpsList(e, o), dpsShow(e, o), dpsDelete(e),
		enrollmentGroupCommand(e, o), enrollmentCommand(e, o), linkedHubCommand(e, o),
		registrationCommand(e, o))
	return dps
}

var dpsColumns = []column{{"Name", "name"}, {"IdScope", "properties.idScope"}, {"ServiceHostName", "properties.serviceOperationsHostName"},
	{"AllocationPolicy", "properties.allocationPolicy"}, {"Location", "location"}}

func dpsCreate(e *env, format *string) *cobra.Command {
	var f armFlags
	var host, location, allocation string
	var links []string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a provisioning service (or update it), optionally linked to hubs",
		Long: `Create a provisioning service (or update it). Each --link-hub names an IoT hub
of the subscription; its iothubowner connection string is read with listkeys
and sent to the service, as 'az iot dps linked-hub create' does. An update
replaces the linked hubs with those given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy, ok := map[string]string{"hashed": "Hashed", "geolatency": "GeoLatency", "static": "Static"}[strings.ToLower(allocation)]
			if !ok {
				return usagef("unknown --allocation-policy %q: use hashed, geolatency or static", allocation)
			}
			ctx := cmd.Context()
			s, err := e.session()
			if err != nil {
				return err
			}
			sub, rg, err := f.place(ctx, s, "name")
			if err != nil {
				return err
			}
			hubs := []any{}
			for _, name := range links {
				cs, err := s.hubConnectionString(ctx, sub, name)
				if err != nil {
					return fmt.Errorf("link hub %s: %w", name, err)
				}
				hubs = append(hubs, map[string]any{"connectionString": cs, "location": location})
			}
			body := map[string]any{"location": location, "sku": map[string]any{"name": "S1", "capacity": 1},
				"properties": map[string]any{"serviceOperationsHostName": host, "allocationPolicy": policy, "iotHubs": hubs}}
			var out map[string]any
			if err := s.arm(ctx, http.MethodPut, armScope(sub, rg, kindDPS.path)+"/"+url.PathEscape(f.name)+"?api-version="+apiDPS, body, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, dpsColumns)
		},
	}
	f.add(cmd, "name", "provisioning service")
	fl := cmd.Flags()
	fl.StringVar(&host, "host-name", "", "the service API's host name (default {name}.localhost)")
	fl.StringVarP(&location, "location", "l", "global", "the location")
	fl.StringVar(&allocation, "allocation-policy", "hashed", "how devices are spread over linked hubs: hashed, geolatency or static")
	fl.StringArrayVar(&links, "link-hub", nil, "link this IoT hub (by name); repeat for several")
	return cmd
}

// hubConnectionString finds a hub in the subscription and builds its
// iothubowner connection string from listkeys.
func (s *session) hubConnectionString(ctx context.Context, sub, name string) (string, error) {
	hub, err := s.findResource(ctx, kindHub, sub, "", name)
	if err != nil {
		return "", err
	}
	keys, err := s.listKeys(ctx, str(hub, "id"), apiHubs)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.KeyName == "iothubowner" || strings.Contains(k.Rights, "RegistryWrite") && strings.Contains(k.Rights, "ServiceConnect") {
			return "HostName=" + str(hub, "properties.hostName") + ";SharedAccessKeyName=" + k.KeyName + ";SharedAccessKey=" + k.PrimaryKey, nil
		}
	}
	return "", fmt.Errorf("the IoT hub %s has no policy with RegistryWrite and ServiceConnect rights", name)
}

func dpsList(e *env, format *string) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List provisioning services in a resource group or the subscription",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listResources(cmd.Context(), e, *format, kindDPS, f, dpsColumns)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.rg, "resource-group", "g", "", "list only this resource group")
	fl.StringVar(&f.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
	return cmd
}

func dpsShow(e *env, format *string) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a provisioning service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showResource(cmd.Context(), e, *format, kindDPS, f, dpsColumns)
		},
	}
	f.add(cmd, "name", "provisioning service")
	return cmd
}

func dpsDelete(e *env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a provisioning service and its enrollments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return deleteResource(cmd.Context(), e, kindDPS, f)
		},
	}
	f.add(cmd, "name", "provisioning service")
	return cmd
}

// dpsTarget is an enrollment addressed by a data-plane command.
type dpsTarget struct {
	armFlags
	id string
}

func (t *dpsTarget) add(cmd *cobra.Command, id bool) {
	fl := cmd.Flags()
	fl.StringVarP(&t.name, "dps-name", "n", "", "the provisioning service's name")
	fl.StringVarP(&t.rg, "resource-group", "g", "", "the service's resource group (default: found in the subscription)")
	fl.StringVar(&t.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
	if id {
		fl.StringVar(&t.id, "enrollment-id", "", "the enrollment's ID")
	}
}

// resolve checks the flags and returns the session and the service's host.
func (t *dpsTarget) resolve(ctx context.Context, e *env, id bool) (*session, string, error) {
	if t.name == "" {
		return nil, "", usagef("the flag --dps-name (-n) is required")
	}
	if id && t.id == "" {
		return nil, "", usagef("the flag --enrollment-id is required")
	}
	s, err := e.session()
	if err != nil {
		return nil, "", err
	}
	host, err := s.resourceHost(ctx, kindDPS, t.sub, t.rg, t.name)
	if err != nil {
		return nil, "", err
	}
	return s, host, nil
}

// enrollmentFlags are what groups and individual enrollments share.
type enrollmentFlags struct {
	cert, cert2, pk, sk, status, hubs, allocation, reprovision, tags, desired, symKey string
	edge                                                                              bool
}

func (f *enrollmentFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.cert, "certificate-path", "", "a PEM certificate: the group's signing CA, or the device's own")
	fl.StringVar(&f.cert2, "secondary-certificate-path", "", "a second PEM certificate")
	fl.StringVar(&f.pk, "primary-key", "", "the primary symmetric key (base64); generated if empty")
	fl.StringVar(&f.sk, "secondary-key", "", "the secondary symmetric key (base64); generated if empty")
	fl.StringVar(&f.symKey, "symmetric-key", "auto", "shorthand: auto generates both keys, anything else is the primary key")
	fl.StringVar(&f.status, "provisioning-status", "enabled", "enabled or disabled")
	fl.StringVar(&f.hubs, "iot-hubs", "", "host names of linked hubs to allocate to, separated by spaces or commas")
	fl.StringVar(&f.allocation, "allocation-policy", "", "hashed, geoLatency or static (default: the service's)")
	fl.StringVar(&f.reprovision, "reprovision-policy", "reprovisionandmigratedata", "reprovisionandmigratedata, reprovisionandresetdata or never")
	fl.BoolVar(&f.edge, "edge-enabled", false, "mark devices as IoT Edge devices")
	fl.StringVar(&f.tags, "initial-twin-tags", "", "initial twin tags, as JSON or @file")
	fl.StringVar(&f.desired, "initial-twin-properties", "", "initial desired properties, as JSON or @file")
}

// body builds the members both enrollment kinds share.
func (f *enrollmentFlags) body() (map[string]any, error) {
	b := map[string]any{"provisioningStatus": f.status, "capabilities": map[string]any{"iotEdge": f.edge}}
	switch f.status {
	case "enabled", "disabled":
	default:
		return nil, usagef("unknown --provisioning-status %q: use enabled or disabled", f.status)
	}
	rp := map[string]map[string]bool{
		"reprovisionandmigratedata": {"updateHubAssignment": true, "migrateDeviceData": true},
		"reprovisionandresetdata":   {"updateHubAssignment": true, "migrateDeviceData": false},
		"never":                     {"updateHubAssignment": false, "migrateDeviceData": false},
	}[strings.ToLower(f.reprovision)]
	if rp == nil {
		return nil, usagef("unknown --reprovision-policy %q", f.reprovision)
	}
	b["reprovisionPolicy"] = rp
	if f.allocation != "" {
		b["allocationPolicy"] = f.allocation
	}
	if f.hubs != "" {
		b["iotHubs"] = strings.FieldsFunc(f.hubs, func(r rune) bool { return r == ' ' || r == ',' })
	}
	if f.tags != "" || f.desired != "" {
		twin := map[string]any{}
		if f.tags != "" {
			t, err := jsonArg("initial-twin-tags", f.tags)
			if err != nil {
				return nil, err
			}
			twin["tags"] = t
		}
		if f.desired != "" {
			d, err := jsonArg("initial-twin-properties", f.desired)
			if err != nil {
				return nil, err
			}
			twin["properties"] = map[string]any{"desired": d}
		}
		b["initialTwin"] = twin
	}
	return b, nil
}

// certs reads the PEM files of the certificate flags.
func (f *enrollmentFlags) certs() (primary, secondary map[string]any, err error) {
	read := func(flag, path string) (map[string]any, error) {
		if path == "" {
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usagef("--%s: %v", flag, err)
		}
		return map[string]any{"certificate": string(b)}, nil
	}
	if primary, err = read("certificate-path", f.cert); err != nil {
		return nil, nil, err
	}
	secondary, err = read("secondary-certificate-path", f.cert2)
	return primary, secondary, err
}

func symmetricKey(f *enrollmentFlags) map[string]any {
	if f.pk == "" && f.symKey != "auto" {
		f.pk = f.symKey
	}
	return map[string]any{"type": "symmetricKey", "symmetricKey": map[string]any{"primaryKey": nilIfEmpty(f.pk), "secondaryKey": nilIfEmpty(f.sk)}}
}

var enrollmentGroupColumns = []column{{"EnrollmentGroupId", "enrollmentGroupId"}, {"Attestation", "attestation.type"},
	{"ProvisioningStatus", "provisioningStatus"}, {"AllocationPolicy", "allocationPolicy"}, {"Etag", "etag"}}

var enrollmentColumns = []column{{"RegistrationId", "registrationId"}, {"DeviceId", "deviceId"}, {"Attestation", "attestation.type"},
	{"ProvisioningStatus", "provisioningStatus"}, {"Etag", "etag"}}

// enrollmentKind is where groups and individual enrollments differ.
type enrollmentKind struct {
	path, what string
	cols       []column
}

var (
	groupKind      = enrollmentKind{path: "/enrollmentGroups/", what: "enrollment group", cols: enrollmentGroupColumns}
	individualKind = enrollmentKind{path: "/enrollments/", what: "individual enrollment", cols: enrollmentColumns}
)

func enrollmentGroupCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "enrollment-group", Short: "Manage enrollment groups"}
	var t dpsTarget
	var f enrollmentFlags
	var caName string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create or update an enrollment group: symmetric keys unless a certificate or CA is given",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := f.body()
			if err != nil {
				return err
			}
			p, sec, err := f.certs()
			if err != nil {
				return err
			}
			switch {
			case p != nil || caName != "":
				x := map[string]any{}
				if caName != "" {
					x["caReferences"] = map[string]any{"primary": caName}
				} else {
					x["signingCertificates"] = map[string]any{"primary": p, "secondary": sec}
				}
				body["attestation"] = map[string]any{"type": "x509", "x509": x}
			default:
				body["attestation"] = symmetricKey(&f)
			}
			body["enrollmentGroupId"] = t.id
			return putEnrollment(cmd.Context(), e, *format, &t, groupKind, body)
		},
	}
	t.add(create, true)
	f.add(create)
	create.Flags().StringVar(&caName, "root-ca-name", "", "a CA certificate registered with the service, by name")

	var t2 dpsTarget
	cdk := &cobra.Command{
		Use:   "compute-device-key",
		Short: "Derive a device's symmetric key from a group key and a registration ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, _ := cmd.Flags().GetString("key")
			reg, _ := cmd.Flags().GetString("registration-id")
			if reg == "" {
				return usagef("the flag --registration-id is required")
			}
			if key == "" {
				if t2.name == "" || t2.id == "" {
					return usagef("give --key, or --dps-name and --enrollment-id")
				}
				ctx := cmd.Context()
				s, host, err := t2.resolve(ctx, e, true)
				if err != nil {
					return err
				}
				var g map[string]any
				if err := s.dataJSON(ctx, host, http.MethodGet, groupKind.path+url.PathEscape(t2.id)+"?api-version="+apiDPSService, nil, &g); err != nil {
					return err
				}
				if key = str(g, "attestation.symmetricKey.primaryKey"); key == "" {
					return fmt.Errorf("the enrollment group %s has no symmetric key", t2.id)
				}
			}
			k, err := sas.DeriveDeviceKey(key, reg)
			if err != nil {
				return usagef("--key: %v", err)
			}
			return render(e.stdout, *format, k, nil)
		},
	}
	t2.add(cdk, true)
	cdk.Flags().String("key", "", "the group's symmetric key (default: read from the group)")
	cdk.Flags().String("registration-id", "", "the device's registration ID")

	cmd.AddCommand(create, enrollmentList(e, format, groupKind), enrollmentShow(e, format, groupKind),
		enrollmentDelete(e, groupKind), cdk, groupRegistrationsCommand(e, format))
	return cmd
}

func enrollmentCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "enrollment", Short: "Manage individual enrollments"}
	var t dpsTarget
	var f enrollmentFlags
	var attestation, deviceID string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create or update an individual enrollment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := f.body()
			if err != nil {
				return err
			}
			switch strings.ToLower(attestation) {
			case "symmetrickey":
				body["attestation"] = symmetricKey(&f)
			case "x509":
				p, sec, err := f.certs()
				if err != nil {
					return err
				}
				if p == nil {
					return usagef("--attestation-type x509 needs --certificate-path")
				}
				body["attestation"] = map[string]any{"type": "x509", "x509": map[string]any{"clientCertificates": map[string]any{"primary": p, "secondary": sec}}}
			case "tpm":
				return usagef("TPM attestation is not supported")
			default:
				return usagef("unknown --attestation-type %q: use symmetrickey or x509", attestation)
			}
			body["registrationId"] = t.id
			if deviceID != "" {
				body["deviceId"] = deviceID
			}
			return putEnrollment(cmd.Context(), e, *format, &t, individualKind, body)
		},
	}
	t.add(create, true)
	f.add(create)
	create.Flags().StringVar(&attestation, "attestation-type", "symmetrickey", "symmetrickey or x509")
	create.Flags().StringVar(&deviceID, "device-id", "", "the device ID to register (default: the registration ID)")

	cmd.AddCommand(create, enrollmentList(e, format, individualKind), enrollmentShow(e, format, individualKind),
		enrollmentDelete(e, individualKind))
	return cmd
}

func putEnrollment(ctx context.Context, e *env, format string, t *dpsTarget, k enrollmentKind, body map[string]any) error {
	s, host, err := t.resolve(ctx, e, true)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := s.dataJSON(ctx, host, http.MethodPut, k.path+url.PathEscape(t.id)+"?api-version="+apiDPSService, body, &out); err != nil {
		return err
	}
	return render(e.stdout, format, out, k.cols)
}

func enrollmentList(e *env, format *string, k enrollmentKind) *cobra.Command {
	var t dpsTarget
	var top int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + k.what + "s (without keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if top < 0 {
				return usagef("--top must be 0 (all) or more")
			}
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, false)
			if err != nil {
				return err
			}
			all := []any{}
			cont := ""
			for {
				size := 100
				if top > 0 && top-len(all) < size {
					size = top - len(all)
				}
				hdr := http.Header{"X-Ms-Max-Item-Count": {strconv.Itoa(size)}}
				if cont != "" {
					hdr.Set("x-ms-continuation", cont)
				}
				var page []any
				resp, err := s.dataPlane(ctx, host, http.MethodPost, k.path+"query?api-version="+apiDPSService, []byte(`{"query":"*"}`), hdr, &page)
				if err != nil {
					return err
				}
				all = append(all, page...)
				cont = resp.Header.Get("x-ms-continuation")
				if cont == "" || (top > 0 && len(all) >= top) {
					break
				}
			}
			for _, x := range all {
				stripKeys(x)
			}
			return render(e.stdout, *format, all, k.cols)
		},
	}
	t.add(cmd, false)
	cmd.Flags().IntVar(&top, "top", 0, "at most this many (0: all)")
	return cmd
}

func enrollmentShow(e *env, format *string, k enrollmentKind) *cobra.Command {
	var t dpsTarget
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show an " + k.what + ", with its keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.dataJSON(ctx, host, http.MethodGet, k.path+url.PathEscape(t.id)+"?api-version="+apiDPSService, nil, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, k.cols)
		},
	}
	t.add(cmd, true)
	return cmd
}

func enrollmentDelete(e *env, k enrollmentKind) *cobra.Command {
	var t dpsTarget
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete an " + k.what,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			return s.dataJSON(ctx, host, http.MethodDelete, k.path+url.PathEscape(t.id)+"?api-version="+apiDPSService, nil, nil)
		},
	}
	t.add(cmd, true)
	return cmd
}

// linkedHubCommand is `ferry dps linked-hub`, as `az iot dps linked-hub`.
// The service's GET masks linked hubs' keys, so every change rebuilds the
// whole list from the hubs' listkeys and writes it back, guarded by the
// service's etag.
func linkedHubCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "linked-hub", Short: "Link IoT hubs to a provisioning service and unlink them"}
	linkedColumns := []column{{"Name", "name"}, {"AllocationWeight", "allocationWeight"}, {"ApplyAllocationPolicy", "applyAllocationPolicy"}}

	var lt dpsTarget
	list := &cobra.Command{
		Use:   "list",
		Short: "List a provisioning service's linked hubs (keys masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lt.name == "" {
				return usagef("the flag --dps-name (-n) is required")
			}
			s, err := e.session()
			if err != nil {
				return err
			}
			ps, err := s.findResource(cmd.Context(), kindDPS, lt.sub, lt.rg, lt.name)
			if err != nil {
				return err
			}
			hubs, _ := ps["properties"].(map[string]any)["iotHubs"].([]any)
			if hubs == nil {
				hubs = []any{}
			}
			return render(e.stdout, *format, hubs, linkedColumns)
		},
	}
	lt.add(list, false)

	var ct dpsTarget
	var hubName string
	var weight int
	var apply bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Link an IoT hub (by name) to a provisioning service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hubName == "" {
				return usagef("the flag --hub-name is required")
			}
			return editLinks(cmd.Context(), e, *format, &ct, func(ctx context.Context, s *session, sub string, links []any) ([]any, error) {
				hub, err := s.findResource(ctx, kindHub, sub, "", hubName)
				if err != nil {
					return nil, err
				}
				host := str(hub, "properties.hostName")
				for _, l := range links {
					if strings.EqualFold(str(l, "name"), host) {
						return nil, fmt.Errorf("the IoT hub %s is already linked", hubName)
					}
				}
				return append(links, map[string]any{"name": host, "allocationWeight": weight, "applyAllocationPolicy": apply}), nil
			})
		},
	}
	ct.add(create, false)
	create.Flags().StringVar(&hubName, "hub-name", "", "the IoT hub to link")
	create.Flags().IntVar(&weight, "allocation-weight", 1, "the hub's weight under weighted allocation")
	create.Flags().BoolVar(&apply, "apply-allocation-policy", true, "allocate devices to this hub")

	var dt dpsTarget
	var linked string
	del := &cobra.Command{
		Use:   "delete",
		Short: "Unlink an IoT hub (by host name or name) from a provisioning service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if linked == "" {
				return usagef("the flag --linked-hub is required")
			}
			return editLinks(cmd.Context(), e, *format, &dt, func(ctx context.Context, s *session, sub string, links []any) ([]any, error) {
				host := linked
				if !strings.Contains(linked, ".") {
					if hub, err := s.findResource(ctx, kindHub, sub, "", linked); err == nil {
						host = str(hub, "properties.hostName")
					}
				}
				var out []any
				for _, l := range links {
					if !strings.EqualFold(str(l, "name"), host) {
						out = append(out, l)
					}
				}
				if len(out) == len(links) {
					return nil, fmt.Errorf("the IoT hub %s is not linked", linked)
				}
				return out, nil
			})
		},
	}
	dt.add(del, false)
	del.Flags().StringVar(&linked, "linked-hub", "", "the linked hub's host name, or the hub's name")

	cmd.AddCommand(create, list, del)
	return cmd
}

// editLinks reads a provisioning service, lets edit change its linked hubs
// (each {"name": host, "allocationWeight", "applyAllocationPolicy"}), and
// writes the service back with fresh connection strings.
func editLinks(ctx context.Context, e *env, format string, t *dpsTarget, edit func(context.Context, *session, string, []any) ([]any, error)) error {
	if t.name == "" {
		return usagef("the flag --dps-name (-n) is required")
	}
	s, err := e.session()
	if err != nil {
		return err
	}
	sub, err := s.subscription(ctx, t.sub)
	if err != nil {
		return err
	}
	ps, err := s.findResource(ctx, kindDPS, sub, t.rg, t.name)
	if err != nil {
		return err
	}
	props, _ := ps["properties"].(map[string]any)
	links, _ := props["iotHubs"].([]any)
	if links, err = edit(ctx, s, sub, links); err != nil {
		return err
	}
	// Connection strings by host name, from the subscription's hubs.
	all, err := s.armList(ctx, armScope(sub, "", kindHub.path)+"?api-version="+apiHubs)
	if err != nil {
		return err
	}
	hubs := []any{}
	for _, l := range links {
		host := str(l, "name")
		name := ""
		for _, h := range all {
			if strings.EqualFold(str(h, "properties.hostName"), host) {
				name = str(h, "name")
			}
		}
		if name == "" {
			return fmt.Errorf("the linked hub %s is not an IoT hub of subscription %s", host, sub)
		}
		cs, err := s.hubConnectionString(ctx, sub, name)
		if err != nil {
			return err
		}
		m := map[string]any{"connectionString": cs, "location": ps["location"]}
		for _, k := range []string{"allocationWeight", "applyAllocationPolicy"} {
			if v, ok := l.(map[string]any)[k]; ok {
				m[k] = v
			}
		}
		hubs = append(hubs, m)
	}
	body := map[string]any{"location": ps["location"], "tags": ps["tags"], "properties": map[string]any{
		"serviceOperationsHostName": props["serviceOperationsHostName"], "allocationPolicy": props["allocationPolicy"], "iotHubs": hubs}}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.c.BaseURL+str(ps, "id")+"?api-version="+apiDPS, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if etag := str(ps, "etag"); etag != "" {
		req.Header.Set("If-Match", etag)
	}
	var out map[string]any
	if _, err := s.c.Send(req, &out); err != nil {
		return err
	}
	return render(e.stdout, format, out, dpsColumns)
}

var registrationColumns = []column{{"RegistrationId", "registrationId"}, {"DeviceId", "deviceId"}, {"AssignedHub", "assignedHub"},
	{"Status", "status"}, {"LastUpdated", "lastUpdatedDateTimeUtc"}}

// registrationCommand is `ferry dps registration`: the registration
// records devices leave when they provision.
func registrationCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "registration", Short: "Show and delete device registration records"}
	path := func(id string) string {
		return "/registrations/" + url.PathEscape(id) + "?api-version=" + apiDPSService
	}
	show := dataShowCmd(e, format, &dpsTarget{}, "Show a device's registration record",
		"registration-id", "the device's registration ID", path, registrationColumns)
	del := dataDeleteCmd(e, &dpsTarget{}, "Delete a device's registration record, so that it provisions afresh",
		"registration-id", "the device's registration ID", path)
	cmd.AddCommand(show, del)
	return cmd
}

// groupRegistrationsCommand is `ferry dps enrollment-group registration
// list`: the registration records of a group's devices.
func groupRegistrationsCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "registration", Short: "List the registration records of an enrollment group's devices"}
	var t dpsTarget
	list := &cobra.Command{
		Use:   "list",
		Short: "List the registration records of an enrollment group's devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			all := []any{}
			cont := ""
			for {
				hdr := http.Header{"X-Ms-Max-Item-Count": {"100"}}
				if cont != "" {
					hdr.Set("x-ms-continuation", cont)
				}
				var page []any
				resp, err := s.dataPlane(ctx, host, http.MethodPost, "/registrations/"+url.PathEscape(t.id)+"/query?api-version="+apiDPSService, []byte("{}"), hdr, &page)
				if err != nil {
					return err
				}
				all = append(all, page...)
				if cont = resp.Header.Get("x-ms-continuation"); cont == "" {
					break
				}
			}
			return render(e.stdout, *format, all, registrationColumns)
		},
	}
	t.add(list, true)
	cmd.AddCommand(list)
	return cmd
}
