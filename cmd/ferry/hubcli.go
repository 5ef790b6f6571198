package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/client"
	"github.com/ferry-iot/ferry/httpapi/events"
	"github.com/spf13/cobra"
)

// newHubCommand is `ferry hub`, named and flagged like `az iot hub`.
func newHubCommand(e *env) *cobra.Command {
	var format string
	hub := &cobra.Command{
		Use:   "hub",
		Short: "Manage IoT hubs, their device identities and twins; talk to devices",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(hub, &format)
	o := &format
	hub.AddCommand(hubCreate(e, o), hubList(e, o), hubShow(e, o), hubDelete(e),
		deviceIdentityCommand(e, o), deviceTwinCommand(e, o), invokeMethodCommand(e, o), c2dCommand(e, o),
		monitorEventsCommand(e), hubConnectionStringCommand(e, o),
		deviceTemplateCommand(e, o), deviceGroupCommand(e, o))
	return hub
}

// armFlags are where a Microsoft.Devices resource lives.
type armFlags struct{ name, rg, sub string }

func (f *armFlags) add(cmd *cobra.Command, nameFlag, what string) {
	fl := cmd.Flags()
	fl.StringVarP(&f.name, nameFlag, "n", "", "the "+what+"'s name")
	fl.StringVarP(&f.rg, "resource-group", "g", "", "the resource group (default: the profile's)")
	fl.StringVar(&f.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
}

// place returns the subscription and the resource group, which must be known.
func (f *armFlags) place(ctx context.Context, s *session, nameFlag string) (sub, rg string, err error) {
	if f.name == "" {
		return "", "", usagef("the flag --%s is required", nameFlag)
	}
	if rg = s.resourceGroup(f.rg); rg == "" {
		return "", "", usagef("the flag --resource-group (-g) is required")
	}
	sub, err = s.subscription(ctx, f.sub)
	return sub, rg, err
}

var hubColumns = []column{{"Name", "name"}, {"HostName", "properties.hostName"}, {"Location", "location"},
	{"Sku", "sku.name"}, {"State", "properties.state"}}

func hubCreate(e *env, format *string) *cobra.Command {
	var f armFlags
	var host, location, sku string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an IoT hub (or update its location and host name)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := e.session()
			if err != nil {
				return err
			}
			sub, rg, err := f.place(ctx, s, "name")
			if err != nil {
				return err
			}
			body := map[string]any{"location": location, "sku": map[string]any{"name": sku, "capacity": 1},
				"properties": map[string]any{"hostName": host}}
			var out map[string]any
			if err := s.arm(ctx, http.MethodPut, armScope(sub, rg, kindHub.path)+"/"+url.PathEscape(f.name)+"?api-version="+apiHubs, body, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, hubColumns)
		},
	}
	f.add(cmd, "name", "IoT hub")
	fl := cmd.Flags()
	fl.StringVar(&host, "host-name", "", "the host name devices and service clients use (default {name}.localhost); an IP address works")
	fl.StringVarP(&location, "location", "l", "global", "the location")
	fl.StringVar(&sku, "sku", "S1", "the pricing tier (kept for compatibility)")
	return cmd
}

func hubList(e *env, format *string) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List IoT hubs in a resource group or the subscription",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listResources(cmd.Context(), e, *format, kindHub, f, hubColumns)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.rg, "resource-group", "g", "", "list only this resource group")
	fl.StringVar(&f.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
	return cmd
}

func listResources(ctx context.Context, e *env, format string, k resourceKind, f armFlags, cols []column) error {
	s, err := e.session()
	if err != nil {
		return err
	}
	sub, err := s.subscription(ctx, f.sub)
	if err != nil {
		return err
	}
	all, err := s.armList(ctx, armScope(sub, f.rg, k.path)+"?api-version="+k.api)
	if err != nil {
		return err
	}
	return render(e.stdout, format, all, cols)
}

func hubShow(e *env, format *string) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show an IoT hub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showResource(cmd.Context(), e, *format, kindHub, f, hubColumns)
		},
	}
	f.add(cmd, "name", "IoT hub")
	return cmd
}

