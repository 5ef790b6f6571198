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
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// apiMigration is the Ferry.Migration api-version: the Integrate step, the
// legacy access switches, the legacy reports and the audit query.
const apiMigration = "2026-11-01"

// proposal is the answer of proposeIntegration (httpapi/migration).
type proposal struct {
	TenantID       string               `json:"tenantId"`
	CatalogID      string               `json:"catalogId"`
	SubscriptionID string               `json:"subscriptionId"`
	ResourceGroup  string               `json:"resourceGroup"`
	CatalogName    string               `json:"catalogName"`
	Resources      map[string]int       `json:"resources"`
	Assignments    []proposedAssignment `json:"assignments"`
	Warnings       []string             `json:"warnings"`
}

// proposedAssignment is the role assignment proposed for one legacy role
// holder.
type proposedAssignment struct {
	PrincipalID      string   `json:"principalId"`
	PrincipalName    string   `json:"principalName,omitempty"`
	LegacyRoles      []string `json:"legacyRoles,omitempty"`
	RoleAssignmentID string   `json:"roleAssignmentId"`
	RoleDefinitionID string   `json:"roleDefinitionId"`
	RoleName         string   `json:"roleName,omitempty"`
	Scope            string   `json:"scope"`
	Warning          string   `json:"warning,omitempty"`
}

// decision is one reviewed proposal, as integrate takes it and as
// --decisions reads it.
type decision struct {
	PrincipalID      string `json:"principalId"`
	Decision         string `json:"decision"` // Accept, Change or Reject
	RoleDefinitionID string `json:"roleDefinitionId,omitempty"`

	roleName string // for the summary; not sent
}

