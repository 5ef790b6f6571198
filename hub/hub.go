// Package hub is the device side of Ferry's IoT hubs: it authenticates MQTT
// sessions (SAS or X.509), takes telemetry durably, answers twin requests,
// delivers direct methods, desired-property updates and cloud-to-device
// messages, and keeps each identity's connection state. Service implements
// ferry.HubService for the REST surfaces and mqttgw.DeviceHubs for the
// gateway. Several hubs share one Service; a connection reaches its hub by
// the host in its username, its TLS server name, or the local address it
// arrived on.
package hub

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/sas"
)

// Config configures a Service.
type Config struct {
	Store  ferry.Store
	Bus    ferry.EventBus  // lifecycle and telemetry events; nil: none
	Sink   ferry.EventSink // durable telemetry; a QoS 1 PUBACK waits for it; nil: none
	Logger *slog.Logger
	Now    func() time.Time
	// FlushInterval is how often connection state changes are written to
	// the store (default 1 s).
	FlushInterval time.Duration
	// ActivityInterval is how often the last activity of connected devices
	// is written (default DefaultActivityInterval, at least FlushInterval).
	// It is kept in memory per session in between, never written per
	// message; connecting and disconnecting write it with the state.
	ActivityInterval time.Duration
	// ClockSkew is how far in the past a SAS expiry may be (default 0).
	ClockSkew time.Duration
	// CacheTTL is how long a hub or device identity read for a CONNECT is
	// reused (default DefaultCacheTTL; negative: not cached). HubChanged and
	// IdentityChanged drop entries at once, so a change made through this
	// Service applies to the next CONNECT; a change made through another
	// process reaches this one after at most CacheTTL.
	CacheTTL time.Duration
	// IdentityCacheSize bounds the cached identities (default
	// DefaultIdentityCacheSize).
	IdentityCacheSize int
}

// Limits of IoT Hub that the device side enforces.
const (
	DefaultActivityInterval = 10 * time.Second
	MaxTwinSection          = 32 * 1024 // desired or reported, as JSON
	DefaultMethodWait       = 30 * time.Second
)

type key struct{ hubID, deviceID string }

// Service is the device side of every hub in the process.
type Service struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	sessions map[key]*session
	perHub   map[string]int        // hubID -> len of its sessions
	hubs     map[string]*ferry.Hub // shared by the sessions of each hub
	cache    *cache
	updates  map[string]map[string]ferry.ConnectionUpdate // hubID -> deviceID -> update

	stop chan struct{}
	done chan struct{}
}

var (
	_ ferry.HubService  = (*Service)(nil)
	_ mqttgw.DeviceHubs = (*Service)(nil)
)

// New returns a Service and starts its connection-state writer.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("hub: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.ActivityInterval <= 0 {
		cfg.ActivityInterval = DefaultActivityInterval
	}
	cfg.ActivityInterval = max(cfg.ActivityInterval, cfg.FlushInterval)
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.IdentityCacheSize == 0 {
		cfg.IdentityCacheSize = DefaultIdentityCacheSize
	}
	s := &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now,
		sessions: map[key]*session{}, perHub: map[string]int{}, hubs: map[string]*ferry.Hub{}, updates: map[string]map[string]ferry.ConnectionUpdate{},
		cache: newCache(cfg.CacheTTL, cfg.IdentityCacheSize, cfg.Now),
		stop:  make(chan struct{}), done: make(chan struct{})}
	go s.flusher()
	return s, nil
}

// Close writes the pending connection updates and stops the writer. It does
// not close connections; close the gateway first.
func (s *Service) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.done
	return s.Flush(context.Background())
}

func (s *Service) flusher() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	lastActivity := s.now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			activity := s.now().Sub(lastActivity) >= s.cfg.ActivityInterval
			if activity {
				lastActivity = s.now()
				s.cache.sweep()
			}
			if err := s.flush(context.Background(), activity); err != nil {
				s.log.Warn("hub: write connection state", "error", err)
			}
		}
	}
}

// Flush writes the pending connection-state and activity updates now.
func (s *Service) Flush(ctx context.Context) error { return s.flush(ctx, true) }

// flush writes the pending connection-state updates and, if activity is
// set, the last activity of every session that published since the last
// time.
func (s *Service) flush(ctx context.Context, activity bool) error {
	s.mu.Lock()
	if activity {
		for k, ss := range s.sessions {
			if at := ss.activity.Swap(0); at != 0 {
				s.noteLocked(k.hubID, k.deviceID, "", time.Unix(0, at).UTC())
			}
		}
	}
	pending := s.updates
	s.updates = map[string]map[string]ferry.ConnectionUpdate{}
	s.mu.Unlock()
	var errs []error
	for hubID, m := range pending {
		u := make([]ferry.ConnectionUpdate, 0, len(m))
		for _, x := range m {
			u = append(u, x)
		}
		if err := s.cfg.Store.UpdateConnections(ctx, hubID, u); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hub: flush connections: %w", err)
	}
	return nil
}

