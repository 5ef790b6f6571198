package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ferry-iot/ferry/httpapi"
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

	registry *prometheus.Registry
	servers  []*http.Server
	httpLn   net.Listener
	httpsLn  net.Listener
	closers  []func() error // run in reverse order by Close
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

	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := httpapi.NewMetrics(m.registry)

	mux := http.NewServeMux()
	health := &httpapi.Health{Checks: map[string]httpapi.Pinger{}}
	health.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}))
	handler := metrics.Middleware(m.logger, mux)

	if m.Config.HTTPAddr != "" {
		ln, err := net.Listen("tcp", m.Config.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on --http %s: %w", m.Config.HTTPAddr, err)
		}
		m.httpLn = ln
		m.serve(ln, handler)
		m.logger.Info("http listening", "addr", ln.Addr().String())
	}
	return nil
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
	m.servers, m.closers = nil, nil
	return errors.Join(errs...)
}
