package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Config is what `ferry serve` is told by flags and FERRY_* variables.
type Config struct {
	DataDir       string
	HTTPAddr      string
	HTTPSAddr     string
	MQTTAddr      string
	MQTTPlainAddr string
	// MQTTMaxConnections caps device connections; the gateway lowers it
	// to the open-file limit less a reserve.
	MQTTMaxConnections int64
	DBURL              string
	Hostnames          []string
	LogLevel           string
	LogFormat          string
	AdminPassword      string // FERRY_ADMIN_PASSWORD only: a secret never goes on a command line
}

// usageError marks a bad flag or setting: the CLI prints it on one line and
// exits with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errHelp means the user asked for help, which was printed.
var errHelp = errors.New("help requested")

// flagSet declares the serve flags on c with their defaults.
func (c *Config) flagSet(out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ferry serve", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.DataDir, "data", "./ferry-data", "directory for the database, certificates and exported data")
	fs.StringVar(&c.HTTPAddr, "http", "127.0.0.1:8080", "plain HTTP address (health, metrics, APIs); empty to disable")
	fs.StringVar(&c.HTTPSAddr, "https", ":8443", "HTTPS address, served with Ferry's own CA; empty to disable")
	fs.StringVar(&c.MQTTAddr, "mqtt", ":8883", "MQTT over TLS address for devices; empty to disable")
	fs.StringVar(&c.MQTTPlainAddr, "mqtt-plain", "", "plain-TCP MQTT address, for development only; off by default")
	fs.Int64Var(&c.MQTTMaxConnections, "mqtt-max-connections", 200_000, "most device connections; lowered to the open-file limit less 1,000")
	fs.StringVar(&c.DBURL, "db", "", "database: a postgres:// URL, or a SQLite file (default: ferry.db in the data directory)")
	fs.StringSliceVar(&c.Hostnames, "hostname", []string{"localhost", "127.0.0.1"}, "name or IP address for the server certificate (repeatable)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	return fs
}

// envName returns the environment variable that sets a flag.
func envName(flag string) string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// parse reads args, then FERRY_* variables for flags not given, then
// validates. Flags win over the environment.
func (c *Config) parse(args []string, getenv func(string) string, out io.Writer) error {
	fs := c.flagSet(out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	var envErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || envErr != nil {
			return
		}
		v, name := getenv(envName(f.Name)), envName(f.Name)
		if v == "" {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			envErr = sv.Replace(splitList(v))
		} else {
			envErr = f.Value.Set(v)
		}
		if envErr != nil {
			envErr = usagef("invalid %s %q: %v", name, v, envErr)
		}
	})
	if envErr != nil {
		return envErr
	}
	c.AdminPassword = getenv("FERRY_ADMIN_PASSWORD")
	return c.validate()
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *Config) validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return usagef("invalid --data: must not be empty")
	}
	for _, a := range []struct{ flag, addr string }{
		{"http", c.HTTPAddr}, {"https", c.HTTPSAddr}, {"mqtt", c.MQTTAddr}, {"mqtt-plain", c.MQTTPlainAddr},
	} {
		if a.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			return usagef("invalid --%s %q: want host:port (the host may be empty)", a.flag, a.addr)
		}
	}
	if c.MQTTMaxConnections <= 0 {
		return usagef("invalid --mqtt-max-connections %d: must be positive", c.MQTTMaxConnections)
	}
	if c.HTTPAddr == "" && c.HTTPSAddr == "" {
		return usagef("invalid --http and --https: at least one must be set")
	}
	if c.DBURL != "" && strings.Contains(c.DBURL, "://") &&
		!strings.HasPrefix(c.DBURL, "postgres://") && !strings.HasPrefix(c.DBURL, "postgresql://") && !strings.HasPrefix(c.DBURL, "sqlite://") {
		return usagef("invalid --db %q: want a postgres:// URL or a SQLite file", c.DBURL)
	}
	if len(c.Hostnames) == 0 {
		return usagef("invalid --hostname: at least one name is needed")
	}
	for _, h := range c.Hostnames {
		if strings.ContainsAny(h, " /:") && net.ParseIP(h) == nil {
			return usagef("invalid --hostname %q: want a DNS name or an IP address", h)
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return usagef("invalid --log-format %q: want text or json", c.LogFormat)
	}
	return nil
}

// databaseURL returns the store URL, defaulting to a SQLite file in the
// data directory.
func (c *Config) databaseURL() string {
	if c.DBURL != "" {
		return c.DBURL
	}
	return filepath.Join(c.DataDir, "ferry.db")
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usagef("invalid --log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger builds the process logger from the config.
func (c *Config) newLogger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
