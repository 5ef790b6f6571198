package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/spf13/cobra"
)

// newRoleCommand is `ferry role`, Azure RBAC role assignments and
// definitions on the integrated surface, flagged like `az role`.
func newRoleCommand(e *env) *cobra.Command {
	var format string
	root := &cobra.Command{
		Use:   "role",
		Short: "Manage role assignments and list role definitions (like az role)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(root, &format)
	rc := &roleCLI{sphereCLI{e: e, format: &format}}
	root.AddCommand(group("assignment", "Manage role assignments", rc.assignmentCreate(), rc.assignmentList(), rc.assignmentDelete()),
		group("definition", "List role definitions", rc.definitionList()))
	return root
}

type roleCLI struct{ sphereCLI }

// scopeFlags are az role's --scope, --resource-group/-g and --subscription.
type scopeFlags struct{ scope, rg, sub string }

func (f *scopeFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.scope, "scope", "", "the scope: a subscription, resource group or resource ID (default: the subscription)")
	fl.StringVarP(&f.rg, "resource-group", "g", "", "the resource group, when --scope is not given")
	fl.StringVar(&f.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
}

// resolve returns the scope the flags name.
func (f *scopeFlags) resolve(ctx context.Context, s *session) (string, error) {
	if f.scope != "" {
		if !strings.HasPrefix(f.scope, "/") {
			return "", usagef("--scope must be a resource ID starting with '/', got %q", f.scope)
		}
		return strings.TrimRight(f.scope, "/"), nil
	}
	sub, err := s.subscription(ctx, f.sub)
	if err != nil {
		return "", err
	}
	p := "/subscriptions/" + url.PathEscape(sub)
	if f.rg != "" {
		p += "/resourceGroups/" + url.PathEscape(f.rg)
	}
	return p, nil
}

func authzPath(scope, kind string) string {
	return strings.TrimRight(scope, "/") + "/providers/Microsoft.Authorization/" + kind
}

// roleDefinitions lists the role definitions visible at scope, keyed by
// their GUID.
func (s *session) roleDefinitions(ctx context.Context, scope, name string) ([]any, error) {
	q := []string{}
	if name != "" {
		q = append(q, "$filter", "roleName eq '"+strings.ReplaceAll(name, "'", "''")+"'")
	}
	return s.armList(ctx, withAPI(authzPath(scope, "roleDefinitions"), apiAuthorization, q...))
}

// roleID resolves --role, a role name or definition GUID (or full ID), to
// the definition's GUID.
func (s *session) roleID(ctx context.Context, scope, role string) (string, error) {
	if i := strings.LastIndex(role, "/"); i >= 0 {
		role = role[i+1:]
	}
	if ferry.IsUUID(role) {
		return strings.ToLower(role), nil
	}
	defs, err := s.roleDefinitions(ctx, scope, role)
	if err != nil {
		return "", err
	}
	for _, d := range defs {
		if strings.EqualFold(str(d, "properties.roleName"), role) {
			return str(d, "name"), nil
		}
	}
	return "", fmt.Errorf("the role '%s' was not found (RoleDefinitionDoesNotExist)", role)
}

// principalArg checks --assignee: Ferry names principals by object ID.
func principalArg(v string) (string, error) {
	if !ferry.IsUUID(v) {
		return "", usagef("--assignee must be a principal's object ID (a GUID), got %q", v)
	}
	return strings.ToLower(v), nil
}

var (
	assignmentColumns = []column{{"Name", "name"}, {"Principal", "properties.principalId"}, {"PrincipalType", "properties.principalType"},
		{"Role", "roleName"}, {"Scope", "properties.scope"}}
	definitionColumns = []column{{"Name", "properties.roleName"}, {"Id", "name"}, {"Type", "properties.type"},
		{"Description", "properties.description"}}
)

func (rc *roleCLI) assignmentCreate() *cobra.Command {
	var f scopeFlags
	var assignee, role, description string
	cmd := rc.leaf("create", "Assign a role to a principal at a scope", func(ctx context.Context, s *session) error {
		if err := need("assignee", assignee, "role", role); err != nil {
			return err
		}
		pid, err := principalArg(assignee)
		if err != nil {
			return err
		}
		scope, err := f.resolve(ctx, s)
		if err != nil {
			return err
		}
		rid, err := s.roleID(ctx, scope, role)
		if err != nil {
			return err
		}
		sub, err := s.subscription(ctx, f.sub)
		if err != nil {
			return err
		}
		defID := authzPath("/subscriptions/"+sub, "roleDefinitions") + "/" + rid
		body := map[string]any{"properties": map[string]any{"roleDefinitionId": defID, "principalId": pid, "description": description}}
		var out map[string]any
		p := authzPath(scope, "roleAssignments") + "/" + ferry.NewUUID()
		if err := s.arm(ctx, http.MethodPut, withAPI(p, apiAuthorization), body, &out); err != nil {
			return err
		}
		rc.nameRoles(ctx, s, scope, []any{out})
		return rc.render(out, assignmentColumns)
	})
	f.add(cmd)
	cmd.Flags().StringVar(&assignee, "assignee", "", "the principal's object ID")
	cmd.Flags().StringVar(&assignee, "assignee-object-id", "", "same as --assignee")
	cmd.Flags().StringVar(&role, "role", "", "the role's name (e.g. 'Azure Sphere Contributor') or definition ID")
	cmd.Flags().StringVar(&description, "description", "", "why the assignment exists")
	return cmd
}

// listAssignments returns the assignments at, above and below scope, of
// one principal when pid is not "".
func (s *session) listAssignments(ctx context.Context, scope, pid string) ([]any, error) {
	var q []string
	if pid != "" {
		q = []string{"$filter", "principalId eq '" + pid + "'"}
	}
	return s.armList(ctx, withAPI(authzPath(scope, "roleAssignments"), apiAuthorization, q...))
}

// nameRoles adds each assignment's role name (roleName), for tables.
func (rc *roleCLI) nameRoles(ctx context.Context, s *session, scope string, as []any) {
	defs, err := s.roleDefinitions(ctx, scope, "")
	if err != nil {
		return // the names are a convenience; the IDs are there
	}
	names := map[string]string{}
	for _, d := range defs {
		names[strings.ToLower(str(d, "name"))] = str(d, "properties.roleName")
	}
	for _, a := range as {
		if m, ok := a.(map[string]any); ok {
			id := str(m, "properties.roleDefinitionId")
			m["roleName"] = names[strings.ToLower(id[strings.LastIndex(id, "/")+1:])]
		}
	}
}

func (rc *roleCLI) assignmentList() *cobra.Command {
	var f scopeFlags
	var assignee, role string
	cmd := rc.leaf("list", "List role assignments at, above and below a scope", func(ctx context.Context, s *session) error {
		pid := ""
		if assignee != "" {
			var err error
			if pid, err = principalArg(assignee); err != nil {
				return err
			}
		}
		scope, err := f.resolve(ctx, s)
		if err != nil {
			return err
		}
		all, err := s.listAssignments(ctx, scope, pid)
		if err != nil {
			return err
		}
		rc.nameRoles(ctx, s, scope, all)
		if role != "" {
			keep := []any{}
			for _, a := range all {
				id := str(a, "properties.roleDefinitionId")
				if strings.EqualFold(str(a, "roleName"), role) || strings.EqualFold(id[strings.LastIndex(id, "/")+1:], role) {
					keep = append(keep, a)
				}
			}
			all = keep
		}
		return rc.render(all, assignmentColumns)
	})
	f.add(cmd)
	cmd.Flags().StringVar(&assignee, "assignee", "", "only this principal's assignments (object ID)")
	cmd.Flags().StringVar(&role, "role", "", "only assignments of this role (name or definition ID)")
	return cmd
}

func (rc *roleCLI) assignmentDelete() *cobra.Command {
	var f scopeFlags
	var ids []string
	var assignee, role string
	cmd := rc.leaf("delete", "Delete role assignments, by ID or by assignee, role and scope", func(ctx context.Context, s *session) error {
		if len(ids) == 0 {
			if err := need("assignee", assignee, "role", role); err != nil {
				return usagef("give --ids, or --assignee and --role (with --scope)")
			}
			pid, err := principalArg(assignee)
			if err != nil {
				return err
			}
			scope, err := f.resolve(ctx, s)
			if err != nil {
				return err
			}
			rid, err := s.roleID(ctx, scope, role)
			if err != nil {
				return err
			}
			all, err := s.listAssignments(ctx, scope, pid)
			if err != nil {
				return err
			}
			for _, a := range all {
				def := str(a, "properties.roleDefinitionId")
				if strings.EqualFold(str(a, "properties.scope"), scope) && strings.EqualFold(def[strings.LastIndex(def, "/")+1:], rid) {
					ids = append(ids, str(a, "id"))
				}
			}
			if len(ids) == 0 {
				return fmt.Errorf("no assignment of '%s' to %s at %s (RoleAssignmentNotFound)", role, pid, scope)
			}
		}
		for _, id := range ids {
			if !strings.HasPrefix(id, "/") {
				return usagef("--ids: want role assignment resource IDs, got %q", id)
			}
			if err := s.arm(ctx, http.MethodDelete, withAPI(id, apiAuthorization), nil, nil); err != nil {
				return err
			}
		}
		return nil
	})
	f.add(cmd)
	cmd.Flags().StringSliceVar(&ids, "ids", nil, "the role assignments' resource IDs")
	cmd.Flags().StringVar(&assignee, "assignee", "", "the principal's object ID")
	cmd.Flags().StringVar(&role, "role", "", "the role's name or definition ID")
	return cmd
}

func (rc *roleCLI) definitionList() *cobra.Command {
	var f scopeFlags
	var name string
	var custom bool
	cmd := rc.leaf("list", "List role definitions", func(ctx context.Context, s *session) error {
		scope, err := f.resolve(ctx, s)
		if err != nil {
			return err
		}
		defs, err := s.roleDefinitions(ctx, scope, name)
		if err != nil {
			return err
		}
		if custom {
			keep := []any{}
			for _, d := range defs {
				if str(d, "properties.type") == "CustomRole" {
					keep = append(keep, d)
				}
			}
			defs = keep
		}
		return rc.render(defs, definitionColumns)
	})
	f.add(cmd)
	cmd.Flags().StringVarP(&name, "name", "n", "", "only the role of this name")
	cmd.Flags().BoolVar(&custom, "custom-role-only", false, "only custom roles")
	return cmd
}
