package migrate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
)

// RemoteTarget is a provisioning service on another Ferry deployment, seen
// through that deployment's APIs (package migrate/remoteferry). Errors
// carry ferry codes: EUNAUTHORIZED or EFORBIDDEN when the remote refuses
// the credentials, ETIMEOUT when it cannot be reached.
type RemoteTarget interface {
	// Service describes the remote provisioning service: its name, ID
	// scope, device provisioning host (HostName) and linked hubs, keyed by
	// RemoteHubID of their host names.
	Service(ctx context.Context) (*ferry.ProvisioningService, error)
	// GetEnrollmentGroup returns an enrollment group. Returns ENOTFOUND.
	GetEnrollmentGroup(ctx context.Context, id string) (*ferry.EnrollmentGroup, error)
	// CreateEnrollmentGroup creates an enabled symmetric-key group with
	// g's ID and keys.
	CreateEnrollmentGroup(ctx context.Context, g *ferry.EnrollmentGroup) error
	// GetRegistration returns a registration record. Returns ENOTFOUND.
	GetRegistration(ctx context.Context, registrationID string) (*ferry.RegistrationRecord, error)
	// Connected reports whether a device holds a session at the hub.
	Connected(ctx context.Context, hubHost, deviceID string) (bool, error)
	// HubStatistics reads a hub's statistics: its identities, and the
	// device connections of the Ferry serving it.
	HubStatistics(ctx context.Context, hubHost string) (HubStatistics, error)
	// InvokeMethod calls a direct method, with the errors of
	// ferry.HubService.InvokeMethod.
	InvokeMethod(ctx context.Context, hubHost, deviceID string, req ferry.MethodRequest) (ferry.MethodResponse, error)
	// Follow streams the hub's device events (HubID set to RemoteHubID)
	// to fn until ctx ends or the stream breaks. resync is called once
	// the stream is established and again whenever the remote says it
	// dropped events: events before it may be missing, so the caller
	// reconciles from the registry.
	Follow(ctx context.Context, hubHost string, resync func(), fn func(ferry.Event)) error
}

// HubStatistics is what a remote hub says of its load, from its IoT Hub
// service statistics.
type HubStatistics struct {
	// Devices counts the hub's identities (totalDeviceCount).
	Devices int64
	// OpenConnections and ConnectionLimit are the device connections of
	// the Ferry process serving the hub, and the most it accepts (Ferry's
	// extension of the service statistics). ConnectionLimit is 0 when the
	// remote does not report them.
	OpenConnections int64
	ConnectionLimit int64
}

// RemoteDialer returns the remote target of a migration: the provisioning
// service serviceID (an ARM resource ID on the remote) of the Ferry rf
// describes.
type RemoteDialer func(ctx context.Context, rf *ferry.RemoteFerry, serviceID string) (RemoteTarget, error)

// RemoteHubID is the hub ID the orchestrator gives a remote hub: remote
// hubs are known by host name, which cannot clash with a local hub's UUID.
func RemoteHubID(host string) string { return "remote:" + strings.ToLower(host) }

func remoteHost(hubID string) (string, bool) { return strings.CutPrefix(hubID, "remote:") }

// remoteRun is the remote side of a run: the target, its streams, and the
// connection states they report.
type remoteRun struct {
	t      RemoteTarget
	id     string // the migration's
	cancel context.CancelFunc
	// sourceHost is where devices fail back to: the source hub's host,
	// which on Ferry reaches the same MQTT listener as its provisioning
	// service (the remote one devices dialled last knows nothing of it).
	sourceHost string
	ready      bool // owned by the loop: the target is known and its streams are opening

	mu        sync.Mutex
	connected map[string]bool // hubID + "\x00" + deviceID
}

func (rr *remoteRun) setConnected(hubID, deviceID string, on bool) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if on {
		rr.connected[hubID+"\x00"+deviceID] = true
	} else {
		delete(rr.connected, hubID+"\x00"+deviceID)
	}
}

func (rr *remoteRun) isConnected(hubID, deviceID string) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.connected[hubID+"\x00"+deviceID]
}

// validateRemote checks a remote target's settings.
func validateRemote(m *ferry.Migration) error {
	rf := m.Target.Remote
	u, err := url.Parse(rf.APIEndpoint)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		return ferry.Errorf(ferry.EINVALID, "The target Ferry's API endpoint must be an https:// URL.")
	case rf.ClientID == "" || rf.ClientSecret == "":
		return ferry.Errorf(ferry.EINVALID, "The target Ferry needs a client ID and a client secret of a service principal there.")
	case m.Target.ProvisioningServiceID == "":
		return ferry.Errorf(ferry.EINVALID, "The target provisioning service's resource ID on the target Ferry is required.")
	}
	if _, err := ferry.ParseResourceID(m.Target.ProvisioningServiceID); err != nil {
		return ferry.Errorf(ferry.EINVALID, "The target provisioning service must be given by its resource ID on the target Ferry.")
	}
	return nil
}

