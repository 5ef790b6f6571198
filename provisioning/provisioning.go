// Package provisioning is the device side of Ferry's Device Provisioning
// Service over MQTT: it authenticates registrations (symmetric keys, with
// group-derived keys for enrollment groups, or X.509 certificates),
// allocates a linked hub, creates or updates the device identity there and
// answers with DPS's 200 assigned (at once when the assignment is quick) or
// 202 assigning / poll / 200 assigned flow, byte for byte as the Azure IoT
// device SDKs expect.
package provisioning

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
	Hubs   ferry.HubService // told about identities it creates or changes; nil: nobody
	Bus    ferry.EventBus   // registered and provisioned events; nil: none
	Logger *slog.Logger
	Now    func() time.Time
	// RetryAfter is the retry-after of a 202 answer (default 1 s; whole seconds).
	RetryAfter time.Duration
	// OperationTTL is how long a finished operation can be polled (default 10 min).
	OperationTTL time.Duration
	// AssignWait is how long a register request waits for its assignment
	// before it answers 202 assigning and leaves the device to poll
	// (default 2 s). Within it the device gets 200 assigned at once, which
	// the SDKs accept and which saves them the retry-after wait. A negative
	// value always answers 202, as Ferry did before.
	AssignWait time.Duration
}

// Service is the device side of every provisioning service in the process.
type Service struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	ops   map[string]*operation // operation ID -> outcome, for operations answered 202
	swept time.Time             // when expired operations were last dropped
	wg    sync.WaitGroup        // assignments in flight

	commits *committer // the registrations' writes, batched
	scopes  scopeCache // services and their groups, for authentication
	hubs    hubCache   // the hubs devices are assigned to
}

var (
	_ mqttgw.DeviceProvisioner  = (*Service)(nil)
	_ ferry.ProvisioningChanged = (*Service)(nil)
)

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("provisioning: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.OperationTTL <= 0 {
		cfg.OperationTTL = 10 * time.Minute
	}
	if cfg.AssignWait == 0 {
		cfg.AssignWait = 2 * time.Second
	}
	return &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, ops: map[string]*operation{}, commits: &committer{st: cfg.Store}}, nil
}

// Close waits for the assignments still in flight (those answered 202).
func (s *Service) Close() error {
	s.wg.Wait()
	return nil
}

// NewIDScope returns a fresh ID scope in DPS's shape: "0ne" and eight
// upper-case hex digits, such as 0ne0012AB34.
func NewIDScope() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "0ne" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// ServiceChanged implements ferry.ProvisioningChanged: the service and
// its enrollment groups are read again for the next session.
func (s *Service) ServiceChanged(ctx context.Context, serviceID string) error {
	s.scopes.drop(serviceID)
	return nil
}

// ValidRegistrationID reports whether id is a DPS registration ID: up to
// 128 characters of letters, digits, '.', '_' and '-', not starting or
// ending with a special character.
func ValidRegistrationID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if alnum {
			continue
		}
		if (c == '.' || c == '_' || c == '-') && i > 0 && i < len(id)-1 {
			continue
		}
		return false
	}
	return true
}

// enrollment is what admitted a device: a group or an individual enrollment.
type enrollment struct {
	group *ferry.EnrollmentGroup
	indiv *ferry.IndividualEnrollment
	key   string // the device's symmetric key, for symmetric attestation
}

func (e *enrollment) status() ferry.EnrollmentStatus {
	if e.group != nil {
		return e.group.Status
	}
	return e.indiv.Status
}

func (e *enrollment) attestation() ferry.Attestation {
	if e.group != nil {
		return e.group.Attestation
	}
	return e.indiv.Attestation
}

var errUnauthorized = ferry.Errorf(ferry.EUNAUTHORIZED, "not authorized")