func showResource(ctx context.Context, e *env, format string, k resourceKind, f armFlags, cols []column) error {
	if f.name == "" {
		return usagef("the flag --name (-n) is required")
	}
	s, err := e.session()
	if err != nil {
		return err
	}
	x, err := s.findResource(ctx, k, f.sub, f.rg, f.name)
	if err != nil {
		return err
	}
	return render(e.stdout, format, x, cols)
}

func hubDelete(e *env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete an IoT hub and its device identities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return deleteResource(cmd.Context(), e, kindHub, f)
		},
	}
	f.add(cmd, "name", "IoT hub")
	return cmd
}

func deleteResource(ctx context.Context, e *env, k resourceKind, f armFlags) error {
	s, err := e.session()
	if err != nil {
		return err
	}
	sub, rg, err := f.place(ctx, s, "name")
	if err != nil {
		return err
	}
	return s.arm(ctx, http.MethodDelete, armScope(sub, rg, k.path)+"/"+url.PathEscape(f.name)+"?api-version="+k.api, nil, nil)
}

// hubTarget is a hub addressed by a data-plane command.
type hubTarget struct {
	armFlags
	deviceID string
}

func (t *hubTarget) add(cmd *cobra.Command, device bool) {
	fl := cmd.Flags()
	fl.StringVarP(&t.name, "hub-name", "n", "", "the IoT hub's name")
	fl.StringVarP(&t.rg, "resource-group", "g", "", "the hub's resource group (default: found in the subscription)")
	fl.StringVar(&t.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
	if device {
		fl.StringVarP(&t.deviceID, "device-id", "d", "", "the device's ID")
	}
}

// resolve checks the flags and returns the session and the hub's host name.
func (t *hubTarget) resolve(ctx context.Context, e *env, device bool) (*session, string, error) {
	if t.name == "" {
		return nil, "", usagef("the flag --hub-name (-n) is required")
	}
	if device && t.deviceID == "" {
		return nil, "", usagef("the flag --device-id (-d) is required")
	}
	s, err := e.session()
	if err != nil {
		return nil, "", err
	}
	host, err := s.resourceHost(ctx, kindHub, t.sub, t.rg, t.name)
	if err != nil {
		return nil, "", err
	}
	return s, host, nil
}

func (t *hubTarget) devicePath(suffix string) string {
	return "/devices/" + url.PathEscape(t.deviceID) + suffix + "?api-version=" + apiHubService
}

var deviceColumns = []column{{"DeviceId", "deviceId"}, {"Status", "status"}, {"ConnectionState", "connectionState"},
	{"AuthenticationType", "authentication.type"}, {"CloudToDeviceMessageCount", "cloudToDeviceMessageCount"}}

func deviceIdentityCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "device-identity", Short: "Manage a hub's device identities"}

	var ct hubTarget
	var auth, ptp, stp, pk, sk, status string
	var edge bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a device identity; keys are generated unless given",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := map[string]any{}
			switch auth {
			case "shared_private_key":
				a["type"] = string(ferry.AuthSAS)
				a["symmetricKey"] = map[string]any{"primaryKey": nilIfEmpty(pk), "secondaryKey": nilIfEmpty(sk)}
			case "x509_thumbprint", "self_signed":
				if ptp == "" {
					return usagef("--auth-method %s needs --primary-thumbprint", auth)
				}
				a["type"] = string(ferry.AuthSelfSigned)
				a["x509Thumbprint"] = map[string]any{"primaryThumbprint": ptp, "secondaryThumbprint": nilIfEmpty(stp)}
			case "x509_ca":
				a["type"] = string(ferry.AuthCertificateAuthority)
			default:
				return usagef("unknown --auth-method %q: use shared_private_key, x509_thumbprint (self_signed) or x509_ca", auth)
			}
			switch status {
			case "enabled", "disabled":
			default:
				return usagef("unknown --status %q: use enabled or disabled", status)
			}
			ctx := cmd.Context()
			s, host, err := ct.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			body := map[string]any{"deviceId": ct.deviceID, "status": status, "authentication": a,
				"capabilities": map[string]any{"iotEdge": edge}}
			var out map[string]any
			if err := s.dataJSON(ctx, host, http.MethodPut, ct.devicePath(""), body, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, deviceColumns)
		},
	}
	ct.add(create, true)
	fl := create.Flags()
	fl.StringVar(&auth, "auth-method", "shared_private_key", "shared_private_key, x509_thumbprint (also self_signed) or x509_ca")
	fl.StringVar(&ptp, "primary-thumbprint", "", "the self-signed certificate's SHA-1 or SHA-256 thumbprint")
	fl.StringVar(&stp, "secondary-thumbprint", "", "a second thumbprint")
	fl.StringVar(&pk, "primary-key", "", "the primary symmetric key (base64); generated if empty")
	fl.StringVar(&sk, "secondary-key", "", "the secondary symmetric key (base64); generated if empty")
	fl.StringVar(&status, "status", "enabled", "enabled or disabled")
	fl.BoolVar(&edge, "edge-enabled", false, "mark the device as an IoT Edge device")

	var lt hubTarget
	var top int
	list := &cobra.Command{
		Use:   "list",
		Short: "List a hub's device identities (without keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if top < 1 || top > 1000 {
				return usagef("--top must be 1 to 1000")
			}
			ctx := cmd.Context()
			s, host, err := lt.resolve(ctx, e, false)
			if err != nil {
				return err
			}
			out := []any{}
			if err := s.dataJSON(ctx, host, http.MethodGet, "/devices?top="+strconv.Itoa(top)+"&api-version="+apiHubService, nil, &out); err != nil {
				return err
			}
			for _, d := range out {
				stripKeys(d)
			}
			return render(e.stdout, *format, out, deviceColumns)
		},
	}
	lt.add(list, false)
	list.Flags().IntVar(&top, "top", 1000, "at most this many identities (1 to 1000)")

	var st hubTarget
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a device identity, with its keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, err := st.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.dataJSON(ctx, host, http.MethodGet, st.devicePath(""), nil, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, deviceColumns)
		},
	}
	st.add(show, true)

	var dt hubTarget
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a device identity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, err := dt.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			return s.dataJSON(ctx, host, http.MethodDelete, dt.devicePath(""), nil, nil)
		},
	}
	dt.add(del, true)

	var ut hubTarget
	var ustatus, reason string
	update := &cobra.Command{
		Use:   "update",
		Short: "Enable or disable a device identity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch ustatus {
			case "enabled", "disabled":
			default:
				return usagef("--status must be enabled or disabled")
			}
			ctx := cmd.Context()
			s, host, err := ut.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			var d map[string]any
			if err := s.dataJSON(ctx, host, http.MethodGet, ut.devicePath(""), nil, &d); err != nil {
				return err
			}
			d["status"] = ustatus
			d["statusReason"] = nilIfEmpty(reason)
			body, err := json.Marshal(d)
			if err != nil {
				return err
			}
			hdr := http.Header{"If-Match": {`"` + str(d, "etag") + `"`}}
			var out map[string]any
			if _, err := s.dataPlane(ctx, host, http.MethodPut, ut.devicePath(""), body, hdr, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, deviceColumns)
		},
	}
	ut.add(update, true)
	update.Flags().StringVar(&ustatus, "status", "", "enabled or disabled")
	update.Flags().StringVar(&reason, "status-reason", "", "why, for the record")

	cmd.AddCommand(create, list, show, update, del, deviceConnectionStringCommand(e, format))
	return cmd
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// stripKeys removes symmetric keys from a listed identity or enrollment:
// lists never show secrets, whatever the server sends.
func stripKeys(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, parent := range []string{"authentication", "attestation"} {
		if p, ok := m[parent].(map[string]any); ok {
			if k, ok := p["symmetricKey"].(map[string]any); ok {
				k["primaryKey"], k["secondaryKey"] = nil, nil
			}
		}
	}
}

func deviceTwinCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "device-twin", Short: "Show and update device twins"}
	twinColumns := []column{{"DeviceId", "deviceId"}, {"Status", "status"}, {"ConnectionState", "connectionState"},
		{"Version", "version"}, {"Etag", "etag"}}

	var st hubTarget
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a device twin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, host, err := st.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.dataJSON(ctx, host, http.MethodGet, "/twins/"+url.PathEscape(st.deviceID)+"?api-version="+apiHubService, nil, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, twinColumns)
		},
	}
	st.add(show, true)

	var ut hubTarget
	var desired, tags, etag string
	update := &cobra.Command{
		Use:   "update",
		Short: "Patch a device twin's desired properties and tags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if desired == "" && tags == "" {
				return usagef("give --desired, --tags or both")
			}
			patch := map[string]any{}
			if desired != "" {
				d, err := jsonArg("desired", desired)
				if err != nil {
					return err
				}
				patch["properties"] = map[string]any{"desired": d}
			}
			if tags != "" {
				t, err := jsonArg("tags", tags)
				if err != nil {
					return err
				}
				patch["tags"] = t
			}
			ctx := cmd.Context()
			s, host, err := ut.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(patch)
			hdr := http.Header{}
			if etag != "" {
				hdr.Set("If-Match", `"`+strings.Trim(etag, `"`)+`"`)
			}
			var out map[string]any
			if _, err := s.dataPlane(ctx, host, http.MethodPatch, "/twins/"+url.PathEscape(ut.deviceID)+"?api-version="+apiHubService, body, hdr, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, twinColumns)
		},
	}
	ut.add(update, true)
	fl := update.Flags()
	fl.StringVar(&desired, "desired", "", "desired properties to patch, as JSON or @file")
	fl.StringVar(&tags, "tags", "", "tags to patch, as JSON or @file")
	fl.StringVar(&etag, "etag", "", "update only if the twin still has this etag")

	cmd.AddCommand(show, update)
	return cmd
}

