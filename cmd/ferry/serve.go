package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

func newServeCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:                "serve [flags]",
		Short:              "Run the Ferry server",
		DisableFlagParsing: true, // Main.ParseFlags owns the flags, so tests parse them alike
		RunE: func(cmd *cobra.Command, args []string) error {
			m := NewMain(e.stdout, e.stderr, e.getenv)
			if err := m.ParseFlags(args); err != nil {
				return err
			}
			if err := m.Run(cmd.Context()); err != nil {
				_ = m.Close()
				return err
			}
			<-cmd.Context().Done()
			m.logger.Info("shutting down")
			return m.Close()
		},
	}
}

// Main is the Ferry server: ParseFlags, then Run (which returns once every
// listener is up), then Close. Tests run the real server this way on :0
// ports in a temporary directory.
type Main struct {
	Config Config

	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	logger *slog.Logger

	// Set by Run, for tests and the commands built on the server.
	Store      *store.DB
	CA         *pki.Authority
	Identity   *identity.Service
	Authorizer *rbac.Authorizer
	Bus        *eventbus.Bus
	Sink       *export.FileSink

	registry *prometheus.Registry
	mqttLns  []string
	devices  *devicePlane
	// beforeShutdown runs before the HTTP servers shut down.
	beforeShutdown []func()
	servers        []*http.Server
	httpLn         net.Listener
	httpsLn        net.Listener
	closers        []func() error // run in reverse order by Close
}

// NewMain returns a server that writes its banner to stdout and its logs to
// stderr and reads FERRY_* settings with getenv.
func NewMain(stdout, stderr io.Writer, getenv func(string) string) *Main {
	return &Main{stdout: stdout, stderr: stderr, getenv: getenv}
}

// ParseFlags reads the serve flags and FERRY_* variables into m.Config.
func (m *Main) ParseFlags(args []string) error {
	return m.Config.parse(args, m.getenv, m.stderr)
}

// Run opens the data directory and the store, prepares identity and
// certificates, and starts every listener. It returns once they listen.
func (m *Main) Run(ctx context.Context) error {
	m.logger = m.Config.newLogger(m.stderr)
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}

	db, err := store.Open(ctx, store.Config{URL: m.Config.databaseURL(), Logger: m.logger.With("subsystem", "store")})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	m.Store = db
	m.closers = append(m.closers, db.Close)

	// The CA is created only once the database answers.
	ca, err := pki.LoadOrCreate(m.pkiDir(), m.Config.Hostnames, time.Now())
	if err != nil {
		return fmt.Errorf("certificate authority: %w", err)
	}
	m.CA = ca
	// The store's secrets (remote migration targets' client secrets) are
	// sealed with a key derived from the CA's: every node sharing the CA
	// reads them, and nothing more needs backing up.
	secretKey, err := ca.DeriveKey(storeSecretPurpose)
	if err != nil {
		return fmt.Errorf("store secret key: %w", err)
	}
	if err := db.SetSecretKey(ctx, secretKey); err != nil {
		return fmt.Errorf("store secret key: %w", err)
	}

	// Listen before building the identity service: the token issuer URL
	// names the HTTPS port, which tests choose with :0.
	if err := m.listen(); err != nil {
		return err
	}

	ids, err := identity.New(identity.Config{
		Store:  db,
		Issuer: m.issuerURL(),
		Logger: m.logger,
	})
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	m.Identity = ids
	boot, err := ids.Bootstrap(ctx, m.Config.AdminPassword)
	if err != nil {
		return fmt.Errorf("bootstrap identity: %w", err)
	}
	if err := rbac.SeedBuiltIns(ctx, db); err != nil {
		return fmt.Errorf("seed built-in roles: %w", err)
	}
	if boot.Created {
		if err := m.grantAdmin(ctx, boot.AdminName); err != nil {
			return err
		}
	}
	m.Authorizer = rbac.New(db)
	if err := m.Authorizer.Reload(ctx); err != nil {
		return fmt.Errorf("load role assignments: %w", err)
	}

	bus := eventbus.New(eventbus.Options{Logger: m.logger})
	m.closers = append(m.closers, bus.Close)
	sink, err := export.Open(export.Config{
		Dir:    filepath.Join(m.Config.DataDir, "export"),
		Logger: m.logger,
	})
	if err != nil {
		return fmt.Errorf("open export sink: %w", err)
	}
	m.closers = append(m.closers, sink.Close)
	m.Bus, m.Sink = bus, sink

	if err := m.startDevicePlane(ctx); err != nil {
		return err
	}

	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), bus, sink)
	metrics := httpapi.NewMetrics(m.registry)

	mux := http.NewServeMux()
	health := &httpapi.Health{Checks: map[string]httpapi.Pinger{"store": db}}
	health.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}))
	ids.Register(mux)
	mux.Handle("GET /api/me", ids.RequireAuth(httpapi.Handle(m.logger, httpapi.RenderPlain, m.handleMe)))
	routes, err := m.routes(ctx, mux)
	if err != nil {
		return err
	}
	handler := metrics.Middleware(m.logger, routes)

	if m.httpLn != nil {
		m.serve(m.httpLn, handler)
		m.logger.Info("http listening", "addr", m.httpLn.Addr().String())
	}
	if m.httpsLn != nil {
		m.serve(tls.NewListener(m.httpsLn, ca.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"h2", "http/1.1"}})), handler)
		m.logger.Info("https listening", "addr", m.httpsLn.Addr().String())
	}
	m.printBanner(boot)
	return nil
}

