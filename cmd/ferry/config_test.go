package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigParse(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		var c Config
		if err := c.parse(nil, envFrom(nil), &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		want := Config{DataDir: "./ferry-data", HTTPAddr: "127.0.0.1:8080", HTTPSAddr: ":8443", MQTTAddr: ":8883", MQTTMaxConnections: 200_000,
			Hostnames: []string{"localhost", "127.0.0.1"}, LogLevel: "info", LogFormat: "text"}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("defaults (-want +got):\n%s", diff)
		}
		if got := c.databaseURL(); got != "ferry-data/ferry.db" {
			t.Errorf("database URL %q", got)
		}
	})
	t.Run("EnvironmentFillsUnsetFlags", func(t *testing.T) {
		var c Config
		env := envFrom(map[string]string{
			"FERRY_DATA": "/var/lib/ferry", "FERRY_HOSTNAME": "hub.example.com, 10.0.0.5",
			"FERRY_LOG_FORMAT": "json", "FERRY_HTTP": "0.0.0.0:9000", "FERRY_ADMIN_PASSWORD": "s3cret",
		})
		if err := c.parse([]string{"--http", "127.0.0.1:0"}, env, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if c.DataDir != "/var/lib/ferry" || c.LogFormat != "json" || c.AdminPassword != "s3cret" {
			t.Errorf("env not applied: %+v", c)
		}
		if c.HTTPAddr != "127.0.0.1:0" {
			t.Errorf("a flag must win over the environment: %q", c.HTTPAddr)
		}
		if diff := cmp.Diff([]string{"hub.example.com", "10.0.0.5"}, c.Hostnames); diff != "" {
			t.Errorf("hostnames: %s", diff)
		}
	})
	bad := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"ErrUnknownFlag", []string{"--nope"}, nil, "unknown flag: --nope"},
		{"ErrLogFormat", []string{"--log-format", "xml"}, nil, `invalid --log-format "xml"`},
		{"ErrLogLevel", []string{"--log-level", "loud"}, nil, `invalid --log-level "loud"`},
		{"ErrAddress", []string{"--mqtt", "8883"}, nil, `invalid --mqtt "8883"`},
		{"ErrMaxConnections", []string{"--mqtt-max-connections", "0"}, nil, "invalid --mqtt-max-connections 0"},
		{"ErrNoListener", []string{"--http", "", "--https", ""}, nil, "at least one must be set"},
		{"ErrDatabaseScheme", []string{"--db", "mysql://x"}, nil, `invalid --db "mysql://x"`},
		{"ErrHostname", []string{"--hostname", "a b"}, nil, `invalid --hostname "a b"`},
		{"ErrEmptyData", []string{"--data", ""}, nil, "invalid --data"},
		{"ErrExtraArgument", []string{"now"}, nil, `unexpected argument "now"`},
		{"ErrEnvironment", nil, map[string]string{"FERRY_LOG_LEVEL": "chatty"}, `invalid --log-level "chatty"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			err := c.parse(tt.args, envFrom(tt.env), &bytes.Buffer{})
			if !isUsageError(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want a usage error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("usage errors are one line: %q", err)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"Version", []string{"version"}, 0},
		{"Help", []string{"--help"}, 0},
		{"ServeHelp", []string{"serve", "--help"}, 0},
		{"UnknownCommand", []string{"frobnicate"}, 2},
		{"BadServeFlag", []string{"serve", "--log-format", "xml"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errOut, envFrom(nil))
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.code, errOut.String())
			}
			if tt.code == 2 && strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
				t.Errorf("usage error is not one line: %q", errOut.String())
			}
		})
	}
}