// note queues a connection-state update, with the last activity if
// activity is not zero.
func (s *Service) note(hubID, deviceID string, state ferry.ConnectionState, activity time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noteLocked(hubID, deviceID, state, activity)
}

// noteModel queues the model a device announced in its CONNECT username
// (model-id), so that queries by $template and a migration's preflight
// see it, as IoT Hub keeps it on the twin.
func (s *Service) noteModel(hubID, deviceID, modelID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noteLocked(hubID, deviceID, "", time.Time{})
	u := s.updates[hubID][deviceID]
	u.ModelID = modelID
	s.updates[hubID][deviceID] = u
}

func (s *Service) noteLocked(hubID, deviceID string, state ferry.ConnectionState, activity time.Time) {
	m := s.updates[hubID]
	if m == nil {
		m = map[string]ferry.ConnectionUpdate{}
		s.updates[hubID] = m
	}
	u := m[deviceID]
	u.DeviceID = deviceID
	if state != "" {
		u.State, u.At = state, s.now().UTC()
	}
	if activity.After(u.LastActivityAt) {
		u.LastActivityAt = activity
	}
	m[deviceID] = u
}

// emit publishes events on the bus and, if durable, writes them to the sink
// first.
func (s *Service) emit(ctx context.Context, durable bool, evs ...ferry.Event) error {
	if durable && s.cfg.Sink != nil {
		if err := s.cfg.Sink.WriteEvents(ctx, evs); err != nil {
			return fmt.Errorf("hub: write events: %w", err)
		}
	}
	if s.cfg.Bus != nil {
		if err := s.cfg.Bus.Publish(ctx, evs...); err != nil {
			return fmt.Errorf("hub: publish events: %w", err)
		}
	}
	return nil
}

// lifecycle emits a non-telemetry event durably, logging a failure: the
// connection it describes goes on either way.
func (s *Service) lifecycle(hub *ferry.Hub, deviceID, modelID, source, typ string, data []byte) {
	ev := ferry.Event{ID: ferry.NewUUID(), Time: s.now().UTC(), Source: source, Type: typ,
		HubID: hub.ID, HubHost: hub.HostName, DeviceID: deviceID, ModelID: modelID, Data: data}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.emit(ctx, true, ev); err != nil {
		s.log.Warn("hub: lifecycle event lost", "type", typ, "hub", hub.ID, "device", deviceID, "error", err)
	}
}

// findHub resolves the hub a connection addresses: the host in its username
// (with and without a port), its TLS server name, then its local address.
func (s *Service) findHub(ctx context.Context, host, serverName string, local net.Addr) (*ferry.Hub, error) {
	var cands []string
	add := func(h string) {
		if h != "" {
			cands = append(cands, h)
		}
	}
	add(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		add(h)
	}
	add(serverName)
	if a, ok := local.(*net.TCPAddr); ok {
		add(a.IP.String())
	}
	for _, c := range cands {
		h, err := s.hubByHost(ctx, c)
		if err == nil {
			return h, nil
		}
		if !ferry.IsCode(err, ferry.ENOTFOUND) {
			return nil, fmt.Errorf("hub: find hub: %w", err)
		}
	}
	return nil, ferry.Errorf(ferry.ENOTFOUND, "no hub for %q", host)
}

// shareHub returns one *ferry.Hub per hub and version, so that sessions do
// not each hold a copy of its policies.
func (s *Service) shareHub(h *ferry.Hub) *ferry.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.hubs[h.ID]; cur != nil && cur.ETag == h.ETag {
		return cur
	}
	s.hubs[h.ID] = h
	return h
}

var errUnauthorized = ferry.Errorf(ferry.EUNAUTHORIZED, "not authorized")