// dialRemote returns the migration's remote target.
func (o *Orchestrator) dialRemote(ctx context.Context, m *ferry.Migration) (RemoteTarget, error) {
	if o.cfg.Remote == nil {
		return nil, ferry.Errorf(ferry.EINVALID, "This server cannot migrate to another Ferry deployment.")
	}
	return o.cfg.Remote(ctx, m.Target.Remote, m.Target.ProvisioningServiceID)
}

// createRemote checks a remote target at Create: the remote answers with
// the credentials given and its provisioning service links hubs.
func (o *Orchestrator) createRemote(ctx context.Context, m *ferry.Migration) error {
	if err := validateRemote(m); err != nil {
		return err
	}
	rt, err := o.dialRemote(ctx, m)
	if err != nil {
		return err
	}
	svc, err := rt.Service(ctx)
	if err != nil {
		return ferry.WrapError(ferry.EINVALID, ferry.ErrorMessage(err), err)
	}
	if err := adoptTarget(m, svc); err != nil {
		return err
	}
	if m.Target.ProvisioningHost == "" {
		m.Target.ProvisioningHost = svc.HostName
	}
	return nil
}

// loadRemote sets up the remote side of a run being loaded. The target's
// description is read by the follower, so that a remote that is down does
// not keep the migration from loading: until it answers, the run commands
// nobody.
func (o *Orchestrator) loadRemote(ctx context.Context, r *run) error {
	rt, err := o.dialRemote(ctx, r.m)
	if err != nil {
		return fmt.Errorf("target Ferry: %w", err)
	}
	name := r.m.Target.ProvisioningServiceID
	if rid, err := ferry.ParseResourceID(name); err == nil && len(rid.Names) > 0 {
		name = rid.Names[len(rid.Names)-1]
	}
	src, err := o.cfg.Store.GetHub(ctx, r.m.SourceHubID)
	if err != nil {
		return fmt.Errorf("source hub: %w", err)
	}
	r.target = &ferry.ProvisioningService{ID: r.m.Target.ProvisioningServiceID, Name: name, IDScope: r.m.Target.IDScope}
	fctx, cancel := context.WithCancel(o.lctx)
	r.remote = &remoteRun{t: rt, id: r.m.ID, cancel: cancel, sourceHost: src.HostName, connected: map[string]bool{}}
	go o.followRemote(fctx, r)
	return nil
}

// followRemote reads the remote target until it answers, then follows
// each target hub's event stream, reopening it when it breaks and
// reconciling from the remote registry each time it opens, so that
// nothing that happened while no stream was open is missed.
func (o *Orchestrator) followRemote(ctx context.Context, r *run) {
	rr := r.remote
	log := o.log.With("migration_id", rr.id)
	var svc *ferry.ProvisioningService
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		var err error
		if svc, err = rr.t.Service(ctx); err == nil {
			break
		}
		log.Warn("target Ferry", "error", err)
		if !sleep(ctx, jitter(backoff)) {
			return
		}
	}
	err := o.onLoop(ctx, func(context.Context) error {
		r.target.Name, r.target.HostName, r.target.LinkedHubs = svc.Name, svc.HostName, svc.LinkedHubs
		for _, l := range svc.LinkedHubs {
			r.targetHubs[l.HubID] = true
		}
		rr.ready = true
		return nil
	})
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, l := range svc.LinkedHubs {
		wg.Go(func() { o.followHub(ctx, r, l) })
	}
	wg.Wait()
}

