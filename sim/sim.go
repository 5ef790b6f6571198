// Package sim is Ferry's fleet simulator: it runs many simulated devices on
// real MQTT connections, built on the device SDK. Each device provisions
// through a provisioning service (group key or an X.509 certificate issued
// by a signing CA), connects to its assigned hub, sends telemetry carrying a
// per-device sequence number ({"seq":n} and a property seq) and follows
// DeviceMove commands. Large fleets are spread over worker processes
// (RunWorkers), because one process here may hold at most 20,000 open files.
package sim

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/pki"
)

// Config describes a simulated fleet.
type Config struct {
	// Count is the number of devices; Start is the index of the first, so
	// that workers can run slices of one fleet.
	Count, Start int
	// Prefix names devices: registration ID = Prefix + zero-padded index.
	Prefix string
	// ProvisioningHost is the provisioning service's host[:port].
	ProvisioningHost string
	IDScope          string
	// GroupKey is a symmetric-key enrollment group's key.
	GroupKey string
	// SigningCert and SigningKey, for X.509, form a CA that issues each
	// device a certificate with its registration ID as CN.
	SigningCert *x509.Certificate
	SigningKey  crypto.Signer
	// Certificate is one device certificate used as is (Count must be 1).
	Certificate *tls.Certificate
	// TelemetryInterval is the time between a device's messages; 0 sends none.
	TelemetryInterval time.Duration
	// ModelID is announced at provisioning and on connect when set.
	ModelID string
	// Transport says how devices dial (TLS roots, plain TCP, port). Its
	// LocalAddr is overridden by SourceAddrs when set.
	device.Transport
	// SourceAddrs are source IPs assigned to devices in turn.
	SourceAddrs []string
	// Workers bounds concurrent provision-and-connect attempts; 0: 64.
	Workers int
	// StatsInterval is how often OnStats is called; 0: every 5 s.
	StatsInterval time.Duration
	// OnStats receives periodic statistics (and the final ones).
	OnStats func(Stats)
	Logger  *slog.Logger
}

// Stats describes a running fleet. Counters are totals since the start.
type Stats struct {
	Devices     int     `json:"devices"`     // devices configured
	Connected   int     `json:"connected"`   // devices connected now
	Provisioned uint64  `json:"provisioned"` // successful first registrations
	Failures    uint64  `json:"failures"`    // failed provision or connect attempts (retried)
	Sent        uint64  `json:"sent"`
	Acked       uint64  `json:"acked"`
	Queued      uint64  `json:"queued"`
	Reconnects  uint64  `json:"reconnects"`
	Moves       uint64  `json:"moves"`
	Elapsed     float64 `json:"elapsedSeconds"`
	// ConnectSeconds is the time until the last device first connected.
	ConnectSeconds float64 `json:"connectSeconds,omitempty"`
}

// Add sums two stats, for aggregating workers.
func (s Stats) Add(o Stats) Stats {
	s.Devices += o.Devices
	s.Connected += o.Connected
	s.Provisioned += o.Provisioned
	s.Failures += o.Failures
	s.Sent += o.Sent
	s.Acked += o.Acked
	s.Queued += o.Queued
	s.Reconnects += o.Reconnects
	s.Moves += o.Moves
	s.Elapsed = max(s.Elapsed, o.Elapsed)
	s.ConnectSeconds = max(s.ConnectSeconds, o.ConnectSeconds)
	return s
}

func (c *Config) validate() error {
	creds := 0
	for _, set := range []bool{c.GroupKey != "", c.SigningCert != nil, c.Certificate != nil} {
		if set {
			creds++
		}
	}
	switch {
	case c.Count < 1:
		return ferry.Errorf(ferry.EINVALID, "sim: count must be at least 1")
	case c.Start < 0:
		return ferry.Errorf(ferry.EINVALID, "sim: start must not be negative")
	case c.ProvisioningHost == "":
		return ferry.Errorf(ferry.EINVALID, "sim: a provisioning host is required")
	case c.IDScope == "":
		return ferry.Errorf(ferry.EINVALID, "sim: an ID scope is required")
	case creds != 1:
		return ferry.Errorf(ferry.EINVALID, "sim: set exactly one of a group key, a signing CA or a device certificate")
	case c.SigningCert != nil && c.SigningKey == nil:
		return ferry.Errorf(ferry.EINVALID, "sim: a signing certificate needs its key")
	case c.Certificate != nil && c.Count != 1:
		return ferry.Errorf(ferry.EINVALID, "sim: one device certificate serves one device; use a signing CA for more")
	}
	return nil
}

// DeviceID returns the registration ID of device i.
func (c *Config) DeviceID(i int) string {
	prefix := c.Prefix
	if prefix == "" {
		prefix = "sim-"
	}
	return prefix + fmt.Sprintf("%06d", i)
}

// fleet is the running state of Run.
type fleet struct {
	cfg   Config
	log   *slog.Logger
	start time.Time

	mu        sync.Mutex
	clients   []*device.Client
	connected atomic.Int64
	lastUp    atomic.Int64 // unix nanos of the latest first connection

	provisioned, failures atomic.Uint64
}

