package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/sim"
	"github.com/spf13/cobra"
)

// simFlags are the flags of `ferry sim`.
type simFlags struct {
	count, workers, concurrency, start int
	prefix, provHost, idScope          string
	groupKey                           string
	certFile, keyFile, caFile          string
	caSigning, plain, worker, jsonOut  bool
	interval, duration, statsInterval  time.Duration
	sourceAddrs                        []string
	modelID                            string
}

func newSimCommand(e *env) *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run simulated devices on real MQTT connections",
		Long: `Run --count simulated devices. Each provisions through --provisioning-host
under --id-scope, with a key derived from --group-key (or FERRY_SIM_GROUP_KEY),
or with an X.509 certificate: --cert and --key name a device certificate, or
with --ca-cert-signing a CA that issues each device its own. Devices connect to
the hub they are assigned (on the port of --provisioning-host when it names one), send {"seq":n} telemetry every --telemetry-interval
and follow DeviceMove commands. Statistics are printed every --stats-interval.

One process holds at most 15,000 devices; larger fleets run in worker
processes (--workers, 0: as few as needed), each dialling from its own
127.0.0.x source address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd.Context(), e, f) },
	}
	fs := cmd.Flags()
	fs.IntVar(&f.count, "count", 1, "number of devices")
	fs.StringVar(&f.prefix, "prefix", "sim-", "registration ID prefix; devices are PREFIX000000, PREFIX000001, ...")
	fs.StringVar(&f.provHost, "provisioning-host", "", "provisioning service host[:port] (required)")
	fs.StringVar(&f.idScope, "id-scope", "", "ID scope of the provisioning service (required)")
	fs.StringVar(&f.groupKey, "group-key", "", "enrollment group key (prefer FERRY_SIM_GROUP_KEY: flags show in process lists)")
	fs.StringVar(&f.certFile, "cert", "", "PEM certificate: a device certificate, or a signing CA with --ca-cert-signing")
	fs.StringVar(&f.keyFile, "key", "", "PEM private key of --cert")
	fs.BoolVar(&f.caSigning, "ca-cert-signing", false, "--cert and --key are a CA that issues each device a certificate")
	fs.StringVar(&f.caFile, "ca", "", "PEM CA bundle the devices trust (default: the system roots)")
	fs.BoolVar(&f.plain, "mqtt-plain", false, "dial plain TCP (development listeners only)")
	fs.DurationVar(&f.interval, "telemetry-interval", 10*time.Second, "time between a device's messages; 0 sends none")
	fs.IntVar(&f.workers, "workers", 0, "worker processes; 0: as few as needed (15,000 devices each)")
	fs.IntVar(&f.concurrency, "concurrency", 64, "devices provisioning and connecting at once, per process")
	fs.DurationVar(&f.duration, "duration", 0, "stop after this long; 0: run until interrupted")
	fs.DurationVar(&f.statsInterval, "stats-interval", 5*time.Second, "how often to print statistics")
	fs.StringSliceVar(&f.sourceAddrs, "source-addr", nil, "source IP addresses to dial from (repeatable; default for workers: 127.0.0.10, .11, ...)")
	fs.StringVar(&f.modelID, "model-id", "", "DTDL model ID the devices announce")
	fs.BoolVar(&f.jsonOut, "json", false, "print statistics as JSON lines")
	fs.BoolVar(&f.worker, "worker", false, "run as a worker process of another ferry sim")
	fs.IntVar(&f.start, "start", 0, "index of the first device (workers)")
	_ = fs.MarkHidden("worker")
	_ = fs.MarkHidden("start")
	return cmd
}

// config checks the flags and builds the simulator config.
func (f simFlags) config(e *env) (sim.Config, error) {
	if f.groupKey == "" {
		f.groupKey = e.getenv("FERRY_SIM_GROUP_KEY")
	}
	switch {
	case f.count < 1:
		return sim.Config{}, usagef("invalid --count %d: want at least 1", f.count)
	case f.provHost == "":
		return sim.Config{}, usagef("--provisioning-host is required")
	case f.idScope == "":
		return sim.Config{}, usagef("--id-scope is required")
	case (f.groupKey != "") == (f.certFile != ""):
		return sim.Config{}, usagef("set one of --group-key (or FERRY_SIM_GROUP_KEY) or --cert")
	case (f.certFile == "") != (f.keyFile == ""):
		return sim.Config{}, usagef("--cert and --key go together")
	case f.caSigning && f.certFile == "":
		return sim.Config{}, usagef("--ca-cert-signing needs --cert and --key")
	case f.certFile != "" && !f.caSigning && f.count != 1:
		return sim.Config{}, usagef("one device certificate serves --count 1; use --ca-cert-signing for more")
	case f.interval < 0 || f.duration < 0 || f.statsInterval <= 0:
		return sim.Config{}, usagef("durations must not be negative and --stats-interval must be positive")
	case f.workers < 0 || f.concurrency < 1:
		return sim.Config{}, usagef("--workers must not be negative and --concurrency must be positive")
	}
	cfg := sim.Config{Count: f.count, Start: f.start, Prefix: f.prefix, ProvisioningHost: f.provHost, IDScope: f.idScope,
		GroupKey: f.groupKey, TelemetryInterval: f.interval, ModelID: f.modelID, SourceAddrs: f.sourceAddrs,
		Workers: f.concurrency, StatsInterval: f.statsInterval}
	cfg.Transport.Plain = f.plain
	// Hubs are named without a port: dial them on the provisioning
	// service's port, which is where a single Ferry server listens.
	if _, port, err := net.SplitHostPort(f.provHost); err == nil {
		if p, err := strconv.Atoi(port); err == nil {
			cfg.Transport.Port = p
		}
	}
	// One session cache per process lets every device resume a TLS session
	// another made with the same server (its DPS and its hubs), which spares
	// both sides the certificate signature and its check. Simulated devices
	// offer only the classical key exchanges: the hybrid post-quantum share
	// that Go adds by default costs the client an ML-KEM key per handshake
	// and Ferry's server picks X25519 anyway.
	cfg.Transport.TLS = &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(4096),
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return cfg, usagef("invalid --ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, usagef("invalid --ca %q: no PEM certificate", f.caFile)
		}
		cfg.Transport.TLS.RootCAs = pool
	}
	if f.certFile != "" {
		certPEM, err := os.ReadFile(f.certFile)
		if err != nil {
			return cfg, usagef("invalid --cert: %v", err)
		}
		keyPEM, err := os.ReadFile(f.keyFile)
		if err != nil {
			return cfg, usagef("invalid --key: %v", err)
		}
		if f.caSigning {
			if cfg.SigningCert, err = pki.ParseCertPEM(certPEM); err != nil {
				return cfg, usagef("invalid --cert: %v", err)
			}
			if cfg.SigningKey, err = pki.ParseKeyPEM(keyPEM); err != nil {
				return cfg, usagef("invalid --key: %v", err)
			}
		} else {
			c, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				return cfg, usagef("invalid --cert or --key: %v", err)
			}
			cfg.Certificate = &c
		}
	}
	return cfg, nil
}

func runSim(ctx context.Context, e *env, f simFlags) error {
	cfg, err := f.config(e)
	if err != nil {
		return err
	}
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	var mu sync.Mutex
	var last time.Time
	report := func(s sim.Stats, throttle bool) {
		mu.Lock()
		defer mu.Unlock()
		// Workers report at about the same moments; print one sum per interval.
		if throttle && time.Since(last) < f.statsInterval/2 {
			return
		}
		last = time.Now()
		if f.worker || f.jsonOut {
			_ = sim.WriteStats(e.stdout, s)
			return
		}
		printStats(e.stdout, s)
	}
	workers, err := sim.Split(f.count, f.workers, f.sourceAddrs)
	if err != nil {
		return usagef("%s", ferry.ErrorMessage(err))
	}
	if f.worker || len(workers) == 1 && f.workers <= 1 {
		cfg.OnStats = func(s sim.Stats) { report(s, false) }
		_, err := sim.Run(ctx, cfg)
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sim: find the ferry binary: %w", err)
	}
	final, err := sim.RunWorkers(ctx, workers, func(w sim.Worker) *exec.Cmd {
		args := []string{"sim", "--worker", "--start", strconv.Itoa(w.Start), "--count", strconv.Itoa(w.Count),
			"--source-addr", w.SourceAddr, "--prefix", f.prefix, "--provisioning-host", f.provHost, "--id-scope", f.idScope,
			"--telemetry-interval", f.interval.String(), "--stats-interval", f.statsInterval.String(),
			"--concurrency", strconv.Itoa(f.concurrency)}
		for flag, v := range map[string]string{"--cert": f.certFile, "--key": f.keyFile, "--ca": f.caFile, "--model-id": f.modelID} {
			if v != "" {
				args = append(args, flag, v)
			}
		}
		if f.caSigning {
			args = append(args, "--ca-cert-signing")
		}
		if f.plain {
			args = append(args, "--mqtt-plain")
		}
		c := exec.CommandContext(ctx, exe, args...)
		c.Env = append(os.Environ(), "FERRY_SIM_GROUP_KEY="+cfg.GroupKey)
		c.Stderr = e.stderr
		return c
	}, func(s sim.Stats) { report(s, true) })
	report(final, false)
	return err
}

func printStats(w io.Writer, s sim.Stats) {
	var b strings.Builder
	fmt.Fprintf(&b, "%7.1fs devices %d connected %d sent %d acked %d queued %d reconnects %d moves %d failures %d",
		s.Elapsed, s.Devices, s.Connected, s.Sent, s.Acked, s.Queued, s.Reconnects, s.Moves, s.Failures)
	if s.ConnectSeconds > 0 && s.Connected == s.Devices {
		fmt.Fprintf(&b, " (all up after %.1fs)", s.ConnectSeconds)
	}
	fmt.Fprintln(w, b.String())
}