func (o *Orchestrator) followHub(ctx context.Context, r *run, l ferry.LinkedHub) {
	rr := r.remote
	log := o.log.With("migration_id", rr.id, "hub", l.HostName)
	for backoff := time.Second; ctx.Err() == nil; {
		opened := false
		err := rr.t.Follow(ctx, l.HostName, func() {
			opened = true
			backoff = time.Second
			go o.reconcileRemote(ctx, r)
		}, func(ev ferry.Event) {
			if ev.Source == ferry.SourceDeviceConnectivity {
				rr.setConnected(ev.HubID, ev.DeviceID, ev.Type == ferry.TypeConnected)
			}
			if !o.relevant(ev) {
				return
			}
			select {
			case o.events <- ev:
			case <-ctx.Done():
			}
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("target event stream ended; reopening", "error", err, "was_open", opened)
		if !sleep(ctx, jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// remoteState is what the remote registry says of one device.
type remoteState struct {
	deviceID  string
	reg       *ferry.RegistrationRecord
	connected string // hub ID the device is connected to, or ""
}

// reconcileRemote reads, for every device in flight or failing back, its
// registration and connection state at the remote, and applies them on
// the loop as derive does for a local target.
func (o *Orchestrator) reconcileRemote(ctx context.Context, r *run) {
	var ids []string
	var hubs []ferry.LinkedHub
	err := o.onLoop(ctx, func(context.Context) error {
		for id, d := range r.devs {
			if watched(d.rec.State) {
				ids = append(ids, id)
			}
		}
		hubs = r.target.LinkedHubs
		return nil
	})
	if err != nil || len(ids) == 0 {
		return
	}
	states := make([]remoteState, 0, len(ids))
	for _, id := range ids {
		s := remoteState{deviceID: id}
		reg, err := r.remote.t.GetRegistration(ctx, strings.ToLower(id))
		if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
			o.log.Warn("reconcile with the target Ferry", "migration_id", r.remote.id, "error", err)
			return // the stream breaks too, and the next one reconciles
		}
		s.reg = reg
		for _, l := range hubs {
			on, err := r.remote.t.Connected(ctx, l.HostName, id)
			if err != nil {
				o.log.Warn("reconcile with the target Ferry", "migration_id", r.remote.id, "error", err)
				return
			}
			r.remote.setConnected(l.HubID, id, on)
			if on {
				s.connected = l.HubID
			}
		}
		states = append(states, s)
	}
	_ = o.onLoop(ctx, func(ctx context.Context) error {
		if o.runs[r.remote.id] != r {
			return nil // reloaded meanwhile: its own follower reconciles
		}
		var ts []*ferry.MigrationTransition
		now := o.now().UTC()
		for _, s := range states {
			d := r.devs[s.deviceID]
			if d == nil || !inFlight(d.rec.State) {
				continue
			}
			commandedAt := d.rec.Deadline.Add(-r.m.DeviceTimeout)
			to, reason := d.rec.State, ""
			if s.reg != nil && s.reg.Status == ferry.RegistrationAssigned && !s.reg.UpdatedAt.Before(commandedAt) &&
				r.targetHubs[RemoteHubID(s.reg.AssignedHub)] && stage(to) < stage(ferry.DeviceProvisioned) {
				to, reason = ferry.DeviceProvisioned, "registered at the target Ferry (found by reconciling)"
			}
			if s.connected != "" && stage(to) < stage(ferry.DeviceConnected) {
				to, reason = ferry.DeviceConnected, "connected at the target Ferry (found by reconciling)"
			}
			if to != d.rec.State {
				ts = append(ts, chain(r, d, to, now, reason)...)
			}
		}
		return o.apply(ctx, r, ts)
	})
}

// onLoop runs fn on the loop goroutine; it fails when the orchestrator is
// not running.
func (o *Orchestrator) onLoop(ctx context.Context, fn func(ctx context.Context) error) error {
	return o.onLoopOr(ctx, fn, func(context.Context) error {
		return ferry.Errorf(ferry.ECONFLICT, "The orchestrator is not running.")
	})
}

// targetRegistration returns a device's registration at a local target.
// For a remote one it returns ENOTFOUND: the remote follower reconciles
// registrations once its streams are open, off the loop.
func (o *Orchestrator) targetRegistration(ctx context.Context, r *run, deviceID string) (*ferry.RegistrationRecord, error) {
	if r.remote != nil {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "Registrations at a remote target are reconciled by its follower.")
	}
	return o.cfg.Store.GetRegistration(ctx, r.target.ID, strings.ToLower(deviceID))
}

// connected reports whether a device holds a session at a hub, local or
// remote.
func (o *Orchestrator) connected(r *run, hubID, deviceID string) bool {
	if _, ok := remoteHost(hubID); ok {
		return r.remote != nil && r.remote.isConnected(hubID, deviceID)
	}
	return o.cfg.Hubs.Connected(hubID, deviceID)
}

// invoke calls a method on a device at a hub, local or remote.
func (o *Orchestrator) invoke(ctx context.Context, r *run, hubID, deviceID string, req ferry.MethodRequest) (ferry.MethodResponse, error) {
	if host, ok := remoteHost(hubID); ok {
		if r.remote == nil {
			return ferry.MethodResponse{}, ferry.ErrDeviceNotOnline
		}
		return r.remote.t.InvokeMethod(ctx, host, deviceID, req)
	}
	return o.cfg.Hubs.InvokeMethod(ctx, hubID, deviceID, req)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }
