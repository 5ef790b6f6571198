package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-iot/ferry/client"
	"github.com/spf13/cobra"
)

func newLoginCommand(e *env) *cobra.Command {
	var server, username, clientID, caFile string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a Ferry server and keep the token for later commands",
		Long: `Sign in as a user (--username, password grant) or a service principal
(--client-id, client-credentials grant). The password or secret is read from
FERRY_PASSWORD or FERRY_CLIENT_SECRET, or else from the first line of stdin; it
is never taken from a flag. The token is saved in the user's config directory
(or $FERRY_CONFIG_DIR), readable only by the user.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (username == "") == (clientID == "") {
				return usagef("login needs exactly one of --username or --client-id")
			}
			var ca []byte
			if caFile != "" {
				abs, err := filepath.Abs(caFile)
				if err != nil {
					return err
				}
				if ca, err = os.ReadFile(abs); err != nil {
					return fmt.Errorf("read --ca-file: %w", err)
				}
				caFile = abs
			}
			c, err := client.New(server, ca)
			if err != nil {
				return usagef("invalid --url: %v", err)
			}
			g := client.Grant{Username: username, ClientID: clientID}
			if username != "" {
				g.Password, err = e.secret("FERRY_PASSWORD", "Password")
			} else {
				g.ClientSecret, err = e.secret("FERRY_CLIENT_SECRET", "Client secret")
			}
			if err != nil {
				return err
			}
			tok, err := c.Login(cmd.Context(), g)
			if err != nil {
				return err
			}
			var me struct {
				Name     string `json:"name"`
				TenantID string `json:"tenantId"`
			}
			if _, err := c.Do(cmd.Context(), http.MethodGet, "/api/me", nil, &me); err != nil {
				return fmt.Errorf("check the new token: %w", err)
			}
			path, err := client.ProfilePath(e.getenv)
			if err != nil {
				return err
			}
			p := &client.Profile{Server: c.BaseURL, CAFile: caFile, Principal: me.Name,
				Token: tok.AccessToken, ExpiresAt: tok.ExpiresAt, DefaultTenant: me.TenantID}
			if old, err := client.LoadProfile(path); err == nil && old.Server == p.Server {
				p.DefaultResourceGroup, p.DefaultCatalog, p.DefaultSubscription = old.DefaultResourceGroup, old.DefaultCatalog, old.DefaultSubscription
			}
			if err := p.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Logged in to %s as %s (tenant %s); token valid until %s.\n",
				p.Server, me.Name, me.TenantID, tok.ExpiresAt.Local().Format("15:04 MST"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "url", "https://localhost:8443", "the server's base URL")
	f.StringVar(&username, "username", "", "sign in as this user")
	f.StringVar(&clientID, "client-id", "", "sign in as this service principal (its application ID)")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA to trust (see 'ferry ca export')")
	return cmd
}

// secret returns the value of the variable, or else the first line of stdin.
func (e *env) secret(variable, prompt string) (string, error) {
	if v := e.getenv(variable); v != "" {
		return v, nil
	}
	if f, ok := e.stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(e.stderr, "%s: ", prompt)
		}
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil {
			return "", usagef("no %s: set %s or write it to stdin", strings.ToLower(prompt), variable)
		}
		return "", usagef("empty %s", strings.ToLower(prompt))
	}
	return line, nil
}

func newCACommand(e *env) *cobra.Command {
	ca := &cobra.Command{Use: "ca", Short: "Work with Ferry's certificate authority"}
	var dataDir string
	export := &cobra.Command{
		Use:   "export",
		Short: "Print the CA certificate (PEM) that clients and devices must trust",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				dataDir = e.getenv("FERRY_DATA")
			}
			if dataDir == "" {
				dataDir = "./ferry-data"
			}
			b, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt"))
			if os.IsNotExist(err) {
				return fmt.Errorf("no CA in %s: start 'ferry serve --data %s' once to create it", dataDir, dataDir)
			}
			if err != nil {
				return fmt.Errorf("read CA certificate: %w", err)
			}
			_, err = e.stdout.Write(b)
			return err
		},
	}
	export.Flags().StringVar(&dataDir, "data", "", "the server's data directory (default $FERRY_DATA or ./ferry-data)")
	ca.AddCommand(export)
	return ca
}
