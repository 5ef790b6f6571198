package main

import (
	"context"
	"net/http"

	"github.com/spf13/cobra"
)

// dataTarget picks a hub (hubTarget) or a provisioning service (dpsTarget)
// from a command's flags.
type dataTarget interface {
	add(cmd *cobra.Command, withID bool)
	resolve(ctx context.Context, e *env, withID bool) (*session, string, error)
}

// dataShowCmd is a `show` command: it reads path(--idFlag) from the target
// t picks and renders it with cols.
func dataShowCmd(e *env, format *string, t dataTarget, short, idFlag, idUsage string, path func(id string) string, cols []column) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return usagef("the flag --%s is required", idFlag)
			}
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, false)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.dataJSON(ctx, host, http.MethodGet, path(id), nil, &out); err != nil {
				return err
			}
			return render(e.stdout, *format, out, cols)
		},
	}
	t.add(cmd, false)
	cmd.Flags().StringVar(&id, idFlag, "", idUsage)
	return cmd
}

// dataDeleteCmd is a `delete` command: it deletes path(--idFlag) at the
// target t picks.
func dataDeleteCmd(e *env, t dataTarget, short, idFlag, idUsage string, path func(id string) string) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return usagef("the flag --%s is required", idFlag)
			}
			ctx := cmd.Context()
			s, host, err := t.resolve(ctx, e, false)
			if err != nil {
				return err
			}
			return s.dataJSON(ctx, host, http.MethodDelete, path(id), nil, nil)
		},
	}
	t.add(cmd, false)
	cmd.Flags().StringVar(&id, idFlag, "", idUsage)
	return cmd
}
