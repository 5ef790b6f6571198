package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/sas"
)

// operation is one register request. It is kept for polling once it was
// answered 202 assigning.
type operation struct {
	id      string
	regID   string // lower case
	expires time.Time
	done    chan struct{} // closed once res is set
	res     result
}

// result is the outcome of a registration.
type result struct {
	status int    // 200, or the HTTP status of a failure
	answer []byte // the answer to the register request: 200 assigned or an error body
	polled []byte // the answer to a poll: assigned, or status failed or disabled
}

// assignTimeout bounds one assignment's store work.
const assignTimeout = 30 * time.Second

// session is one DPS connection.
type session struct {
	s     *Service
	svc   *ferry.ProvisioningService
	regID string
	en    *enrollment
	conn  mqttgw.Conn
	key   string
	opPfx string // "4.{16 hex digits of the service ID}.", read without mu

	// mu serializes the assignments of this connection: one answered 202
	// may still run when the device sends another register request.
	mu sync.Mutex
}

func (ss *session) Key() string                 { return ss.key }
func (ss *session) Established()                {}
func (ss *session) Subscribed(filters []string) {}
func (ss *session) Acked(packetID uint16)       {}
func (ss *session) Closed(graceful bool)        {}

// Subscribe admits only the DPS response filter.
func (ss *session) Subscribe(filter string) bool { return filter == mqttgw.FilterDPSRes }

// DPS error codes used here; the first three digits are the HTTP status.
const (
	codeBadRequest        = 400004
	codeUnauthorized      = 401002
	codeOperationNotFound = 404203
	codeNoHub             = 400207
	codeInternal          = 500000
)

func (ss *session) reply(status int, rid string, extra string, body []byte) error {
	topic := "$dps/registrations/res/" + strconv.Itoa(status) + "/?$rid=" + rid + extra
	if err := ss.conn.Send(topic, body); err != nil {
		return fmt.Errorf("provisioning: reply: %w", err)
	}
	return nil
}

func (ss *session) fail(rid string, code int, msg string) error {
	return ss.reply(code/1000, rid, "", ss.errorBody(code, msg))
}

// errorBody is DPS's error answer; the code's first three digits are the
// HTTP status.
func (ss *session) errorBody(code int, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"errorCode": code, "trackingId": ferry.NewUUID(), "message": msg,
		"timestampUtc": ss.s.now().UTC().Format(time.RFC3339Nano)})
	return b
}

// failed is the result of a registration that ended without a hub: the
// register request gets the error body, a poll gets the operation with
// status failed (or disabled) and the error in its registrationState, as
// DPS answers.
func (ss *session) failed(opID string, status ferry.RegistrationStatus, code int, msg string) result {
	now := ss.s.now().UTC().Format(time.RFC3339Nano)
	polled, _ := json.Marshal(map[string]any{"operationId": opID, "status": string(status), "registrationState": map[string]any{
		"registrationId": ss.regID, "status": string(status), "errorCode": code, "errorMessage": msg,
		"createdDateTimeUtc": now, "lastUpdatedDateTimeUtc": now}})
	return result{status: code / 1000, answer: ss.errorBody(code, msg), polled: polled}
}

// retryAfter is the retry-after property of a 202 answer.
func (ss *session) retryAfter() string {
	secs := int(ss.s.cfg.RetryAfter / time.Second)
	if secs < 1 {
		secs = 1
	}
	return "&retry-after=" + strconv.Itoa(secs)
}

func assigning(opID string) []byte {
	b, _ := json.Marshal(map[string]any{"operationId": opID, "status": "assigning"})
	return b
}

// Publish handles register and poll requests.
func (ss *session) Publish(ctx context.Context, m mqttgw.Message) error {
	t, err := mqttgw.ParseTopic(m.Topic)
	if err != nil {
		return err
	}
	switch t.Kind {
	case mqttgw.TopicDPSRegister:
		return ss.register(ctx, t.RID, m.Payload)
	case mqttgw.TopicDPSPoll:
		return ss.poll(t.RID, t.OperationID)
	}
	return ferry.Errorf(ferry.EFORBIDDEN, "topic not allowed on provisioning")
}

func (ss *session) poll(rid, opID string) error {
	s := ss.s
	now := s.now()
	s.mu.Lock()
	op := s.ops[opID]
	s.sweepLocked(now)
	s.mu.Unlock()
	if op == nil || op.regID != strings.ToLower(ss.regID) || now.After(op.expires) {
		return ss.fail(rid, codeOperationNotFound, "Operation not found.")
	}
	select {
	case <-op.done:
		return ss.reply(200, rid, "", op.res.polled)
	default:
		return ss.reply(202, rid, ss.retryAfter(), assigning(op.id))
	}
}

