package main

import (
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

// resourceGroupAPI is the Microsoft.Resources api-version the group
// commands speak.
const resourceGroupAPI = "2021-04-01"

var groupColumns = []column{{"Name", "name"}, {"Location", "location"}, {"State", "properties.provisioningState"}}

// newGroupCommand is `ferry group`, like `az group`: the resource groups
// that hubs, provisioning services and catalogs live in.
func newGroupCommand(e *env) *cobra.Command {
	var format string
	group := &cobra.Command{
		Use:   "group",
		Short: "Manage resource groups",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
	}
	outputFlag(group, &format)

	var name, sub, location string
	path := func(cmd *cobra.Command, s *session) (string, error) {
		if name == "" {
			return "", usagef("the flag --name (-n) is required")
		}
		id, err := s.subscription(cmd.Context(), sub)
		if err != nil {
			return "", err
		}
		return "/subscriptions/" + url.PathEscape(id) + "/resourcegroups/" + url.PathEscape(name) + "?api-version=" + resourceGroupAPI, nil
	}
	named := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVarP(&name, "name", "n", "", "the resource group's name")
		c.Flags().StringVar(&sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
		return c
	}
	create := named(&cobra.Command{
		Use: "create", Short: "Create a resource group (or update its tags)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.session()
			if err != nil {
				return err
			}
			p, err := path(cmd, s)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.arm(cmd.Context(), http.MethodPut, p, map[string]any{"location": location}, &out); err != nil {
				return err
			}
			return render(e.stdout, format, out, groupColumns)
		},
	})
	create.Flags().StringVarP(&location, "location", "l", "global", "the resource group's location")
	show := named(&cobra.Command{
		Use: "show", Short: "Show a resource group", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.session()
			if err != nil {
				return err
			}
			p, err := path(cmd, s)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.arm(cmd.Context(), http.MethodGet, p, nil, &out); err != nil {
				return err
			}
			return render(e.stdout, format, out, groupColumns)
		},
	})
	del := named(&cobra.Command{
		Use: "delete", Short: "Delete a resource group with everything in it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.session()
			if err != nil {
				return err
			}
			p, err := path(cmd, s)
			if err != nil {
				return err
			}
			return s.arm(cmd.Context(), http.MethodDelete, p, nil, nil)
		},
	})
	list := &cobra.Command{
		Use: "list", Short: "List resource groups", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.session()
			if err != nil {
				return err
			}
			id, err := s.subscription(cmd.Context(), sub)
			if err != nil {
				return err
			}
			rows, err := s.armList(cmd.Context(), "/subscriptions/"+url.PathEscape(id)+"/resourcegroups?api-version="+resourceGroupAPI)
			if err != nil {
				return err
			}
			return render(e.stdout, format, rows, groupColumns)
		},
	}
	list.Flags().StringVar(&sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
	group.AddCommand(create, show, del, list)
	return group
}