// ConnectDevice authenticates a hub session.
func (s *Service) ConnectDevice(ctx context.Context, req *mqttgw.ConnectRequest) (mqttgw.Session, error) {
	u := req.Username
	if u.ModuleID != "" {
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "modules are not supported")
	}
	if req.ClientID != u.DeviceID {
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "client ID must be the device ID")
	}
	hub, err := s.findHub(ctx, u.Host, req.ServerName, req.LocalAddr)
	if err != nil {
		return nil, err
	}
	id, err := s.identity(ctx, hub.ID, u.DeviceID)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("hub: connect: %w", err)
	}
	if id.Status == ferry.DeviceDisabled {
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "device is disabled")
	}
	now := s.now()
	var expiry time.Time
	if req.HasPassword {
		expiry, err = s.checkSAS(hub, id, u.Host, req.Password, now)
	} else {
		err = s.checkX509(ctx, hub, id, req.PeerCertificates, now)
	}
	if err != nil {
		return nil, err
	}
	modelID, announced := u.ModelID, ""
	if modelID == "" {
		modelID = id.ModelID
	} else if modelID != id.ModelID {
		announced = modelID
	}
	ss := &session{s: s, hub: s.shareHub(hub), deviceID: u.DeviceID, generation: id.GenerationID, auth: id.Auth,
		modelID: modelID, announced: announced, conn: req.Conn, will: req.Will}
	if !expiry.IsZero() {
		conn := req.Conn
		ss.expiry = time.AfterFunc(expiry.Sub(now), func() {
			conn.Close(ferry.Errorf(ferry.EUNAUTHORIZED, "SAS token expired"))
		})
	}
	return ss, nil
}

// checkSAS verifies a SAS password against the device's keys or a policy
// with DeviceConnect, over the sr exactly as sent. It returns the expiry.
func (s *Service) checkSAS(hub *ferry.Hub, id *ferry.DeviceIdentity, host, password string, now time.Time) (time.Time, error) {
	tok, err := sas.Parse(password)
	if err != nil {
		return time.Time{}, errUnauthorized
	}
	if !sas.ResourceCovers(tok.SignedResource, host+"/devices/"+id.DeviceID) {
		return time.Time{}, errUnauthorized
	}
	var keys []string
	if tok.KeyName != "" {
		p := hub.Policy(tok.KeyName)
		if p == nil || !p.Has(ferry.RightDeviceConnect) {
			return time.Time{}, errUnauthorized
		}
		keys = []string{p.PrimaryKey, p.SecondaryKey}
	} else {
		if id.Auth.Type != ferry.AuthSAS {
			return time.Time{}, errUnauthorized
		}
		keys = []string{id.Auth.PrimaryKey, id.Auth.SecondaryKey}
	}
	for _, k := range keys {
		if k == "" {
			continue
		}
		if sas.Verify(tok, k, now.Add(-s.cfg.ClockSkew)) == nil {
			return tok.Expiry, nil
		}
	}
	return time.Time{}, errUnauthorized
}

// checkX509 verifies a client certificate: its CN must be the device ID, and
// its thumbprint one of the identity's (self-signed) or its chain must end at
// a verified CA of a provisioning service linked to the hub.
func (s *Service) checkX509(ctx context.Context, hub *ferry.Hub, id *ferry.DeviceIdentity, chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errUnauthorized
	}
	leaf := chain[0]
	if leaf.Subject.CommonName != id.DeviceID || now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return errUnauthorized
	}
	switch id.Auth.Type {
	case ferry.AuthSelfSigned:
		t1, t256 := pki.ThumbprintSHA1(leaf), pki.ThumbprintSHA256(leaf)
		for _, want := range []string{id.Auth.PrimaryThumbprint, id.Auth.SecondaryThumbprint} {
			want = strings.ToUpper(strings.ReplaceAll(want, ":", ""))
			if want != "" && (want == t1 || want == t256) {
				return nil
			}
		}
		return errUnauthorized
	case ferry.AuthCertificateAuthority:
		roots, err := s.hubCAs(ctx, hub.ID)
		if err != nil {
			return err
		}
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return errUnauthorized
		}
		return nil
	}
	return errUnauthorized
}

// hubCAs returns the verified CAs of the provisioning services linked to a hub.
func (s *Service) hubCAs(ctx context.Context, hubID string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	opt := ferry.ListOptions{}
	for {
		page, err := s.cfg.Store.ListProvisioningServices(ctx, ferry.ProvisioningServiceFilter{ListOptions: opt})
		if err != nil {
			return nil, fmt.Errorf("hub: list provisioning services: %w", err)
		}
		for _, ps := range page.Items {
			linked := false
			for _, l := range ps.LinkedHubs {
				linked = linked || l.HubID == hubID
			}
			if !linked {
				continue
			}
			cas, err := s.cfg.Store.ListProvisioningCAs(ctx, ps.ID)
			if err != nil {
				return nil, fmt.Errorf("hub: list CAs: %w", err)
			}
			for _, ca := range cas {
				if !ca.Verified {
					continue
				}
				if c, err := x509.ParseCertificate(ca.DER); err == nil {
					pool.AddCert(c)
				}
			}
		}
		if page.Next == "" {
			return pool, nil
		}
		opt.After = page.Next
	}
}