// Run runs the fleet until ctx ends, then closes every device and returns
// the final statistics. It returns an error only for a bad config.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	if err := cfg.validate(); err != nil {
		return Stats{}, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = 64
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &fleet{cfg: cfg, log: cfg.Logger.With("subsystem", "sim"), start: time.Now(), clients: make([]*device.Client, cfg.Count)}
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.Workers)
	// Start devices in the background, so that statistics are reported
	// while a large fleet is still coming up.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < cfg.Count; i++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				f.runDevice(ctx, i, sem)
			}(i)
		}
	}()
	ticker := time.NewTicker(cfg.StatsInterval)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			if cfg.OnStats != nil {
				cfg.OnStats(f.stats())
			}
		}
	}
	wg.Wait()
	final := f.stats()
	if cfg.OnStats != nil {
		cfg.OnStats(final)
	}
	return final, nil
}

func (f *fleet) stats() Stats {
	s := Stats{Devices: f.cfg.Count, Connected: int(f.connected.Load()), Provisioned: f.provisioned.Load(),
		Failures: f.failures.Load(), Elapsed: time.Since(f.start).Seconds()}
	if up := f.lastUp.Load(); up != 0 {
		s.ConnectSeconds = time.Unix(0, up).Sub(f.start).Seconds()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.clients {
		if c == nil {
			continue
		}
		cs := c.Stats()
		s.Sent += cs.Sent
		s.Acked += cs.Acked
		s.Queued += cs.Queued
		s.Reconnects += cs.Reconnects
		s.Moves += cs.Moves
		if !c.Connected() {
			s.Connected--
		}
	}
	return s
}

// provisionConfig returns device i's registration settings.
func (f *fleet) provisionConfig(i int) (device.ProvisionConfig, error) {
	cfg := f.cfg
	idx := cfg.Start + i
	id := cfg.DeviceID(idx)
	tr := cfg.Transport
	if len(cfg.SourceAddrs) > 0 {
		tr.LocalAddr = cfg.SourceAddrs[idx%len(cfg.SourceAddrs)]
	}
	pc := device.ProvisionConfig{Host: cfg.ProvisioningHost, IDScope: cfg.IDScope, RegistrationID: id,
		GroupKey: cfg.GroupKey, Certificate: cfg.Certificate, Transport: tr}
	if cfg.ModelID != "" {
		pc.Payload = map[string]string{"modelId": cfg.ModelID}
	}
	if cfg.SigningCert != nil {
		leaf, key, err := pki.IssueClientCert(cfg.SigningCert, cfg.SigningKey, id, time.Now())
		if err != nil {
			return pc, fmt.Errorf("sim: issue a certificate for %s: %w", id, err)
		}
		c := pki.TLSCertificate(leaf, key, cfg.SigningCert)
		pc.Certificate = &c
	}
	return pc, nil
}

// runDevice provisions and connects device i (retrying with backoff while
// ctx lasts), releases its slot in sem, then sends telemetry until ctx ends.
func (f *fleet) runDevice(ctx context.Context, i int, sem chan struct{}) {
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
		}
	}
	defer release()
	pc, err := f.provisionConfig(i)
	if err != nil {
		f.log.Error("device setup failed", "error", err)
		return
	}
	// moved wakes the telemetry loop when the device has moved to another
	// hub: like firmware reporting after it reconnects, the device sends its
	// next message at once, so the new hub sees it without waiting out the
	// interval.
	moved := make(chan struct{}, 1)
	dc := device.Config{ModelID: f.cfg.ModelID, Logger: f.cfg.Logger, OnMoved: func(_ *device.Registration, err error) {
		if err != nil {
			return
		}
		select {
		case moved <- struct{}{}:
		default:
		}
	}}
	var c *device.Client
	for attempt := 0; c == nil; attempt++ {
		c, _, err = device.ProvisionAndConnect(ctx, pc, dc)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		f.failures.Add(1)
		f.log.Debug("device start failed", "device_id", pc.RegistrationID, "attempt", attempt, "error", err)
		d := 200 * time.Millisecond << min(attempt, 7)
		select {
		case <-time.After(d/2 + rand.N(d/2+1)):
		case <-ctx.Done():
			return
		}
	}
	f.provisioned.Add(1)
	f.connected.Add(1)
	f.lastUp.Store(time.Now().UnixNano())
	f.mu.Lock()
	f.clients[i] = c
	f.mu.Unlock()
	release()
	defer func() {
		// Let what was sent reach the hub before the device goes away. A
		// whole fleet flushes at once, so give it time: with 10,000
		// devices on a loaded machine 5 s left a few hundred unacknowledged.
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Flush(fctx)
		c.Close()
	}()
	if f.cfg.TelemetryInterval <= 0 {
		<-ctx.Done()
		return
	}
	// Spread the fleet's messages over the interval.
	select {
	case <-time.After(rand.N(f.cfg.TelemetryInterval)):
	case <-moved:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(f.cfg.TelemetryInterval)
	defer t.Stop()
	for seq := 0; ; seq++ {
		m := device.Message{Body: []byte(`{"seq":` + strconv.Itoa(seq) + `}`), ContentType: "application/json",
			ContentEncoding: "utf-8", Properties: map[string]string{"seq": strconv.Itoa(seq)}}
		if err := c.Send(ctx, m); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-moved:
		case <-ctx.Done():
			return
		}
	}
}
