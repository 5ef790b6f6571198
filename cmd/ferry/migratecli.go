package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ferry-iot/ferry/client"
)

// newMigrateCommand is `ferry migrate`: fleet migrations between hubs.
func newMigrateCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Move device fleets between hubs in verified waves, with failback",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(cmd, &format)
	o := &format
	cmd.AddCommand(migrateCreate(e, o), migrateList(e, o), migrateShow(e, o), migrateDelete(e),
		migratePreflight(e, o), migrateStatus(e, o), migrateDevices(e, o),
		migrateAction(e, o, "start", "Start a created or preflighted migration", "start"),
		migrateAction(e, o, "pause", "Pause a running migration; devices in flight are still followed", "pause"),
		migrateAction(e, o, "resume", "Resume a paused migration", "resume"),
		migrateAction(e, o, "cancel", "Cancel a migration; devices in flight are failed back", "cancel"),
		migrateFailback(e, o), migrateReport(e))
	return cmd
}

var migrationColumns = []column{{"Name", "name"}, {"State", "properties.state"}, {"Wave", "properties.currentWave"},
	{"Waves", "properties.waveCount"}, {"Devices", "properties.deviceCount"}, {"Verified", "properties.counts.verified"},
	{"Failed", "properties.counts.failed"}}

// migrationPath is a migration's ARM path, with suffix (a sub-resource or
// action) and the api-version.
func migrationPath(sub, rg, name, suffix string) string {
	p := "/subscriptions/" + url.PathEscape(sub) + "/resourceGroups/" + url.PathEscape(rg) + "/providers/Ferry.Migration/migrations"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p + suffix + "?api-version=" + apiMigration
}

// migrationRef opens a session and resolves a migration's place.
func migrationRef(ctx context.Context, e *env, f *armFlags) (*session, string, string, error) {
	s, err := e.session()
	if err != nil {
		return nil, "", "", err
	}
	sub, rg, err := f.place(ctx, s, "name")
	return s, sub, rg, err
}

func migrateCreate(e *env, format *string) *cobra.Command {
	var (
		f                                                armFlags
		sourceHub, group, targetDPS, provHost, onError   string
		catalogGroup                                     string
		waves                                            string
		deviceIDs                                        []string
		waveSize, errorThreshold, successThreshold, wcnt int
		timeout                                          time.Duration
		rate                                             float64
		remote                                           remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a migration of a hub device group or a list of devices to a provisioning service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			switch {
			case f.name == "":
				return usagef("the flag --name (-n) is required")
			case sourceHub == "":
				return usagef("the flag --source-hub is required")
			case targetDPS == "":
				return usagef("the flag --target-dps is required")
			}
			switch n := countSet(group != "", len(deviceIDs) > 0, catalogGroup != ""); {
			case n == 0:
				return usagef("one of --device-group, --device-ids or --catalog-device-group is required")
			case n > 1:
				return usagef("--device-group, --device-ids and --catalog-device-group exclude each other")
			}
			props := map[string]any{"sourceHub": sourceHub, "targetProvisioningService": targetDPS,
				"deviceTimeout": fmt.Sprintf("PT%gS", timeout.Seconds())}
			switch {
			case group != "":
				props["selection"] = map[string]any{"deviceGroup": group}
			case catalogGroup != "":
				props["selection"] = map[string]any{"catalogDeviceGroup": catalogGroup}
			default:
				props["selection"] = map[string]any{"deviceIds": deviceIDs}
			}
			if provHost != "" {
				props["provisioningHost"] = provHost
			}
			if tf, err := remote.wire(e); err != nil {
				return err
			} else if tf != nil {
				props["targetFerry"] = tf
			}
			plan, err := wavePlanFlags(cmd, waves, waveSize, wcnt)
			if err != nil {
				return err
			}
			if plan != nil {
				props["waves"] = plan
			}
			if onError != "pause" && onError != "failback" {
				return usagef("--on-error must be pause or failback")
			}
			if successThreshold < 0 || successThreshold > 100 || errorThreshold < 0 || errorThreshold > 100 {
				return usagef("thresholds are percentages from 0 to 100")
			}
			if timeout <= 0 {
				return usagef("--device-timeout must be positive")
			}
			if rate < 0 {
				return usagef("--command-rate must not be negative")
			}
			props["thresholds"] = map[string]any{"success": successThreshold, "error": errorThreshold, "onError": onError}
			if rate > 0 {
				props["commandRate"] = rate
			}
			s, sub, rg, err := migrationRef(ctx, e, &f)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.arm(ctx, http.MethodPut, migrationPath(sub, rg, f.name, ""), map[string]any{"properties": props}, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, migrationColumns)
		},
	}
	f.add(cmd, "name", "migration")
	fl := cmd.Flags()
	fl.StringVar(&sourceHub, "source-hub", "", "the IoT hub the devices leave (name or resource ID)")
	fl.StringVar(&group, "device-group", "", "the source hub's device group to move")
	fl.StringSliceVar(&deviceIDs, "device-ids", nil, "the devices to move (comma-separated)")
	fl.StringVar(&catalogGroup, "catalog-device-group", "", "the Azure Sphere device group (resource ID) whose devices at the source hub move")
	fl.StringVar(&targetDPS, "target-dps", "", "the provisioning service the devices move to (name or resource ID)")
	fl.StringVar(&provHost, "provisioning-host", "", "the provisioning host devices dial (default: the one they use)")
	fl.StringVar(&waves, "waves", "", "wave shares in percent, such as 10,40,50")
	fl.IntVar(&waveSize, "wave-size", 0, "devices per wave")
	fl.IntVar(&wcnt, "wave-count", 0, "number of equal waves")
	fl.IntVar(&errorThreshold, "error-threshold", 0, "percent of a wave that may fail before --on-error applies")
	fl.IntVar(&successThreshold, "success-threshold", 100, "percent of a wave that must verify for the wave to succeed")
	fl.StringVar(&onError, "on-error", "pause", "what a wave over its error threshold does: pause or failback")
	fl.DurationVar(&timeout, "device-timeout", 5*time.Minute, "how long a device may take from its command to its first telemetry at the target")
	fl.Float64Var(&rate, "command-rate", 0, "DeviceMove commands per second (0: unlimited)")
	remote.add(cmd)
	return cmd
}