// newIntegrateCommand is `ferry integrate`: the Integrate step that turns
// a legacy-only tenant into a catalog under a resource group, with a
// review of the role assignment proposed for each legacy role holder.
func newIntegrateCommand(e *env) *cobra.Command {
	var format, tenant, rg, sub, catalogName, decisionsArg string
	var yes, dryRun, interactive bool
	cmd := &cobra.Command{
		Use:   "integrate",
		Short: "Integrate a legacy tenant as a catalog, reviewing the role assignment proposed for each legacy role holder",
		Long: `Integrate a tenant that exists only on the legacy surface as a catalog under
a subscription and resource group. Ferry proposes a role assignment at the
catalog for each legacy role holder (Administrator -> Owner, Contributor ->
Azure Sphere Contributor, Reader -> Azure Sphere Reader); each proposal is
accepted, changed to another role or rejected, and the whole step applies
at once or not at all.

On a terminal (or with --interactive) the proposal is shown and each
proposal is reviewed by prompt: [a]ccept, [c]hange (then a role name) or
[r]eject, then the step is confirmed. Scripts pass --yes (accept every
proposal) or --decisions FILE|- with a JSON array of
{"principalId", "decision": "Accept|Change|Reject", "roleDefinitionId"};
with both, --yes accepts the proposals the file does not name.
--dry-run only shows the proposal.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			if err := need("tenant", tenant, "catalog-name", catalogName); err != nil {
				return err
			}
			prompts := interactive || isTerminal(e.stdin)
			if !dryRun && !yes && decisionsArg == "" && !prompts {
				return usagef("stdin is not a terminal: pass --yes to accept every proposal, --decisions FILE|- to give a decision per principal, or --dry-run to only see the proposal")
			}
			if decisionsArg == "-" && prompts && !dryRun {
				return usagef("--decisions - reads stdin, which the review prompts need too: pass a file, or --yes")
			}
			s, err := e.session()
			if err != nil {
				return err
			}
			ic := &integrateCLI{e: e, s: s, format: format, in: bufio.NewReader(e.stdin)}
			return ic.run(cmd.Context(), integrateArgs{tenant: tenant, rg: rg, sub: sub, catalogName: catalogName,
				decisions: decisionsArg, yes: yes, dryRun: dryRun, prompts: prompts})
		},
	}
	outputFlag(cmd, &format)
	fl := cmd.Flags()
	fl.StringVarP(&tenant, "tenant", "t", "", "the legacy tenant's ID or name")
	fl.StringVarP(&rg, "resource-group", "g", "", "the resource group the catalog goes in (default: 'ferry config set defaults.group=')")
	fl.StringVar(&sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
	fl.StringVar(&catalogName, "catalog-name", "", "the name the catalog gets")
	fl.BoolVarP(&yes, "yes", "y", false, "accept every proposal without prompting")
	fl.StringVar(&decisionsArg, "decisions", "", "a JSON file of decisions, or - for stdin")
	fl.BoolVar(&dryRun, "dry-run", false, "show the proposal and change nothing")
	fl.BoolVar(&interactive, "interactive", false, "review by prompts read from stdin even when it is not a terminal")
	return cmd
}

type integrateArgs struct {
	tenant, rg, sub, catalogName, decisions string
	yes, dryRun, prompts                    bool
}

// integrateCLI is one run of `ferry integrate`.
type integrateCLI struct {
	e      *env
	s      *session
	format string
	in     *bufio.Reader // the review's answers
}

func (ic *integrateCLI) run(ctx context.Context, a integrateArgs) error {
	s := ic.s
	rg := s.resourceGroup(a.rg)
	if rg == "" {
		return usagef("the flag --resource-group (-g) is required (or set 'ferry config set defaults.group=NAME')")
	}
	sub, err := s.subscription(ctx, a.sub)
	if err != nil {
		return err
	}
	tenantID, err := s.legacyTenant(ctx, a.tenant)
	if err != nil {
		return err
	}
	// Read the decisions before anything is sent: a bad file changes
	// nothing and is a usage error.
	var ds []decision
	if a.decisions != "" && !a.dryRun {
		if ds, err = ic.readDecisions(ctx, a.decisions, sub); err != nil {
			return err
		}
	}
	rgPath := "/subscriptions/" + url.PathEscape(sub) + "/resourceGroups/" + url.PathEscape(rg) + "/providers/Ferry.Migration/"
	body := map[string]any{"tenantId": tenantID, "catalogName": a.catalogName}
	var p proposal
	if err := s.arm(ctx, http.MethodPost, withAPI(rgPath+"proposeIntegration", apiMigration), body, &p); err != nil {
		return fmt.Errorf("propose integration: %w", err)
	}
	if a.dryRun {
		if ic.format == "table" {
			return writeProposal(ic.e.stdout, &p)
		}
		return render(ic.e.stdout, ic.format, p, nil)
	}

	proposed := map[string]string{}
	for _, x := range p.Assignments {
		proposed[strings.ToLower(x.PrincipalID)] = x.RoleName
	}
	given := map[string]bool{}
	for i, d := range ds {
		given[strings.ToLower(d.PrincipalID)] = true
		if d.Decision != "Change" {
			ds[i].roleName = proposed[strings.ToLower(d.PrincipalID)]
		}
	}
	var open []proposedAssignment
	for _, x := range p.Assignments {
		if !given[strings.ToLower(x.PrincipalID)] {
			open = append(open, x)
		}
	}
	switch {
	case len(open) == 0:
	case a.yes:
		for _, x := range open {
			ds = append(ds, decision{PrincipalID: x.PrincipalID, Decision: "Accept", roleName: x.RoleName})
		}
	case a.prompts:
		if err := writeProposal(ic.e.stderr, &p); err != nil {
			return err
		}
		reviewed, err := ic.review(ctx, sub, open)
		if err != nil {
			return err
		}
		ds = append(ds, reviewed...)
		if err := ic.confirm(&p, ds); err != nil {
			return err
		}
	default:
		return usagef("--decisions gives no decision for %s: add them, or pass --yes to accept the rest", open[0].PrincipalID)
	}

	body["decisions"] = ds
	var res struct {
		ID              string `json:"id"`
		Name            string `json:"name"`
		TenantID        string `json:"tenantId"`
		LegacyAccess    string `json:"legacyAccess"`
		RoleAssignments []struct {
			PrincipalID      string `json:"principalId"`
			RoleAssignmentID string `json:"roleAssignmentId"`
			RoleDefinitionID string `json:"roleDefinitionId"`
			Scope            string `json:"scope"`
		} `json:"roleAssignments"`
		Rejected []string `json:"rejected"`
	}
	if err := s.arm(ctx, http.MethodPost, withAPI(rgPath+"integrate", apiMigration), body, &res); err != nil {
		return fmt.Errorf("integrate: %w", err)
	}
	if ic.format != "table" {
		var v any
		b, _ := json.Marshal(res)
		_ = json.Unmarshal(b, &v)
		return render(ic.e.stdout, ic.format, v, nil)
	}
	roleNames := map[string]string{}
	for _, d := range ds {
		roleNames[strings.ToLower(d.PrincipalID)] = d.roleName
	}
	fmt.Fprintf(ic.e.stdout, "Integrated tenant %s as catalog %s (legacy access %s).\n\n", res.TenantID, res.ID, res.LegacyAccess)
	var rows []any
	for _, x := range res.RoleAssignments {
		rows = append(rows, map[string]any{"principalId": x.PrincipalID, "role": roleNames[strings.ToLower(x.PrincipalID)],
			"roleDefinitionId": x.RoleDefinitionID[strings.LastIndex(x.RoleDefinitionID, "/")+1:], "decision": "Assigned"})
	}
	for _, r := range res.Rejected {
		rows = append(rows, map[string]any{"principalId": r, "decision": "Rejected"})
	}
	return render(ic.e.stdout, "table", rows, []column{{"Principal", "principalId"}, {"Decision", "decision"},
		{"Role", "role"}, {"RoleDefinitionId", "roleDefinitionId"}})
}

// writeProposal shows a proposal to a person: the catalog to be, the
// resources it brings and one line per legacy role holder.
func writeProposal(w io.Writer, p *proposal) error {
	fmt.Fprintf(w, "Tenant %s becomes catalog %s\n", p.TenantID, p.CatalogID)
	var kinds []string
	for k := range p.Resources {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var counts []string
	for _, k := range kinds {
		counts = append(counts, fmt.Sprintf("%s %d", k[strings.LastIndex(k, "/")+1:], p.Resources[k]))
	}
	fmt.Fprintf(w, "Resources: %s\n\n", strings.Join(counts, ", "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tPrincipal\tName\tLegacy roles\tProposed role")
	for i, x := range p.Assignments {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, x.PrincipalID, displayName(x), strings.Join(x.LegacyRoles, ", "), x.RoleName)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, x := range p.Assignments {
		if x.Warning != "" {
			fmt.Fprintf(w, "Warning (#%d, %s): %s\n", i+1, x.RoleName, x.Warning)
		}
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// displayName is the principal's name when it says more than its ID.
func displayName(x proposedAssignment) string {
	if strings.EqualFold(x.PrincipalName, x.PrincipalID) {
		return ""
	}
	return x.PrincipalName
}

// readLine reads one answer; io.EOF ends the review.
func (ic *integrateCLI) readLine() (string, error) {
	line, err := ic.in.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return "", errors.New("the review ended before every proposal had an answer; nothing changed")
		}
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// review asks for a decision on each proposal.
func (ic *integrateCLI) review(ctx context.Context, sub string, open []proposedAssignment) ([]decision, error) {
	w := ic.e.stderr
	var ds []decision
	for i, x := range open {
		who := x.PrincipalID
		if n := displayName(x); n != "" {
			who = n + " (" + x.PrincipalID + ")"
		}
		for {
			fmt.Fprintf(w, "[%d/%d] %s, legacy %s -> %s: [a]ccept, [c]hange, [r]eject? ", i+1, len(open), who,
				strings.Join(x.LegacyRoles, ", "), x.RoleName)
			ans, err := ic.readLine()
			if err != nil {
				return nil, err
			}
			switch strings.ToLower(ans) {
			case "a", "accept":
				ds = append(ds, decision{PrincipalID: x.PrincipalID, Decision: "Accept", roleName: x.RoleName})
			case "r", "reject":
				ds = append(ds, decision{PrincipalID: x.PrincipalID, Decision: "Reject"})
			case "c", "change":
				d, err := ic.askRole(ctx, sub, x)
				if err != nil {
					return nil, err
				}
				ds = append(ds, d)
			default:
				fmt.Fprintf(w, "Answer a, c or r.\n")
				continue
			}
			break
		}
	}
	return ds, nil
}

// askRole asks for the role of a changed proposal until it names one.
func (ic *integrateCLI) askRole(ctx context.Context, sub string, x proposedAssignment) (decision, error) {
	scope := "/subscriptions/" + url.PathEscape(sub)
	for {
		fmt.Fprintf(ic.e.stderr, "  Role for %s (name or definition ID, e.g. Azure Sphere Reader): ", x.PrincipalID)
		name, err := ic.readLine()
		if err != nil {
			return decision{}, err
		}
		if name == "" {
			continue
		}
		id, err := ic.s.roleID(ctx, scope, name)
		if err != nil {
			fmt.Fprintf(ic.e.stderr, "  %v\n", err)
			continue
		}
		return decision{PrincipalID: x.PrincipalID, Decision: "Change",
			RoleDefinitionID: scope + "/providers/Microsoft.Authorization/roleDefinitions/" + id, roleName: name}, nil
	}
}

// confirm shows the decisions and asks whether to apply them.
func (ic *integrateCLI) confirm(p *proposal, ds []decision) error {
	w := ic.e.stderr
	fmt.Fprintf(w, "\nIntegrate tenant %s as %s:\n", p.TenantID, p.CatalogID)
	for _, d := range ds {
		switch d.Decision {
		case "Reject":
			fmt.Fprintf(w, "  %s: no role assignment\n", d.PrincipalID)
		default:
			fmt.Fprintf(w, "  %s: %s\n", d.PrincipalID, d.roleName)
		}
	}
	fmt.Fprintf(w, "Apply? [y/N] ")
	ans, err := ic.readLine()
	if err != nil {
		return err
	}
	if a := strings.ToLower(ans); a != "y" && a != "yes" {
		return errors.New("integration cancelled; nothing changed")
	}
	return nil
}

// readDecisions reads --decisions: a file, or stdin for "-". A
// roleDefinitionId may also be a role name.
func (ic *integrateCLI) readDecisions(ctx context.Context, arg, sub string) ([]decision, error) {
	var b []byte
	var err error
	if arg == "-" {
		b, err = io.ReadAll(ic.in)
	} else {
		b, err = os.ReadFile(arg)
	}
	if err != nil {
		return nil, usagef("--decisions: %v", err)
	}
	var raw []struct {
		PrincipalID      string `json:"principalId"`
		Decision         string `json:"decision"`
		RoleDefinitionID string `json:"roleDefinitionId"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, usagef("--decisions: want a JSON array of {principalId, decision, roleDefinitionId}: %v", err)
	}
	scope := "/subscriptions/" + url.PathEscape(sub)
	var ds []decision
	for i, r := range raw {
		if r.PrincipalID == "" {
			return nil, usagef("--decisions: item %d has no principalId", i)
		}
		v, err := enumArg("decisions", r.Decision, "Accept", "Change", "Reject")
		if err != nil || v == "" {
			return nil, usagef("--decisions: item %d has decision %q: use Accept, Change or Reject", i, r.Decision)
		}
		d := decision{PrincipalID: r.PrincipalID, Decision: v}
		switch v {
		case "Accept", "Reject":
		case "Change":
			if r.RoleDefinitionID == "" {
				return nil, usagef("--decisions: item %d changes the role of %s but names no roleDefinitionId", i, r.PrincipalID)
			}
			id, err := ic.s.roleID(ctx, scope, r.RoleDefinitionID)
			if err != nil {
				return nil, err
			}
			d.RoleDefinitionID = scope + "/providers/Microsoft.Authorization/roleDefinitions/" + id
			d.roleName = r.RoleDefinitionID
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Audit log.

var auditColumns = []column{{"Time", "time"}, {"Surface", "properties.Surface"}, {"Operation", "properties.OperationId"},
	{"Result", "resultType"}, {"Status", "properties.StatusCode"}, {"Principal", "properties.PrincipalId"},
	{"UserAgent", "properties.UserAgent"}, {"Resource", "properties.ResourceId"}}

// newAuditCommand is `ferry audit`: the audit log of both surfaces, in
// the ASCAuditLogs shape.
func newAuditCommand(e *env) *cobra.Command {
	var format string
	root := &cobra.Command{
		Use:   "audit",
		Short: "Query the audit log of both management surfaces",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(root, &format)
	sc := &sphereCLI{e: e, format: &format}
	var f sphereFlags
	var w window
	var principal, operation, result, surface string
	var top int
	list := sc.leaf("list", "List audit records, newest first: a catalog's with --catalog, else the whole deployment's", func(ctx context.Context, s *session) error {
		from, to, err := w.parse(time.Now())
		if err != nil {
			return err
		}
		if result, err = enumArg("result", result, "Success", "Failure"); err != nil {
			return err
		}
		if surface, err = enumArg("surface", surface, "Integrated", "Legacy", "Hub", "DPS", "Portal", "Identity"); err != nil {
			return err
		}
		if top < 1 {
			return usagef("--top must be at least 1")
		}
		path := "/providers/Ferry.Migration/auditLogs"
		if f.catalog != "" {
			cp, err := f.catalogPath(ctx, s)
			if err != nil {
				return err
			}
			path = cp + path
		}
		page := min(top, 1000)
		next := withAPI(path, apiMigration, "from", from, "to", to, "principalId", principal, "operation", operation,
			"result", result, "surface", surface, "$top", fmt.Sprint(page))
		all := []any{}
		for next != "" && len(all) < top {
			var pg struct {
				Value    []any  `json:"value"`
				NextLink string `json:"nextLink"`
			}
			if err := s.arm(ctx, http.MethodGet, next, nil, &pg); err != nil {
				return err
			}
			all = append(all, pg.Value...)
			next = ""
			if pg.NextLink != "" {
				u, err := url.Parse(pg.NextLink)
				if err != nil {
					return fmt.Errorf("follow nextLink: %w", err)
				}
				next = u.RequestURI()
			}
		}
		if len(all) > top {
			all = all[:top]
		}
		return sc.render(all, auditColumns)
	})
	f.add(list)
	w.add(list)
	fl := list.Flags()
	fl.StringVar(&principal, "principal", "", "only calls by this principal (object ID)")
	fl.StringVar(&operation, "operation", "", "only this operation (its ID, e.g. Catalogs_PauseLegacyAccess)")
	fl.StringVar(&result, "result", "", "only Success or Failure")
	fl.StringVar(&surface, "surface", "", "only Integrated, Legacy, Hub, DPS, Portal or Identity")
	fl.IntVar(&top, "top", 100, "at most this many records")
	root.AddCommand(list)
	return root
}

// window is a time range: --from and --to, each an RFC 3339 time or a
// duration before now ("24h").
type window struct{ from, to string }

func (w *window) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.from, "from", "", "the start: an RFC 3339 time, or a duration before now such as 24h")
	cmd.Flags().StringVar(&w.to, "to", "", "the end: an RFC 3339 time, or a duration before now")
}

// parse returns the range as RFC 3339 strings ("" when open).
func (w *window) parse(now time.Time) (from, to string, err error) {
	conv := func(flag, v string) (string, error) {
		if v == "" {
			return "", nil
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC().Format(time.RFC3339Nano), nil
		}
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
		}
		return "", usagef("--%s: want an RFC 3339 time (2026-11-01T00:00:00Z) or a duration (24h), got %q", flag, v)
	}
	if from, err = conv("from", w.from); err != nil {
		return "", "", err
	}
	to, err = conv("to", w.to)
	return from, to, err
}

// enumArg returns v in its canonical spelling among names ("" stays "").
func enumArg(flag, v string, names ...string) (string, error) {
	if v == "" {
		return "", nil
	}
	for _, n := range names {
		if strings.EqualFold(n, v) {
			return n, nil
		}
	}
	return "", usagef("--%s: want one of %s, got %q", flag, strings.Join(names, ", "), v)
}