// listen opens the HTTP and HTTPS listeners, so that their addresses are
// known before the services that name them are built.
func (m *Main) listen() error {
	for _, l := range []struct {
		flag, addr string
		ln         *net.Listener
	}{{"http", m.Config.HTTPAddr, &m.httpLn}, {"https", m.Config.HTTPSAddr, &m.httpsLn}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listen on --%s %s: %w", l.flag, l.addr, err)
		}
		*l.ln = ln
		m.closers = append(m.closers, func() error { _ = ln.Close(); return nil })
	}
	return nil
}

// grantAdmin makes the first administrator Owner (and data contributor of
// every hub and provisioning service) at the root scope, so that it may do
// everything, including granting roles to others.
func (m *Main) grantAdmin(ctx context.Context, name string) error {
	admin, err := m.Store.GetPrincipalByName(ctx, name)
	if err != nil {
		return fmt.Errorf("find administrator: %w", err)
	}
	// Owner grants no data actions, as in Azure: the data roles let the
	// administrator use the hub and DPS service APIs with a token too.
	for _, role := range []string{ferry.RoleOwner, ferry.RoleIoTHubDataContributor, ferry.RoleDPSDataContributor} {
		err = m.Store.CreateRoleAssignment(ctx, &ferry.RoleAssignment{
			ID:               ferry.NewUUID(),
			Scope:            "/",
			RoleDefinitionID: role,
			PrincipalID:      admin.ID,
			PrincipalType:    admin.Type,
			Description:      "first administrator",
			CreatedAt:        time.Now().UTC(),
			CreatedBy:        "ferry",
		})
		if err != nil {
			return fmt.Errorf("grant administrator role %s: %w", role, err)
		}
	}
	return nil
}

// handleMe answers who the caller is: the smallest authenticated endpoint,
// used by `ferry login` to check a token.
func (m *Main) handleMe(w http.ResponseWriter, r *http.Request) error {
	c := ferry.CallerFromContext(r.Context())
	if c == nil {
		return ferry.Errorf(ferry.EUNAUTHORIZED, "authentication required")
	}
	me := map[string]any{"objectId": c.ID(), "name": c.Name()}
	if c.Principal != nil {
		me["type"] = c.Principal.Type
		me["displayName"] = c.Principal.DisplayName
	}
	if c.Claims != nil {
		me["tenantId"] = c.Claims.TenantID
	}
	return httpapi.WriteJSON(w, http.StatusOK, me)
}

// storeSecretPurpose names the CA-derived key that seals the store's
// secrets. Changing it makes stored secrets unreadable.
const storeSecretPurpose = "ferry store secrets v1"

func (m *Main) pkiDir() string { return filepath.Join(m.Config.DataDir, "pki") }

// issuerURL is the base URL that tokens name as their issuer.
func (m *Main) issuerURL() string {
	if m.httpsLn == nil {
		return m.HTTPURL()
	}
	_, port, _ := net.SplitHostPort(m.httpsLn.Addr().String())
	return "https://" + net.JoinHostPort(m.Config.Hostnames[0], port)
}

// printBanner tells the operator where Ferry is and, on first start, the
// administrator's credential. The generated password is shown only here.
func (m *Main) printBanner(boot identity.BootstrapResult) {
	w := m.stdout
	fmt.Fprintln(w, "Ferry is running.")
	if m.httpLn != nil {
		fmt.Fprintf(w, "  HTTP     %s   (health /healthz /readyz, metrics /metrics)\n", m.HTTPURL())
	}
	if m.httpsLn != nil {
		fmt.Fprintf(w, "  HTTPS    %s  (APIs, OAuth2 token endpoint /oauth2/token)\n", m.issuerURL())
	}
	for _, l := range m.mqttLns {
		fmt.Fprintf(w, "  MQTT     %s  (devices: DPS and IoT Hub protocols)\n", l)
	}
	fmt.Fprintf(w, "  Data     %s\n", m.Config.DataDir)
	fmt.Fprintf(w, "  CA       %s  (trust this; `ferry ca export` prints it)\n", filepath.Join(m.pkiDir(), pki.CACertFile))
	fmt.Fprintf(w, "  Tenant   %s\n", boot.TenantID)
	switch {
	case boot.Created && boot.AdminPassword != "":
		fmt.Fprintf(w, "  Admin    user %q, password %q  (shown once; set FERRY_ADMIN_PASSWORD to choose it)\n", boot.AdminName, boot.AdminPassword)
	case boot.Created:
		fmt.Fprintf(w, "  Admin    user %q, password from FERRY_ADMIN_PASSWORD\n", boot.AdminName)
	}
}

// serve runs an HTTP server on ln until Close.
func (m *Main) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelDebug),
	}
	m.servers = append(m.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// HTTPURL returns the base URL of the plain HTTP listener, or "".
func (m *Main) HTTPURL() string {
	if m.httpLn == nil {
		return ""
	}
	return "http://" + m.httpLn.Addr().String()
}

// Close stops the listeners gracefully (in-flight requests get a few
// seconds) and releases everything Run opened.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, f := range m.beforeShutdown {
		f()
	}
	for _, s := range m.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	m.servers, m.closers, m.beforeShutdown = nil, nil, nil
	return errors.Join(errs...)
}