// countSet counts the true values: how many of a set of exclusive flags
// were given.
func countSet(set ...bool) int {
	n := 0
	for _, b := range set {
		if b {
			n++
		}
	}
	return n
}

// remoteFlags name a target provisioning service on another Ferry.
type remoteFlags struct {
	url, tenant, clientID, secret, caFile string
}

func (r *remoteFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&r.url, "target-ferry", "", "the API URL of another Ferry that holds the target provisioning service "+
		"(then --target-dps is its resource ID there)")
	fl.StringVar(&r.tenant, "target-tenant-id", "", "the tenant ID of the target Ferry")
	fl.StringVar(&r.clientID, "target-client-id", "", "the client ID of a service principal on the target Ferry")
	fl.StringVar(&r.secret, "target-client-secret", "", "its client secret (default: $FERRY_TARGET_CLIENT_SECRET)")
	fl.StringVar(&r.caFile, "target-ca", "", "a PEM file with the CA certificate the target Ferry's API presents")
}

// wire returns the targetFerry property, or nil without --target-ferry.
func (r *remoteFlags) wire(e *env) (map[string]any, error) {
	if r.url == "" {
		if r.clientID != "" || r.secret != "" || r.caFile != "" || r.tenant != "" {
			return nil, usagef("the --target-* flags need --target-ferry")
		}
		return nil, nil
	}
	secret := r.secret
	if secret == "" {
		secret = e.getenv("FERRY_TARGET_CLIENT_SECRET")
	}
	switch {
	case r.clientID == "":
		return nil, usagef("--target-ferry needs --target-client-id")
	case secret == "":
		return nil, usagef("--target-ferry needs --target-client-secret or $FERRY_TARGET_CLIENT_SECRET")
	}
	tf := map[string]any{"apiEndpoint": r.url, "clientId": r.clientID, "clientSecret": secret}
	if r.tenant != "" {
		tf["tenantId"] = r.tenant
	}
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return nil, fmt.Errorf("read --target-ca: %w", err)
		}
		tf["caCertificate"] = string(pem)
	}
	return tf, nil
}

