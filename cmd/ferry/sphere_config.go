package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ferry-iot/ferry/client"
	"github.com/spf13/cobra"
)

// configKeys are the defaults `ferry config set` keeps in the profile,
// named as az config names them (defaults.group, defaults.sphere.catalog).
var configKeys = map[string]func(p *client.Profile) *string{
	"defaults.group":          func(p *client.Profile) *string { return &p.DefaultResourceGroup },
	"defaults.sphere.catalog": func(p *client.Profile) *string { return &p.DefaultCatalog },
	"defaults.subscription":   func(p *client.Profile) *string { return &p.DefaultSubscription },
	"defaults.legacy.tenant":  func(p *client.Profile) *string { return &p.DefaultTenant },
}

func configKeyNames() string {
	var ks []string
	for k := range configKeys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// newConfigCommand is `ferry config set|get|unset`, like `az config`.
func newConfigCommand(e *env) *cobra.Command {
	edit := func(args []string, apply func(p *client.Profile, key, value string) error) error {
		if len(args) == 0 {
			return usagef("name at least one setting (%s)", configKeyNames())
		}
		path, err := client.ProfilePath(e.getenv)
		if err != nil {
			return err
		}
		p, err := client.LoadProfile(path)
		if err != nil {
			return err
		}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			if _, ok := configKeys[k]; !ok {
				return usagef("unknown setting %q: use %s", k, configKeyNames())
			}
			if err := apply(p, k, v); err != nil {
				return err
			}
		}
		return p.Save(path)
	}
	set := &cobra.Command{
		Use:   "set KEY=VALUE...",
		Short: "Set defaults: defaults.group, defaults.sphere.catalog, defaults.subscription, defaults.legacy.tenant",
		RunE: func(_ *cobra.Command, args []string) error {
			for _, a := range args {
				if !strings.Contains(a, "=") {
					return usagef("want KEY=VALUE, got %q", a)
				}
			}
			return edit(args, func(p *client.Profile, k, v string) error {
				*configKeys[k](p) = v
				return nil
			})
		},
	}
	unset := &cobra.Command{
		Use:   "unset KEY...",
		Short: "Remove defaults",
		RunE: func(_ *cobra.Command, args []string) error {
			return edit(args, func(p *client.Profile, k, _ string) error {
				*configKeys[k](p) = ""
				return nil
			})
		},
	}
	get := &cobra.Command{
		Use:   "get [KEY...]",
		Short: "Show defaults",
		RunE: func(_ *cobra.Command, args []string) error {
			path, err := client.ProfilePath(e.getenv)
			if err != nil {
				return err
			}
			p, err := client.LoadProfile(path)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				for _, k := range strings.Split(configKeyNames(), ", ") {
					args = append(args, k)
				}
			}
			for _, k := range args {
				f, ok := configKeys[k]
				if !ok {
					return usagef("unknown setting %q: use %s", k, configKeyNames())
				}
				fmt.Fprintf(e.stdout, "%s=%s\n", k, *f(p))
			}
			return nil
		},
	}
	c := &cobra.Command{Use: "config", Short: "Keep defaults for later commands in the profile (like az config)", Args: cobra.ArbitraryArgs, RunE: groupRun}
	c.AddCommand(set, unset, get)
	return c
}
