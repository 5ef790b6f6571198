package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// The legacy-shutdown commands live in the `ferry legacy` tree but speak
// the integrated surface (Ferry.Migration, api-version 2026-11-01) about
// an integrated catalog, named by -g and -c as in `ferry sphere`.

var (
	usageColumns = []column{{"PrincipalId", "principalId"}, {"PrincipalName", "principalName"}, {"UserAgent", "userAgent"},
		{"Count", "count"}, {"LastCall", "lastCall"}, {"Operations", "operations"}}
	sidestepColumns = []column{{"PrincipalId", "principalId"}, {"PrincipalName", "principalName"}, {"LegacyRoles", "legacyRoles"},
		{"Roles", "roles"}, {"Operations", "operations"}}
	accessColumns  = []column{{"TenantId", "tenantId"}, {"LegacyAccess", "legacyAccess"}}
	removedColumns = []column{{"PrincipalId", "principalId"}, {"RemovedLegacyRoles", "removedLegacyRoles"}}
)

// addShutdownCommands attaches `access pause|enable|block`, `usage`,
// `sidestep` and `role remove-all` to the legacy tree root.
func (lc *legacyCLI) addShutdownCommands(root *cobra.Command) {
	root.AddCommand(lc.accessCommand(), lc.usageCommand(), lc.sidestepCommand())
	for _, c := range root.Commands() {
		if c.Name() == "role" {
			c.AddCommand(lc.removeAllCommand())
		}
	}
}

// migrationLeaf makes a command about one catalog's Ferry.Migration
// actions: run gets the path /…/catalogs/{name}/providers/Ferry.Migration.
func (lc *legacyCLI) migrationLeaf(use, short string, f *sphereFlags, run func(ctx context.Context, s *session, mp string) error) *cobra.Command {
	cmd := lc.sphereCLI.leaf(use, short, func(ctx context.Context, s *session) error {
		cp, err := f.catalogPath(ctx, s)
		if err != nil {
			return err
		}
		return run(ctx, s, cp+"/providers/Ferry.Migration/")
	})
	f.add(cmd)
	return cmd
}

func (lc *legacyCLI) accessCommand() *cobra.Command {
	switchCmd := func(use, short, action string, confirm bool) *cobra.Command {
		var f sphereFlags
		var yes, interactive bool
		cmd := lc.migrationLeaf(use, short, &f, func(ctx context.Context, s *session, mp string) error {
			if confirm && !yes {
				if !interactive && !isTerminal(lc.e.stdin) {
					return usagef("blocking legacy access cannot be undone: pass --yes to confirm")
				}
				if err := lc.confirmBlock(f.catalog); err != nil {
					return err
				}
			}
			var out map[string]any
			if err := s.arm(ctx, http.MethodPost, withAPI(mp+action, apiMigration), nil, &out); err != nil {
				return err
			}
			return lc.render(out, accessColumns)
		})
		if confirm {
			cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
			cmd.Flags().BoolVar(&interactive, "interactive", false, "ask for confirmation on stdin even when it is not a terminal")
		}
		return cmd
	}
	return group("access", "Pause, enable or block legacy access to an integrated catalog",
		switchCmd("pause", "Pause legacy access: legacy calls fail with code 1 (TenantInMigration) until enabled again", "pauseLegacyAccess", false),
		switchCmd("enable", "Enable legacy access again after a pause", "enableLegacyAccess", false),
		switchCmd("block", "Block legacy access for good: legacy calls fail with 410 (code 2, TenantMigrationRequired)", "blockLegacyAccess", true))
}

// confirmBlock asks before the irreversible block.
func (lc *legacyCLI) confirmBlock(catalog string) error {
	if catalog == "" {
		catalog = "the catalog"
	}
	w := lc.e.stderr
	_, _ = w.Write([]byte("Block legacy access to " + catalog + " for good? Legacy calls will fail with 410 and this cannot be undone. [y/N] "))
	line, err := bufio.NewReader(lc.e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return errors.New("no answer; legacy access is unchanged")
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errors.New("cancelled; legacy access is unchanged")
	}
	return nil
}

func (lc *legacyCLI) usageCommand() *cobra.Command {
	var f sphereFlags
	var w window
	cmd := lc.migrationLeaf("usage", "Report who and what still calls the legacy surface of a catalog: principal, client, count, last call, operations", &f,
		func(ctx context.Context, s *session, mp string) error {
			from, to, err := w.parse(time.Now())
			if err != nil {
				return err
			}
			all, err := s.armList(ctx, withAPI(mp+"legacyUsage", apiMigration, "from", from, "to", to))
			if err != nil {
				return err
			}
			return lc.render(all, usageColumns)
		})
	w.add(cmd)
	return cmd
}

func (lc *legacyCLI) sidestepCommand() *cobra.Command {
	var f sphereFlags
	return lc.migrationLeaf("sidestep", "Report principals whose legacy roles grant more than their role assignments", &f,
		func(ctx context.Context, s *session, mp string) error {
			all, err := s.armList(ctx, withAPI(mp+"legacySidestep", apiMigration))
			if err != nil {
				return err
			}
			return lc.render(all, sidestepColumns)
		})
}

func (lc *legacyCLI) removeAllCommand() *cobra.Command {
	var f sphereFlags
	var assignee string
	cmd := lc.migrationLeaf("remove-all", "Remove every legacy role of a principal in an integrated catalog", &f,
		func(ctx context.Context, s *session, mp string) error {
			if err := need("assignee", assignee); err != nil {
				return err
			}
			pid, err := principalArg(assignee)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.arm(ctx, http.MethodPost, withAPI(mp+"removeLegacyRoles", apiMigration), map[string]string{"principalId": pid}, &out); err != nil {
				return err
			}
			return lc.render(out, removedColumns)
		})
	cmd.Flags().StringVar(&assignee, "assignee", "", "the principal's object ID")
	return cmd
}