// wavePlanFlags reads --waves, --wave-size and --wave-count; nil is one
// wave.
func wavePlanFlags(cmd *cobra.Command, waves string, size, count int) (map[string]any, error) {
	fl := cmd.Flags()
	if countSet(fl.Changed("waves"), fl.Changed("wave-size"), fl.Changed("wave-count")) > 1 {
		return nil, usagef("--waves, --wave-size and --wave-count exclude each other")
	}
	switch {
	case cmd.Flags().Changed("waves"):
		var pcs []int
		total := 0
		for _, p := range strings.Split(waves, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), "%")))
			if err != nil || n <= 0 {
				return nil, usagef("--waves: want positive percentages such as 10,40,50, got %q", waves)
			}
			pcs = append(pcs, n)
			total += n
		}
		if total > 100 {
			return nil, usagef("--waves: the percentages add up to %d, more than 100", total)
		}
		return map[string]any{"percentages": pcs}, nil
	case cmd.Flags().Changed("wave-size"):
		if size <= 0 {
			return nil, usagef("--wave-size must be positive")
		}
		return map[string]any{"size": size}, nil
	case cmd.Flags().Changed("wave-count"):
		if count <= 0 {
			return nil, usagef("--wave-count must be positive")
		}
		return map[string]any{"count": count}, nil
	}
	return nil, nil
}

func migrateList(e *env, format *string) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the migrations of a resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := e.session()
			if err != nil {
				return err
			}
			rg := s.resourceGroup(f.rg)
			if rg == "" {
				return usagef("the flag --resource-group (-g) is required")
			}
			sub, err := s.subscription(ctx, f.sub)
			if err != nil {
				return err
			}
			all, err := s.armList(ctx, migrationPath(sub, rg, "", ""))
			if err != nil {
				return err
			}
			return render(e.stdout, *format, all, migrationColumns)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.rg, "resource-group", "g", "", "the resource group (default: the profile's)")
	fl.StringVar(&f.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
	return cmd
}

// migrateSimple is a command on one migration that sends method to suffix
// with an optional body and renders the answer.
func migrateSimple(e *env, format *string, use, short, method, suffix string, cols []column, body func() (any, error)) (*cobra.Command, *armFlags) {
	var f armFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var in any
			if body != nil {
				var err error
				if in, err = body(); err != nil {
					return err
				}
			}
			s, sub, rg, err := migrationRef(ctx, e, &f)
			if err != nil {
				return err
			}
			var out any
			if err := s.arm(ctx, method, migrationPath(sub, rg, f.name, suffix), in, &out); err != nil {
				return err
			}
			if out == nil {
				return nil
			}
			return render(e.stdout, *format, out, cols)
		},
	}
	f.add(cmd, "name", "migration")
	return cmd, &f
}

func migrateShow(e *env, format *string) *cobra.Command {
	cmd, _ := migrateSimple(e, format, "show", "Show a migration", http.MethodGet, "", migrationColumns, nil)
	return cmd
}

func migrateDelete(e *env) *cobra.Command {
	none := "none"
	cmd, _ := migrateSimple(e, &none, "delete", "Delete a migration that is not moving devices", http.MethodDelete, "", nil, nil)
	return cmd
}

func migrateAction(e *env, format *string, use, short, action string) *cobra.Command {
	cmd, _ := migrateSimple(e, format, use, short, http.MethodPost, "/"+action, migrationColumns, func() (any, error) { return map[string]any{}, nil })
	return cmd
}

var problemColumns = []column{{"Check", "check"}, {"DeviceId", "deviceId"}, {"Reason", "reason"}}

func migratePreflight(e *env, format *string) *cobra.Command {
	var f armFlags
	var skipModel bool
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check a migration before anything moves: devices online, DeviceMove declared, target enrollment and capacity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, sub, rg, err := migrationRef(ctx, e, &f)
			if err != nil {
				return err
			}
			var rep map[string]any
			if err := s.arm(ctx, http.MethodPost, migrationPath(sub, rg, f.name, "/preflight"), map[string]any{"skipModelCheck": skipModel}, &rep); err != nil {
				return err
			}
			if *format != "table" {
				return render(e.stdout, *format, rep, nil)
			}
			// A table shows the problems under a summary line.
			fmt.Fprintf(e.stdout, "ok: %s, devices: %s, online: %s\n", str(rep, "ok"), str(rep, "devices"), str(rep, "online"))
			probs, _ := rep["problems"].([]any)
			if len(probs) == 0 {
				return nil
			}
			return render(e.stdout, "table", probs, problemColumns)
		},
	}
	f.add(cmd, "name", "migration")
	cmd.Flags().BoolVar(&skipModel, "skip-model-check", false, "do not require the devices' models to declare DeviceMove")
	return cmd
}

var migrationDeviceColumns = []column{{"DeviceId", "deviceId"}, {"Wave", "wave"}, {"State", "state"}, {"Attempts", "attempts"}, {"Reason", "reason"}}

