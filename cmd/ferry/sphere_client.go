package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// apiSphere is the Microsoft.AzureSphere api-version the sphere commands
// speak; apiAuthorization is the Microsoft.Authorization one.
const (
	apiSphere        = "2024-04-01"
	apiAuthorization = "2022-04-01"
)

// sphereFlags locate a catalog, as every cloud `az sphere` command does:
// --resource-group/-g and --catalog/-c, with the profile's defaults.
type sphereFlags struct{ sub, rg, catalog string }

func (f *sphereFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.rg, "resource-group", "g", "", "the resource group (default: 'ferry config set defaults.group=')")
	fl.StringVarP(&f.catalog, "catalog", "c", "", "the catalog (default: 'ferry config set defaults.sphere.catalog=')")
	fl.StringVar(&f.sub, "subscription", "", "the subscription ID (default: the profile's, or the first one)")
}

// resourceGroupPath returns /subscriptions/{sub}/resourceGroups/{rg}; the
// resource group must be known.
func (f *sphereFlags) resourceGroupPath(ctx context.Context, s *session) (string, error) {
	rg := s.resourceGroup(f.rg)
	if rg == "" {
		return "", usagef("the flag --resource-group (-g) is required (or set 'ferry config set defaults.group=NAME')")
	}
	sub, err := s.subscription(ctx, f.sub)
	if err != nil {
		return "", err
	}
	return "/subscriptions/" + url.PathEscape(sub) + "/resourceGroups/" + url.PathEscape(rg), nil
}

// catalogPath returns the ARM path of the catalog the flags name.
func (f *sphereFlags) catalogPath(ctx context.Context, s *session) (string, error) {
	name := f.catalog
	if name == "" {
		name = s.profile.DefaultCatalog
	}
	if name == "" {
		return "", usagef("the flag --catalog (-c) is required (or set 'ferry config set defaults.sphere.catalog=NAME')")
	}
	rg, err := f.resourceGroupPath(ctx, s)
	if err != nil {
		return "", err
	}
	return rg + "/providers/Microsoft.AzureSphere/catalogs/" + url.PathEscape(name), nil
}

// withAPI appends the api-version (and any extra query) to an ARM path.
func withAPI(path, api string, q ...string) string {
	v := url.Values{"api-version": {api}}
	for i := 0; i+1 < len(q); i += 2 {
		if q[i+1] != "" {
			v.Set(q[i], q[i+1])
		}
	}
	return path + "?" + v.Encode()
}

// armDo sends an ARM request and, when the answer is a long-running
// operation (Azure-AsyncOperation), polls it to completion with a progress
// indicator. A failed operation is returned as its ARM error.
func (s *session) armDo(ctx context.Context, method, path string, in, out any) error {
	resp, err := s.c.Do(ctx, method, path, in, out)
	if err != nil {
		return err
	}
	status := resp.Header.Get("Azure-AsyncOperation")
	if status == "" || (resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated) {
		return nil
	}
	if err := s.pollARM(ctx, status, method+" "+shortPath(path)); err != nil {
		return err
	}
	if method == http.MethodPut && out != nil {
		// The resource as it is now that the operation has finished.
		_, err = s.c.Do(ctx, http.MethodGet, path, nil, out)
	}
	return err
}

// shortPath is the last two segments of an ARM path, for progress lines.
func shortPath(p string) string {
	p, _, _ = strings.Cut(p, "?")
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) > 2 {
		segs = segs[len(segs)-2:]
	}
	return strings.Join(segs, "/")
}

// pollARM follows an Azure-AsyncOperation URL until the operation ends.
func (s *session) pollARM(ctx context.Context, statusURL, what string) error {
	u, err := url.Parse(statusURL)
	if err != nil {
		return fmt.Errorf("follow Azure-AsyncOperation: %w", err)
	}
	prog := s.e.progress(what)
	defer prog.done()
	for {
		var st struct {
			Status string `json:"status"`
			Error  *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if _, err := s.c.Do(ctx, http.MethodGet, u.RequestURI(), nil, &st); err != nil {
			return fmt.Errorf("poll operation: %w", err)
		}
		switch st.Status {
		case "Succeeded":
			return nil
		case "Failed", "Canceled":
			code, msg := st.Status, "The operation "+strings.ToLower(st.Status)+"."
			if st.Error != nil {
				code, msg = st.Error.Code, st.Error.Message
			}
			return fmt.Errorf("%s (operation %s, %s)", msg, strings.ToLower(st.Status), code)
		}
		prog.tick()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// pollInterval is how often a long-running operation is polled; Ferry
// answers Retry-After: 1, and most of its operations end at once.
const pollInterval = 500 * time.Millisecond

// armPostList calls a POST list action (listDevices, listDeviceGroups, ...)
// and follows its nextLinks with POSTs, returning every item.
func (s *session) armPostList(ctx context.Context, path string, body any) ([]any, error) {
	all := []any{}
	for path != "" {
		var page struct {
			Value    []any  `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if _, err := s.c.Do(ctx, http.MethodPost, path, body, &page); err != nil {
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
	return all, nil
}

// progressLine shows that a long-running call is still going: a spinner
// on stderr when it is a terminal, nothing otherwise (scripts and pipes
// get plain output).
type progressLine struct {
	w    io.Writer // nil when stderr is not a terminal
	what string
	n    int
}

func (e *env) progress(what string) *progressLine {
	p := &progressLine{what: what}
	if f, ok := e.stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.w = f
		}
	}
	return p
}

func (p *progressLine) tick() {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "\r%c %s: running", `|/-\`[p.n%4], p.what)
	p.n++
}

func (p *progressLine) done() {
	if p.w != nil && p.n > 0 {
		fmt.Fprintf(p.w, "\r%s: done\x1b[K\n", p.what)
	}
}

// need returns a usage error naming the first empty required flag.
func need(flags ...string) error {
	for i := 0; i+1 < len(flags); i += 2 {
		if flags[i+1] == "" {
			return usagef("the flag --%s is required", flags[i])
		}
	}
	return nil
}

// readFileArg reads a file for an upload.
func readFileArg(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--%s: %v", flag, err)
	}
	return b, nil
}
