package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ferry-iot/ferry/client"
	"github.com/spf13/cobra"
)

// API versions the device-plane commands speak.
const (
	apiSubscriptions = "2022-12-01"
	apiHubs          = "2023-06-30"
	apiDPS           = "2022-12-12"
	apiHubService    = "2021-04-12"
	apiDPSService    = "2021-10-01"
)

// session is a signed-in CLI command: the saved profile and a client of
// its server.
type session struct {
	e       *env
	profile *client.Profile
	c       *client.Client
}

// session loads the profile `ferry login` saved.
func (e *env) session() (*session, error) {
	path, err := client.ProfilePath(e.getenv)
	if err != nil {
		return nil, err
	}
	p, err := client.LoadProfile(path)
	if err != nil {
		return nil, err
	}
	c, err := p.Client()
	if err != nil {
		return nil, err
	}
	return &session{e: e, profile: p, c: c}, nil
}

// arm calls the management (ARM) API on the profile's server.
func (s *session) arm(ctx context.Context, method, path string, in, out any) error {
	_, err := s.c.Do(ctx, method, path, in, out)
	return err
}

// armList follows an ARM list's nextLinks and returns every item.
func (s *session) armList(ctx context.Context, path string) ([]any, error) {
	var all []any
	for path != "" {
		var page struct {
			Value    []any  `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if err := s.arm(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		path = ""
		if page.NextLink != "" {
			u, err := url.Parse(page.NextLink)
			if err != nil {
				return nil, fmt.Errorf("follow nextLink: %w", err)
			}
			path = u.RequestURI()
		}
	}
	if all == nil {
		all = []any{}
	}
	return all, nil
}

// dataPlane calls a hub's or a provisioning service's service API. It is
// served on the same URL as everything else; the resource is chosen by
// the Host header, which is set to the resource's host name.
func (s *session) dataPlane(ctx context.Context, host, method, path string, body []byte, hdr http.Header, out any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.c.BaseURL+path, r)
	if err != nil {
		return nil, err
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+s.c.Token)
	if s.c.UserAgent != "" {
		req.Header.Set("User-Agent", s.c.UserAgent)
	}
	resp, err := s.c.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return resp, dataPlaneError(resp.StatusCode, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp, nil
}

// dataPlaneError reads the error shapes of the IoT Hub service API
// ({"Message":"ErrorCode:DeviceNotFound;...","errorCode":404001}) and of the
// DPS service API ({"errorCode":404201,"message":"..."}).
func dataPlaneError(status int, data []byte) error {
	e := &client.Error{Status: status, Message: http.StatusText(status)}
	var v struct {
		Message   string `json:"Message"`
		ErrorCode int    `json:"errorCode"`
	}
	if json.Unmarshal(data, &v) != nil {
		return e
	}
	if v.Message != "" {
		e.Message = v.Message
	}
	if v.ErrorCode != 0 {
		e.Code = strconv.Itoa(v.ErrorCode)
	}
	if rest, ok := strings.CutPrefix(e.Message, "ErrorCode:"); ok {
		code, msg, _ := strings.Cut(rest, ";")
		e.Code, e.Message = code, strings.TrimSpace(msg)
	}
	return e
}

// dataJSON is dataPlane with a JSON body.
func (s *session) dataJSON(ctx context.Context, host, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = b
	}
	_, err := s.dataPlane(ctx, host, method, path, body, nil, out)
	return err
}

// accessKey is one shared-access policy from listkeys.
type accessKey struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
	Rights       string `json:"rights"`
}

// listKeys reads the shared-access policies of a hub or service by its
// resource ID.
func (s *session) listKeys(ctx context.Context, id, api string) ([]accessKey, error) {
	var keys struct {
		Value []accessKey `json:"value"`
	}
	if err := s.arm(ctx, http.MethodPost, id+"/listkeys?api-version="+api, nil, &keys); err != nil {
		return nil, err
	}
	return keys.Value, nil
}

// subscription returns --subscription, else the profile's default, else
// the first subscription the caller can see.
func (s *session) subscription(ctx context.Context, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if s.profile.DefaultSubscription != "" {
		return s.profile.DefaultSubscription, nil
	}
	var subs struct {
		Value []struct {
			SubscriptionID string `json:"subscriptionId"`
		} `json:"value"`
	}
	if err := s.arm(ctx, http.MethodGet, "/subscriptions?api-version="+apiSubscriptions, nil, &subs); err != nil {
		return "", fmt.Errorf("find a subscription: %w", err)
	}
	if len(subs.Value) == 0 {
		return "", errors.New("no subscription is visible to you: pass --subscription")
	}
	return subs.Value[0].SubscriptionID, nil
}

// resourceGroup returns -g or the profile's default.
func (s *session) resourceGroup(flag string) string {
	if flag != "" {
		return flag
	}
	return s.profile.DefaultResourceGroup
}

// armScope names where Microsoft.Devices resources of a kind live or are
// listed: a resource group, or the whole subscription when rg is "".
func armScope(sub, rg, kind string) string {
	p := "/subscriptions/" + url.PathEscape(sub)
	if rg != "" {
		p += "/resourceGroups/" + url.PathEscape(rg)
	}
	return p + "/providers/Microsoft.Devices/" + kind
}

// kinds of Microsoft.Devices resources, their API versions and their
// names in messages.
var (
	kindHub = resourceKind{path: "IotHubs", api: apiHubs, what: "IoT hub", host: "properties.hostName"}
	kindDPS = resourceKind{path: "provisioningServices", api: apiDPS, what: "provisioning service", host: "properties.serviceOperationsHostName"}
)

// resourceKind is a Microsoft.Devices resource type: its path segment,
// api-version, name for messages, and the property holding the host name
// its service API answers on.
type resourceKind struct{ path, api, what, host string }

// resourceHost finds a hub or provisioning service by name and returns the
// host name its service API answers on.
func (s *session) resourceHost(ctx context.Context, k resourceKind, subFlag, rgFlag, name string) (string, error) {
	x, err := s.findResource(ctx, k, subFlag, rgFlag, name)
	if err != nil {
		return "", err
	}
	host := str(x, k.host)
	if host == "" {
		return "", fmt.Errorf("the %s %q has no host name", k.what, name)
	}
	return host, nil
}

// findResource returns a hub or provisioning service by name: in the
// resource group when one is known, else the first of that name in the
// subscription.
func (s *session) findResource(ctx context.Context, k resourceKind, subFlag, rgFlag, name string) (map[string]any, error) {
	sub, err := s.subscription(ctx, subFlag)
	if err != nil {
		return nil, err
	}
	if rg := s.resourceGroup(rgFlag); rg != "" {
		var out map[string]any
		err := s.arm(ctx, http.MethodGet, armScope(sub, rg, k.path)+"/"+url.PathEscape(name)+"?api-version="+k.api, nil, &out)
		return out, err
	}
	all, err := s.armList(ctx, armScope(sub, "", k.path)+"?api-version="+k.api)
	if err != nil {
		return nil, err
	}
	for _, x := range all {
		if m, ok := x.(map[string]any); ok && strings.EqualFold(str(m, "name"), name) {
			return m, nil
		}
	}
	return nil, fmt.Errorf("the %s %q was not found in subscription %s", k.what, name, sub)
}

// str returns the string at a dotted path in a decoded JSON object, or "".
func str(v any, path string) string {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64, bool:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// column is a table column: a header and the dotted path of its value.
type column struct{ header, path string }

// outputFlag adds az's --output/-o to a command tree.
func outputFlag(cmd *cobra.Command, format *string) {
	cmd.PersistentFlags().StringVarP(format, "output", "o", "json", "output format: json, table or none")
}

// render prints v (a decoded JSON object or array) as JSON, as a table of
// cols, or not at all.
func render(w io.Writer, format string, v any, cols []column) error {
	switch format {
	case "json", "":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "none":
		return nil
	case "table":
		if x, ok := v.(string); ok {
			_, err := fmt.Fprintln(w, x)
			return err
		}
		rows, ok := v.([]any)
		if !ok {
			rows = []any{v}
		}
		if cols == nil {
			cols = guessColumns(rows)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		var head, rule []string
		for _, c := range cols {
			head = append(head, c.header)
			rule = append(rule, strings.Repeat("-", len(c.header)))
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		fmt.Fprintln(tw, strings.Join(rule, "\t"))
		for _, r := range rows {
			var cells []string
			for _, c := range cols {
				cells = append(cells, str(r, c.path))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		return tw.Flush()
	}
	return usagef("unknown --output %q: use json, table or none", format)
}

// guessColumns shows the scalar members of the first row, as az does for
// tables without a chosen layout.
func guessColumns(rows []any) []column {
	var cols []column
	if len(rows) == 0 {
		return cols
	}
	m, _ := rows[0].(map[string]any)
	var keys []string
	for k, v := range m {
		switch v.(type) {
		case string, float64, bool:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		cols = append(cols, column{header: strings.ToUpper(k[:1]) + k[1:], path: k})
	}
	return cols
}

// checkOutput refuses an unknown --output before anything is sent.
func checkOutput(format string) error {
	switch format {
	case "json", "table", "none", "":
		return nil
	}
	return usagef("unknown --output %q: use json, table or none", format)
}

// jsonArg reads a JSON flag value given inline or as @file.
func jsonArg(flag, v string) (json.RawMessage, error) {
	b := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		if b, err = os.ReadFile(name); err != nil {
			return nil, usagef("--%s: %v", flag, err)
		}
	}
	if !json.Valid(b) {
		return nil, usagef("--%s is not valid JSON", flag)
	}
	return json.RawMessage(b), nil
}