func migrateDevices(e *env, format *string) *cobra.Command {
	var f armFlags
	var states []string
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List a migration's devices and their states",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, sub, rg, err := migrationRef(ctx, e, &f)
			if err != nil {
				return err
			}
			p := migrationPath(sub, rg, f.name, "/devices")
			if len(states) > 0 {
				p += "&state=" + url.QueryEscape(strings.Join(states, ","))
			}
			all, err := s.armList(ctx, p)
			if err != nil {
				return err
			}
			return render(e.stdout, *format, all, migrationDeviceColumns)
		},
	}
	f.add(cmd, "name", "migration")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only devices in these states (comma-separated)")
	return cmd
}

func migrateFailback(e *env, format *string) *cobra.Command {
	var ids []string
	cmd, _ := migrateSimple(e, format, "failback", "Command devices back to the source hub: those named, or every device that left it",
		http.MethodPost, "/failBack", migrationColumns, func() (any, error) { return map[string]any{"deviceIds": ids}, nil })
	cmd.Flags().StringSliceVar(&ids, "device-ids", nil, "the devices to fail back (default: every device that left the source)")
	return cmd
}

func migrateReport(e *env) *cobra.Command {
	var f armFlags
	var format string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write a migration's report: every device's states with times and reasons",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if format != "json" && format != "csv" {
				return usagef("--output for a report is json or csv")
			}
			s, sub, rg, err := migrationRef(ctx, e, &f)
			if err != nil {
				return err
			}
			return s.download(ctx, migrationPath(sub, rg, f.name, "/report")+"&format="+format, e.stdout)
		},
	}
	f.add(cmd, "name", "migration")
	cmd.Flags().StringVarP(&format, "output", "o", "json", "the report's format: json or csv")
	return cmd
}

// waveStatus is one wave in `migrate status`.
type waveStatus struct {
	Index  int            `json:"index"`
	Size   int            `json:"size"`
	State  string         `json:"state"`
	Counts map[string]int `json:"counts"`
}

// migrationStatus is what `migrate status` shows.
type migrationStatus struct {
	Name        string         `json:"name"`
	State       string         `json:"state"`
	StateReason string         `json:"stateReason,omitempty"`
	CurrentWave int            `json:"currentWave"`
	Devices     int            `json:"devices"`
	Counts      map[string]int `json:"counts"`
	Waves       []waveStatus   `json:"waves"`
}

// done counts a wave's devices in an end state.
func (w waveStatus) done() int {
	return w.Counts["verified"] + w.Counts["failed"] + w.Counts["failed-back"]
}

func (s *session) migrationStatus(ctx context.Context, sub, rg, name string) (*migrationStatus, error) {
	var m struct {
		Name       string `json:"name"`
		Properties struct {
			State       string         `json:"state"`
			StateReason string         `json:"stateReason"`
			CurrentWave int            `json:"currentWave"`
			DeviceCount int            `json:"deviceCount"`
			Counts      map[string]int `json:"counts"`
		} `json:"properties"`
	}
	if err := s.arm(ctx, http.MethodGet, migrationPath(sub, rg, name, ""), nil, &m); err != nil {
		return nil, err
	}
	var waves struct {
		Value []waveStatus `json:"value"`
	}
	if err := s.arm(ctx, http.MethodGet, migrationPath(sub, rg, name, "/waves"), nil, &waves); err != nil {
		return nil, err
	}
	st := &migrationStatus{Name: m.Name, State: m.Properties.State, StateReason: m.Properties.StateReason, CurrentWave: m.Properties.CurrentWave,
		Devices: m.Properties.DeviceCount, Counts: m.Properties.Counts, Waves: waves.Value}
	if st.Counts == nil {
		st.Counts = map[string]int{}
	}
	if st.Waves == nil {
		st.Waves = []waveStatus{}
	}
	return st, nil
}

// migrationEnded reports whether a migration state is final.
func migrationEnded(state string) bool {
	return state == "Completed" || state == "Failed" || state == "Cancelled"
}

// countsLine writes counts per state in the state machine's order.
func countsLine(c map[string]int) string {
	order := []string{"pending", "commanded", "acknowledged", "provisioned", "connected", "verified", "failing-back", "failed-back", "failed"}
	var parts []string
	for _, k := range order {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
		}
	}
	var rest []string
	for k, n := range c {
		if !slices.Contains(order, k) && n > 0 {
			rest = append(rest, fmt.Sprintf("%s=%d", k, n))
		}
	}
	sort.Strings(rest)
	parts = append(parts, rest...)
	if len(parts) == 0 {
		return "no devices"
	}
	return strings.Join(parts, " ")
}