// sweepLocked drops expired operations, at most once a minute. s.mu is held.
func (s *Service) sweepLocked(now time.Time) {
	if now.Sub(s.swept) < time.Minute {
		return
	}
	s.swept = now
	for id, o := range s.ops {
		if now.After(o.expires) {
			delete(s.ops, id)
		}
	}
}

type registerBody struct {
	RegistrationID string          `json:"registrationId"`
	Payload        json.RawMessage `json:"payload"`
}

func (ss *session) register(ctx context.Context, rid string, body []byte) error {
	var rb registerBody
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &rb); err != nil {
			return ss.fail(rid, codeBadRequest, "The request body is not valid JSON.")
		}
	}
	if rb.RegistrationID != "" && !strings.EqualFold(rb.RegistrationID, ss.regID) {
		return ss.fail(rid, codeBadRequest, "The registration ID does not match the connection.")
	}
	if len(rb.Payload) > 0 && !bytes.Equal(bytes.TrimSpace(rb.Payload), []byte("null")) {
		var obj map[string]any
		if json.Unmarshal(rb.Payload, &obj) != nil {
			return ss.fail(rid, codeBadRequest, "The payload must be a JSON object.")
		}
	} else {
		rb.Payload = nil
	}
	s := ss.s
	op := &operation{id: ss.opPfx + ferry.NewUUID(),
		regID: strings.ToLower(ss.regID), done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), assignTimeout)
		defer cancel()
		op.res = ss.run(actx, op.id, rb.Payload)
		close(op.done)
	}()
	if w := s.cfg.AssignWait; w > 0 {
		t := time.NewTimer(w)
		select {
		case <-op.done:
			t.Stop()
			return ss.reply(op.res.status, rid, "", op.res.answer)
		case <-t.C:
		}
	}
	// Slow (or AssignWait < 0): the device polls until the assignment ends.
	now := s.now()
	s.mu.Lock()
	op.expires = now.Add(s.cfg.OperationTTL)
	s.ops[op.id] = op
	s.sweepLocked(now)
	s.mu.Unlock()
	return ss.reply(202, rid, ss.retryAfter(), assigning(op.id))
}

// run reloads the enrollment and assigns the device, storing the
// registration record either way.
func (ss *session) run(ctx context.Context, opID string, payload json.RawMessage) result {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err := ss.reload(ctx); err != nil {
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			ss.record(ctx, ferry.RegistrationFailed, "", "", codeUnauthorized, "The enrollment no longer exists.", payload)
			return ss.failed(opID, ferry.RegistrationFailed, codeUnauthorized, "The enrollment no longer exists.")
		}
		if err == errKeyChanged {
			ss.record(ctx, ferry.RegistrationFailed, "", "", codeUnauthorized, ferry.ErrorMessage(err), payload)
			return ss.failed(opID, ferry.RegistrationFailed, codeUnauthorized, ferry.ErrorMessage(err))
		}
		ss.s.log.Warn("provisioning: reload enrollment", "service", ss.svc.ID, "registration", ss.regID, "error", err)
		return ss.failed(opID, ferry.RegistrationFailed, codeInternal, "An internal error occurred.")
	}
	if ss.en.status() == ferry.EnrollmentDisabled {
		ss.record(ctx, ferry.RegistrationDisabled, "", "", codeUnauthorized, "The enrollment is disabled.", payload)
		return ss.failed(opID, ferry.RegistrationDisabled, codeUnauthorized, "The enrollment is disabled.")
	}
	state, err := ss.assign(ctx, payload)
	if err != nil {
		if ferry.IsCode(err, ferry.EINVALID) || ferry.IsCode(err, ferry.ENOTFOUND) {
			ss.record(ctx, ferry.RegistrationFailed, "", "", codeNoHub, ferry.ErrorMessage(err), payload)
			return ss.failed(opID, ferry.RegistrationFailed, codeNoHub, ferry.ErrorMessage(err))
		}
		ss.s.log.Warn("provisioning: assign", "service", ss.svc.ID, "registration", ss.regID, "error", err)
		return ss.failed(opID, ferry.RegistrationFailed, codeInternal, "An internal error occurred.")
	}
	final, err := json.Marshal(map[string]any{"operationId": opID, "status": "assigned", "registrationState": state})
	if err != nil {
		ss.s.log.Warn("provisioning: encode answer", "error", err)
		return ss.failed(opID, ferry.RegistrationFailed, codeInternal, "An internal error occurred.")
	}
	return result{status: 200, answer: final, polled: final}
}