func invokeMethodCommand(e *env, format *string) *cobra.Command {
	var t hubTarget
	var name, payload string
	var timeout, connectTimeout int
	cmd := &cobra.Command{
		Use:   "invoke-device-method",
		Short: "Invoke a direct method on a connected device and print its answer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("the flag --method-name is required")
			}
			if timeout < 5 || timeout > 300 || connectTimeout < 0 || connectTimeout > 300 {
				return usagef("--timeout must be 5 to 300 seconds and --method-connect-timeout 0 to 300")
			}
			p, err := jsonArg("method-payload", payload)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			body := map[string]any{"methodName": name, "payload": p, "responseTimeoutInSeconds": timeout,
				"connectTimeoutInSeconds": connectTimeout}
			var out map[string]any
			if err := s.dataJSON(ctx, host, http.MethodPost, "/twins/"+url.PathEscape(t.deviceID)+"/methods?api-version="+apiHubService, body, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, []column{{"Status", "status"}, {"Payload", "payload"}})
		},
	}
	t.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&name, "method-name", "", "the method's name")
	fl.StringVar(&payload, "method-payload", "{}", "the method's payload, as JSON or @file")
	fl.IntVar(&timeout, "timeout", 30, "seconds to wait for the device's answer (5 to 300)")
	fl.IntVar(&connectTimeout, "method-connect-timeout", 0, "seconds to wait for the device to connect (0 to 300)")
	return cmd
}