func migrateStatus(e *env, format *string) *cobra.Command {
	var f armFlags
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a migration's state, its counts per state and its waves; --watch follows it to the end",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if interval <= 0 {
				return usagef("--interval must be positive")
			}
			s, sub, rg, err := migrationRef(ctx, e, &f)
			if err != nil {
				return err
			}
			st, err := s.migrationStatus(ctx, sub, rg, f.name)
			if err != nil {
				return err
			}
			if !watch {
				if *format == "table" {
					writeStatusLines(e.stdout, st)
					return nil
				}
				return render(e.stdout, *format, st, nil)
			}
			w := newStatusWatcher(e.stdout, isTerminalWriter(e.stdout))
			defer w.close()
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				w.show(st)
				if migrationEnded(st.State) {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
				}
				if st, err = s.migrationStatus(ctx, sub, rg, f.name); err != nil {
					return err
				}
			}
			w.close()
			if st.State != "Completed" {
				return fmt.Errorf("the migration ended %s: %s", st.State, st.StateReason)
			}
			return nil
		},
	}
	f.add(cmd, "name", "migration")
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the migration until it is Completed, Failed or Cancelled")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often --watch reads the status")
	return cmd
}

// writeStatusLines writes a status as plain lines: the migration, then
// one line per wave.
func writeStatusLines(w io.Writer, st *migrationStatus) {
	fmt.Fprintf(w, "%s: %s", st.Name, st.State)
	if st.StateReason != "" {
		fmt.Fprintf(w, " (%s)", st.StateReason)
	}
	fmt.Fprintf(w, ", wave %d of %d: %s\n", st.CurrentWave+1, len(st.Waves), countsLine(st.Counts))
	for _, wv := range st.Waves {
		fmt.Fprintf(w, "  wave %d %-12s %d/%d done: %s\n", wv.Index+1, wv.State, wv.done(), wv.Size, countsLine(wv.Counts))
	}
}

// statusWatcher shows a migration as it goes: a progress bar per wave on
// a terminal, or a block of plain lines whenever something changed.
type statusWatcher struct {
	w    io.Writer
	tty  bool
	bars []*progressbar.ProgressBar
	last string
}

func newStatusWatcher(w io.Writer, tty bool) *statusWatcher {
	return &statusWatcher{w: w, tty: tty}
}

func (sw *statusWatcher) show(st *migrationStatus) {
	if !sw.tty {
		var b strings.Builder
		writeStatusLines(&b, st)
		if b.String() != sw.last {
			sw.last = b.String()
			fmt.Fprint(sw.w, sw.last)
		}
		return
	}
	if sw.bars == nil {
		fmt.Fprintf(sw.w, "%s: %d devices in %d waves\n", st.Name, st.Devices, len(st.Waves))
		for _, wv := range st.Waves {
			sw.bars = append(sw.bars, progressbar.NewOptions(max(wv.Size, 1), progressbar.OptionSetWriter(io.Discard),
				progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionSetRenderBlankState(true)))
		}
	} else {
		// Redraw in place: up over the bars and the summary line.
		fmt.Fprintf(sw.w, "\033[%dA", len(sw.bars)+1)
	}
	for i, bar := range sw.bars {
		if i >= len(st.Waves) {
			break
		}
		wv := st.Waves[i]
		bar.Describe(fmt.Sprintf("wave %d %-9s", wv.Index+1, wv.State))
		_ = bar.Set(wv.done())
		fmt.Fprintf(sw.w, "\r\033[2K%s %s\n", bar.String(), countsLine(wv.Counts))
	}
	fmt.Fprintf(sw.w, "\r\033[2K%s: %s\n", st.State, countsLine(st.Counts))
}

func (sw *statusWatcher) close() { sw.bars = nil }

// isTerminalWriter reports whether w is an interactive terminal.
func isTerminalWriter(w io.Writer) bool {
	r, ok := w.(io.Reader)
	return ok && isTerminal(r)
}

// download copies the body of a GET to w, as it comes; ARM errors become
// *client.Error.
func (s *session) download(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.c.BaseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.c.Token)
	if s.c.UserAgent != "" {
		req.Header.Set("User-Agent", s.c.UserAgent)
	}
	resp, err := s.c.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &client.Error{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
		var v struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(data, &v) == nil && v.Error.Message != "" {
			e.Code, e.Message = v.Error.Code, v.Error.Message
		}
		return e
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("read report: %w", err)
	}
	return nil
}