// ConnectRegistration authenticates a DPS session: the ID scope names the
// service, and a SAS or client certificate must match an enrollment.
func (s *Service) ConnectRegistration(ctx context.Context, req *mqttgw.ConnectRequest) (mqttgw.Session, error) {
	u := req.Username
	if req.ClientID != u.RegistrationID || !ValidRegistrationID(u.RegistrationID) {
		return nil, errUnauthorized
	}
	svc, groups := s.scopes.get(u.IDScope)
	if svc == nil {
		var err error
		svc, err = s.cfg.Store.GetProvisioningServiceByScope(ctx, u.IDScope)
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return nil, errUnauthorized
		}
		if err != nil {
			return nil, fmt.Errorf("provisioning: connect: %w", err)
		}
		s.scopes.putService(u.IDScope, svc)
	}
	var (
		en  *enrollment
		err error
	)
	if req.HasPassword {
		en, err = s.attestSAS(ctx, svc, groups, u, req.Password)
	} else {
		en, err = s.attestX509(ctx, svc, u.RegistrationID, req.PeerCertificates)
	}
	if err != nil {
		return nil, err
	}
	return &session{s: s, svc: svc, regID: u.RegistrationID, en: en, conn: req.Conn, key: "d\x00" + ferry.NewUUID(),
		opPfx: "4." + strings.ReplaceAll(svc.ID, "-", "")[:16] + "."}, nil
}

// attestSAS finds the enrollment whose key (or derived key) signed the token.
// cached are the service's groups as read a moment ago, or nil: a device
// that matches none of them is matched against the groups in the store.
// (A group matched from the cache is read again, and the key checked again,
// by the registration: see session.reload.)
func (s *Service) attestSAS(ctx context.Context, svc *ferry.ProvisioningService, cached []*ferry.EnrollmentGroup, u mqttgw.Username, password string) (*enrollment, error) {
	tok, err := sas.Parse(password)
	if err != nil {
		return nil, errUnauthorized
	}
	if !sas.ResourceCovers(tok.SignedResource, u.IDScope+"/registrations/"+u.RegistrationID) {
		return nil, errUnauthorized
	}
	now := s.now()
	ie, err := s.cfg.Store.GetIndividualEnrollment(ctx, svc.ID, u.RegistrationID)
	switch {
	case err == nil:
		if ie.Attestation.Type != ferry.AttestSymmetricKey {
			return nil, errUnauthorized
		}
		for _, k := range []string{ie.Attestation.PrimaryKey, ie.Attestation.SecondaryKey} {
			if k != "" && sas.Verify(tok, k, now) == nil {
				return &enrollment{indiv: ie, key: k}, nil
			}
		}
		return nil, errUnauthorized // an individual enrollment takes precedence over groups
	case !ferry.IsCode(err, ferry.ENOTFOUND):
		return nil, fmt.Errorf("provisioning: attest: %w", err)
	}
	if en := matchGroup(cached, tok, u.RegistrationID, now); en != nil {
		return en, nil
	}
	groups, err := s.groups(ctx, svc.ID)
	if err != nil {
		return nil, err
	}
	s.scopes.putGroups(u.IDScope, svc, groups)
	if en := matchGroup(groups, tok, u.RegistrationID, now); en != nil {
		return en, nil
	}
	return nil, errUnauthorized
}

// matchGroup returns the first symmetric-key group one of whose keys
// derives the key that signed tok, or nil.
func matchGroup(groups []*ferry.EnrollmentGroup, tok sas.Token, regID string, now time.Time) *enrollment {
	for _, g := range groups {
		if g.Attestation.Type != ferry.AttestSymmetricKey {
			continue
		}
		for _, gk := range []string{g.Attestation.PrimaryKey, g.Attestation.SecondaryKey} {
			if gk == "" {
				continue
			}
			dk, err := sas.DeriveDeviceKey(gk, regID)
			if err != nil {
				continue
			}
			if sas.Verify(tok, dk, now) == nil {
				return &enrollment{group: g, key: dk}
			}
		}
	}
	return nil
}

func (s *Service) groups(ctx context.Context, serviceID string) ([]*ferry.EnrollmentGroup, error) {
	var out []*ferry.EnrollmentGroup
	opt := ferry.ListOptions{}
	for {
		p, err := s.cfg.Store.ListEnrollmentGroups(ctx, ferry.EnrollmentFilter{ServiceID: serviceID, ListOptions: opt})
		if err != nil {
			return nil, fmt.Errorf("provisioning: list groups: %w", err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		opt.After = p.Next
	}
}

// attestX509 matches a client certificate to an individual enrollment
// (thumbprint or certificate) or to a group whose verified CA or signing
// certificate it chains to. The leaf CN must be the registration ID.
func (s *Service) attestX509(ctx context.Context, svc *ferry.ProvisioningService, regID string, chain []*x509.Certificate) (*enrollment, error) {
	if len(chain) == 0 {
		return nil, errUnauthorized
	}
	leaf := chain[0]
	now := s.now()
	if leaf.Subject.CommonName != regID || now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, errUnauthorized
	}
	t1, t256 := pki.ThumbprintSHA1(leaf), pki.ThumbprintSHA256(leaf)
	ie, err := s.cfg.Store.GetIndividualEnrollment(ctx, svc.ID, regID)
	switch {
	case err == nil:
		a := ie.Attestation
		if a.Type != ferry.AttestX509 {
			return nil, errUnauthorized
		}
		for _, want := range []string{a.PrimaryThumbprint, a.SecondaryThumbprint} {
			if n, err := pki.NormalizeThumbprint(want); err == nil && want != "" && (n == t1 || n == t256) {
				return &enrollment{indiv: ie}, nil
			}
		}
		for _, der := range [][]byte{a.PrimaryCertificate, a.SecondaryCertificate} {
			if len(der) > 0 && string(der) == string(leaf.Raw) {
				return &enrollment{indiv: ie}, nil
			}
		}
		return nil, errUnauthorized
	case !ferry.IsCode(err, ferry.ENOTFOUND):
		return nil, fmt.Errorf("provisioning: attest: %w", err)
	}
	groups, err := s.groups(ctx, svc.ID)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, g := range groups {
		a := g.Attestation
		if a.Type != ferry.AttestX509 {
			continue
		}
		roots := x509.NewCertPool()
		n := 0
		if a.CAName != "" {
			ca, err := s.cfg.Store.GetProvisioningCA(ctx, svc.ID, a.CAName)
			if err == nil && ca.Verified {
				if c, err := x509.ParseCertificate(ca.DER); err == nil {
					roots.AddCert(c)
					n++
				}
			}
		}
		for _, der := range [][]byte{a.PrimaryCertificate, a.SecondaryCertificate} {
			if c, err := x509.ParseCertificate(der); err == nil && len(der) > 0 {
				roots.AddCert(c)
				n++
			}
		}
		if n == 0 {
			continue
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			return &enrollment{group: g}, nil
		}
	}
	return nil, errUnauthorized
}

// VerifyCA completes the proof of possession of a provisioning CA: the
// verification certificate must carry the CA's verification code as its CN
// and be signed by the CA's key. The CA is then marked verified.
func (s *Service) VerifyCA(ctx context.Context, serviceID, name string, verificationCertDER []byte) (*ferry.ProvisioningCA, error) {
	ca, err := s.cfg.Store.GetProvisioningCA(ctx, serviceID, name)
	if err != nil {
		return nil, fmt.Errorf("provisioning: verify CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(ca.DER)
	if err != nil {
		return nil, ferry.WrapError(ferry.EINVALID, "The CA certificate cannot be parsed.", err)
	}
	vc, err := x509.ParseCertificate(verificationCertDER)
	if err != nil {
		return nil, ferry.WrapError(ferry.EINVALID, "The verification certificate cannot be parsed.", err)
	}
	if ca.VerificationCode == "" {
		return nil, ferry.Errorf(ferry.EPRECONDITION, "Generate a verification code first.")
	}
	if err := pki.CheckVerificationCert(caCert, vc, ca.VerificationCode); err != nil {
		return nil, err
	}
	ca.Verified = true
	ca.VerificationCode = ""
	ca.UpdatedAt = s.now().UTC()
	if err := s.cfg.Store.PutProvisioningCA(ctx, ca, ca.ETag); err != nil {
		return nil, fmt.Errorf("provisioning: verify CA: %w", err)
	}
	return ca, nil
}