func c2dCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "c2d-message", Short: "Send cloud-to-device messages"}
	var t hubTarget
	var data, props, messageID, correlationID, contentType, contentEncoding, expiry string
	send := &cobra.Command{
		Use:   "send",
		Short: "Queue a cloud-to-device message for a device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hdr := http.Header{}
			if props != "" {
				for _, kv := range strings.Split(props, ";") {
					if strings.TrimSpace(kv) == "" {
						continue
					}
					k, v, ok := strings.Cut(kv, "=")
					k = strings.TrimSpace(k)
					if !ok || !validToken(k) {
						return usagef("--props wants key=value pairs separated by ';' with plain keys, not %q", kv)
					}
					hdr.Set("iothub-app-"+k, v)
				}
			}
			if expiry != "" {
				ms, err := strconv.ParseInt(expiry, 10, 64)
				if err != nil {
					return usagef("--expiry is a Unix time in milliseconds")
				}
				hdr.Set("iothub-expiry", time.UnixMilli(ms).UTC().Format(time.RFC3339))
			}
			if messageID == "" {
				messageID = ferry.NewUUID()
			}
			hdr.Set("iothub-messageid", messageID)
			if correlationID != "" {
				hdr.Set("iothub-correlationid", correlationID)
			}
			hdr.Set("Content-Type", contentType)
			if contentEncoding != "" {
				hdr.Set("Content-Encoding", contentEncoding)
			}
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			if _, err := s.dataPlane(ctx, host, http.MethodPost, t.devicePath("/messages/deviceBound"), []byte(data), hdr, nil); err != nil {
				return err
			}
			return render(e.stdout, *format, map[string]any{"messageId": messageID}, nil)
		},
	}
	t.add(send, true)
	fl := send.Flags()
	fl.StringVar(&data, "data", "Ping from Ferry CLI", "the message body")
	fl.StringVar(&props, "props", "", "application properties: a=b;c=d")
	fl.StringVar(&messageID, "message-id", "", "the message ID (default: a new UUID)")
	fl.StringVar(&correlationID, "correlation-id", "", "the correlation ID")
	fl.StringVar(&contentType, "content-type", "text/plain; charset=utf-8", "the body's content type")
	fl.StringVar(&contentEncoding, "content-encoding", "", "the body's content encoding, e.g. utf-8")
	fl.StringVar(&expiry, "expiry", "", "when the message expires, Unix milliseconds")
	cmd.AddCommand(send)
	return cmd
}