// reload reads the enrollment and the service again, so that a change made
// since the device connected (disabled, other hubs) applies. The service
// may come from the scope cache: a change made through this process drops
// it there (ServiceChanged), one made elsewhere applies within cacheTTL.
func (ss *session) reload(ctx context.Context) error {
	st := ss.s.cfg.Store
	svc, _ := ss.s.scopes.get(ss.svc.IDScope)
	if svc == nil || svc.ID != ss.svc.ID {
		var err error
		if svc, err = st.GetProvisioningService(ctx, ss.svc.ID); err != nil {
			return err
		}
		ss.s.scopes.putService(svc.IDScope, svc)
	}
	ss.svc = svc
	if ss.en.group != nil {
		g, err := st.GetEnrollmentGroup(ctx, svc.ID, ss.en.group.ID)
		if err != nil {
			return err
		}
		if ss.en.key != "" && !derives(g.Attestation, ss.regID, ss.en.key) {
			// The session may have been admitted by a group read a few
			// seconds before (see cacheTTL) whose keys changed since.
			return errKeyChanged
		}
		ss.en.group = g
		return nil
	}
	e, err := st.GetIndividualEnrollment(ctx, svc.ID, ss.en.indiv.RegistrationID)
	if err != nil {
		return err
	}
	ss.en.indiv = e
	return nil
}

// record stores a registration record that did not end in an assignment.
func (ss *session) record(ctx context.Context, st ferry.RegistrationStatus, hub, deviceID string, code int, msg string, payload json.RawMessage) {
	now := ss.s.now().UTC()
	r := &ferry.RegistrationRecord{ServiceID: ss.svc.ID, RegistrationID: strings.ToLower(ss.regID), DeviceID: deviceID,
		AssignedHub: hub, Status: st, ErrorCode: code, ErrorMessage: msg, Payload: payload, CreatedAt: now, UpdatedAt: now}
	if ss.en.group != nil {
		r.EnrollmentGroupID = ss.en.group.ID
	}
	if old, err := ss.s.cfg.Store.GetRegistration(ctx, ss.svc.ID, r.RegistrationID); err == nil {
		r.CreatedAt = old.CreatedAt
	}
	if err := ss.s.cfg.Store.PutRegistration(ctx, r); err != nil {
		ss.s.log.Warn("provisioning: store registration", "service", ss.svc.ID, "registration", ss.regID, "error", err)
	}
}