// validToken reports whether s may be part of an HTTP header name.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func monitorEventsCommand(e *env) *cobra.Command {
	var hubName, deviceID string
	var timeout int
	cmd := &cobra.Command{
		Use:   "monitor-events",
		Short: "Print a hub's telemetry and device lifecycle events as they happen, one JSON object a line",
		Long: `Print a hub's telemetry and device lifecycle events as they happen, one JSON
object a line, until --timeout seconds have passed (0: until interrupted).
Events that arrive faster than they can be printed are dropped by the
server, which says how many on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hubName == "" {
				return usagef("the flag --hub-name (-n) is required")
			}
			if timeout < 0 {
				return usagef("--timeout must be 0 or more seconds")
			}
			s, err := e.session()
			if err != nil {
				return err
			}
			return monitorEvents(cmd.Context(), s, hubName, deviceID, timeout)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&hubName, "hub-name", "n", "", "the IoT hub's name")
	fl.StringVarP(&deviceID, "device-id", "d", "", "show only this device's events")
	fl.IntVar(&timeout, "timeout", 300, "stop after this many seconds; 0 runs until interrupted")
	return cmd
}

// monitorEvents reads the hub's event stream and prints each event in
// az's shape: {"event":{"origin":..., "payload":..., "properties":...}}.
func monitorEvents(ctx context.Context, s *session, hubName, deviceID string, timeout int) error {
	q := url.Values{"timeout": {strconv.Itoa(timeout)}}
	if deviceID != "" {
		q.Set("deviceId", deviceID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.c.BaseURL+"/api/hubs/"+url.PathEscape(hubName)+"/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.c.Token)
	req.Header.Set("Accept", "text/event-stream")
	hc := *s.c.HTTPClient
	hc.Timeout = 0 // a stream lasts as long as it lasts
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var v struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v)
		if v.Error.Message == "" {
			v.Error.Message = http.StatusText(resp.StatusCode)
		}
		return &client.Error{Status: resp.StatusCode, Code: v.Error.Code, Message: v.Error.Message}
	}
	filter := ""
	if deviceID != "" {
		filter = " on device " + deviceID
	}
	fmt.Fprintf(s.e.stderr, "Starting event monitor of hub %s%s, use ctrl-c to stop...\n", hubName, filter)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				if err := printEvent(s.e, data); err != nil {
					return err
				}
			}
			data = ""
		case strings.HasPrefix(line, ": dropped "), strings.HasPrefix(line, ": end; dropped "):
			var n int
			_, _ = fmt.Sscanf(strings.TrimPrefix(strings.TrimPrefix(line, ": end;"), ":"), " dropped %d events", &n)
			if n > 0 {
				fmt.Fprintf(s.e.stderr, "ferry: %d events so far were dropped because they came faster than they were read\n", n)
			}
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("event stream: %w", err)
	}
	return nil
}

// printEvent writes one event on one line.
func printEvent(e *env, data string) error {
	var m events.Message
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return fmt.Errorf("event stream: bad event: %w", err)
	}
	ev := map[string]any{"origin": m.DeviceID, "module": m.Module, "component": m.Component,
		"enqueuedTime": m.Time, "messageSource": m.Source}
	if m.Type != "" {
		ev["messageType"] = m.Type
	}
	if m.Payload != nil {
		ev["payload"] = m.Payload
	}
	if m.Data != nil {
		ev["data"] = m.Data
	}
	props := map[string]any{"application": orEmpty(m.Properties), "system": orEmpty(m.SystemProperties)}
	ev["properties"] = props
	b, err := json.Marshal(map[string]any{"event": ev})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// hubConnectionStringCommand is `ferry hub connection-string show`: a
// policy's connection string, read with listkeys.
func hubConnectionStringCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "connection-string", Short: "Show an IoT hub's connection strings"}
	var t hubTarget
	var policy, key string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the connection string of one of the hub's shared-access policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if t.name == "" {
				return usagef("the flag --hub-name (-n) is required")
			}
			if key != "primary" && key != "secondary" {
				return usagef("--key-type must be primary or secondary")
			}
			ctx := cmd.Context()
			s, err := e.session()
			if err != nil {
				return err
			}
			hub, err := s.findResource(ctx, kindHub, t.sub, t.rg, t.name)
			if err != nil {
				return err
			}
			keys, err := s.listKeys(ctx, str(hub, "id"), apiHubs)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if strings.EqualFold(k.KeyName, policy) {
					v := k.PrimaryKey
					if key == "secondary" {
						v = k.SecondaryKey
					}
					cs := "HostName=" + str(hub, "properties.hostName") + ";SharedAccessKeyName=" + k.KeyName + ";SharedAccessKey=" + v
					return render(e.stdout, *format, map[string]any{"connectionString": cs}, nil)
				}
			}
			return fmt.Errorf("the IoT hub %s has no policy %q", t.name, policy)
		},
	}
	t.add(show, false)
	show.Flags().StringVar(&policy, "policy-name", "iothubowner", "the shared-access policy")
	show.Flags().StringVar(&key, "key-type", "primary", "primary or secondary")
	cmd.AddCommand(show)
	return cmd
}

// deviceConnectionStringCommand is `ferry hub device-identity
// connection-string show`: what a device SDK needs to connect with its key.
func deviceConnectionStringCommand(e *env, format *string) *cobra.Command {
	cmd := &cobra.Command{Use: "connection-string", Short: "Show a device's connection string"}
	var t hubTarget
	var key string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a symmetric-key device's connection string",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key != "primary" && key != "secondary" {
				return usagef("--key-type must be primary or secondary")
			}
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, true)
			if err != nil {
				return err
			}
			var d map[string]any
			if err := s.dataJSON(ctx, host, http.MethodGet, t.devicePath(""), nil, &d); err != nil {
				return err
			}
			cs := "HostName=" + host + ";DeviceId=" + t.deviceID
			switch str(d, "authentication.type") {
			case string(ferry.AuthSAS):
				cs += ";SharedAccessKey=" + str(d, "authentication.symmetricKey."+key+"Key")
			case string(ferry.AuthSelfSigned), string(ferry.AuthCertificateAuthority):
				cs += ";x509=true"
			}
			return render(e.stdout, *format, map[string]any{"connectionString": cs}, nil)
		},
	}
	t.add(show, true)
	show.Flags().StringVar(&key, "key-type", "primary", "primary or secondary")
	cmd.AddCommand(show)
	return cmd
}