// assign allocates a hub, creates or updates the identity there and stores
// the registration record. It returns DPS's registrationState.
func (ss *session) assign(ctx context.Context, payload json.RawMessage) (map[string]any, error) {
	s, st := ss.s, ss.s.cfg.Store
	en := ss.en
	regLower := strings.ToLower(ss.regID)
	var (
		iotHubs  []string
		policy   ferry.AllocationPolicy
		reprov   ferry.ReprovisionPolicy
		initial  ferry.InitialTwin
		edge     bool
		deviceID = ss.regID
		groupID  string
	)
	if g := en.group; g != nil {
		iotHubs, policy, reprov, initial, edge, groupID = g.IoTHubs, g.AllocationPolicy, g.ReprovisionPolicy, g.InitialTwin, g.IoTEdge, g.ID
	} else {
		e := en.indiv
		iotHubs, policy, reprov, initial, edge = e.IoTHubs, e.AllocationPolicy, e.ReprovisionPolicy, e.InitialTwin, e.IoTEdge
		if e.DeviceID != "" {
			deviceID = e.DeviceID
		}
	}
	if policy == "" {
		policy = ss.svc.AllocationPolicy
	}
	cands := candidates(ss.svc.LinkedHubs, iotHubs)
	if len(cands) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "No linked hub is available for this enrollment.")
	}
	var modelID string
	if len(payload) > 0 {
		var p struct {
			ModelID string `json:"modelId"`
		}
		_ = json.Unmarshal(payload, &p)
		modelID = p.ModelID
	}

	prev, err := st.GetRegistration(ctx, ss.svc.ID, regLower)
	if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, fmt.Errorf("provisioning: registration: %w", err)
	}
	if err != nil {
		prev = nil
	}
	var target *ferry.LinkedHub
	if prev != nil && prev.Status == ferry.RegistrationAssigned && !reprov.UpdateHubAssignment {
		for i := range cands {
			if strings.EqualFold(cands[i].HostName, prev.AssignedHub) {
				target = &cands[i]
			}
		}
	}
	if target == nil {
		target, err = allocate(policy, cands, regLower)
		if err != nil {
			return nil, err
		}
	}
	hub := s.hubs.get(target.HubID)
	if hub == nil {
		if hub, err = st.GetHub(ctx, target.HubID); err != nil {
			return nil, fmt.Errorf("provisioning: linked hub: %w", err)
		}
		s.hubs.put(hub)
	}
	hostName := target.HostName
	if hostName == "" {
		hostName = hub.HostName
	}
	substatus := ferry.SubstatusInitialAssignment
	moved := prev != nil && prev.Status == ferry.RegistrationAssigned && !strings.EqualFold(prev.AssignedHub, hostName)
	var oldTwin *ferry.Twin
	if moved {
		substatus = ferry.SubstatusDeviceDataReset
		if reprov.MigrateDeviceData {
			substatus = ferry.SubstatusDeviceDataMigrated
			if oh, err := st.GetHubByHost(ctx, prev.AssignedHub); err == nil {
				if t, err := st.GetTwin(ctx, oh.ID, prev.DeviceID); err == nil {
					oldTwin = t
				}
			}
		}
	}

	auth := ferry.DeviceAuth{Type: ferry.AuthCertificateAuthority}
	switch a := en.attestation(); {
	case a.Type == ferry.AttestSymmetricKey && en.group != nil:
		// Both keys the device may hold: derived from the group's primary and secondary key.
		p, sk := deriveBoth(a, ss.regID, en.key)
		auth = ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: p, SecondaryKey: sk}
	case a.Type == ferry.AttestSymmetricKey:
		auth = ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: a.PrimaryKey, SecondaryKey: a.SecondaryKey}
	case en.indiv != nil:
		auth = ferry.DeviceAuth{Type: ferry.AuthSelfSigned, PrimaryThumbprint: a.PrimaryThumbprint, SecondaryThumbprint: a.SecondaryThumbprint}
	}
	now := s.now().UTC()
	created := false
	id, err := st.GetDeviceIdentity(ctx, hub.ID, deviceID)
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		id = &ferry.DeviceIdentity{HubID: hub.ID, DeviceID: deviceID, GenerationID: ferry.NewUUID(), Status: ferry.DeviceEnabled,
			StatusUpdatedAt: now, Auth: auth, ConnectionState: ferry.Disconnected, ModelID: modelID, IoTEdge: edge,
			EnrollmentGroupID: groupID, CreatedAt: now}
		created = true
	case err != nil:
		return nil, fmt.Errorf("provisioning: identity: %w", err)
	default:
		id.Auth, id.IoTEdge, id.EnrollmentGroupID = auth, edge, groupID
		if modelID != "" {
			id.ModelID = modelID
		}
	}
	rec := &ferry.RegistrationRecord{ServiceID: ss.svc.ID, RegistrationID: regLower, EnrollmentGroupID: groupID,
		DeviceID: deviceID, AssignedHub: hostName, Status: ferry.RegistrationAssigned, Substatus: substatus,
		Payload: payload, ModelID: modelID, CreatedAt: now, UpdatedAt: now}
	if prev != nil {
		rec.CreatedAt = prev.CreatedAt
	}
	// A new identity's twin is empty: it is written again only if the
	// enrollment's initial twin or a move gives it content.
	twin := moved || created && (initial.Tags != nil || initial.Desired != nil)
	ifMatch := id.ETag // the write may run twice (see committer.do); id.ETag changes on the first
	err = s.commits.do(func(tx ferry.Tx) error {
		if created {
			if err := tx.CreateDeviceIdentity(ctx, id); err != nil {
				return fmt.Errorf("provisioning: create identity: %w", err)
			}
		} else if err := tx.UpdateDeviceIdentity(ctx, id, ifMatch); err != nil {
			return fmt.Errorf("provisioning: update identity: %w", err)
		}
		if twin {
			t, err := tx.GetTwin(ctx, hub.ID, deviceID)
			if err != nil {
				return fmt.Errorf("provisioning: twin: %w", err)
			}
			if oldTwin != nil {
				t.Tags, t.Desired, t.Reported = oldTwin.Tags, oldTwin.Desired, oldTwin.Reported
			} else {
				t.Tags, t.Desired = initial.Tags, initial.Desired
				if moved {
					t.Reported = map[string]any{} // deviceDataReset
				}
			}
			if t.Tags != nil || t.Desired != nil || t.Reported != nil {
				t.Version++
				if t.Desired != nil {
					t.DesiredVersion++
				}
				if err := tx.UpdateTwin(ctx, t, t.ETag); err != nil {
					return fmt.Errorf("provisioning: twin: %w", err)
				}
			}
		}
		if err := tx.PutRegistration(ctx, rec); err != nil {
			return fmt.Errorf("provisioning: store registration: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.cfg.Hubs != nil && !created {
		if err := s.cfg.Hubs.IdentityChanged(ctx, hub.ID, deviceID); err != nil {
			s.log.Warn("provisioning: tell hub", "hub", hub.ID, "device", deviceID, "error", err)
		}
	}
	if s.cfg.Bus != nil {
		evs := []ferry.Event{{ID: ferry.NewUUID(), Time: now, Source: ferry.SourceDeviceLifecycle, Type: ferry.TypeProvisioned,
			HubID: hub.ID, HubHost: hostName, DeviceID: deviceID, ModelID: id.ModelID}}
		if created {
			evs = append([]ferry.Event{{ID: ferry.NewUUID(), Time: now, Source: ferry.SourceDeviceLifecycle, Type: ferry.TypeRegistered,
				HubID: hub.ID, HubHost: hostName, DeviceID: deviceID, ModelID: id.ModelID}}, evs...)
		}
		if err := s.cfg.Bus.Publish(ctx, evs...); err != nil {
			s.log.Warn("provisioning: publish events", "error", err)
		}
	}
	attest := map[string]any{}
	if groupID != "" {
		attest["enrollmentGroupId"] = groupID
	}
	kind := "x509"
	if en.attestation().Type == ferry.AttestSymmetricKey {
		kind = "symmetricKey"
	}
	return map[string]any{
		kind:                     attest,
		"registrationId":         ss.regID,
		"createdDateTimeUtc":     rec.CreatedAt.Format(time.RFC3339Nano),
		"assignedHub":            hostName,
		"deviceId":               deviceID,
		"status":                 string(ferry.RegistrationAssigned),
		"substatus":              substatus,
		"lastUpdatedDateTimeUtc": rec.UpdatedAt.Format(time.RFC3339Nano),
		"etag":                   rec.ETag,
	}, nil
}

// candidates returns the linked hubs an enrollment may use: those named by
// the enrollment, else those that apply the allocation policy, else all.
func candidates(linked []ferry.LinkedHub, named []string) []ferry.LinkedHub {
	var out []ferry.LinkedHub
	if len(named) > 0 {
		for _, l := range linked {
			for _, n := range named {
				if strings.EqualFold(l.HostName, n) {
					out = append(out, l)
				}
			}
		}
		return out
	}
	for _, l := range linked {
		if l.ApplyAllocationPolicy {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = append(out, linked...)
	}
	return out
}

// allocate picks a hub: static takes the single candidate; hashed and
// geoLatency hash the registration ID over the candidates by weight.
func allocate(policy ferry.AllocationPolicy, cands []ferry.LinkedHub, regLower string) (*ferry.LinkedHub, error) {
	if policy == ferry.AllocationStatic {
		if len(cands) != 1 {
			return nil, ferry.Errorf(ferry.EINVALID, "Static allocation needs exactly one hub on the enrollment.")
		}
		return &cands[0], nil
	}
	total := 0
	for _, c := range cands {
		total += weight(c)
	}
	h := fnv.New64a()
	h.Write([]byte(regLower))
	n := int(h.Sum64() % uint64(total))
	for i := range cands {
		n -= weight(cands[i])
		if n < 0 {
			return &cands[i], nil
		}
	}
	return &cands[len(cands)-1], nil
}

func weight(l ferry.LinkedHub) int {
	if l.AllocationWeight <= 0 {
		return 1
	}
	return l.AllocationWeight
}

// errKeyChanged fails a registration whose group no longer holds the key
// the device signed with.
var errKeyChanged = ferry.Errorf(ferry.EUNAUTHORIZED, "The enrollment's keys changed.")

// derives reports whether a symmetric-key group's primary or secondary key
// derives the device key dk.
func derives(a ferry.Attestation, regID, dk string) bool {
	if a.Type != ferry.AttestSymmetricKey {
		return false
	}
	for _, gk := range []string{a.PrimaryKey, a.SecondaryKey} {
		if gk == "" {
			continue
		}
		if k, err := sas.DeriveDeviceKey(gk, regID); err == nil && k == dk {
			return true
		}
	}
	return false
}

// deriveBoth returns the device keys derived from a group's primary and
// secondary keys; the one that attested the device is used if the other is
// missing.
func deriveBoth(a ferry.Attestation, regID, used string) (string, string) {
	p, s := used, used
	if a.PrimaryKey != "" {
		if k, err := sas.DeriveDeviceKey(a.PrimaryKey, regID); err == nil {
			p = k
		}
	}
	if a.SecondaryKey != "" {
		if k, err := sas.DeriveDeviceKey(a.SecondaryKey, regID); err == nil {
			s = k
		}
	}
	return p, s
}
