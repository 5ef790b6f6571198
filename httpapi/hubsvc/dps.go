package hubsvc

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/jobs"
)

// attestationJSON is a DPS attestation mechanism.
type attestationJSON struct {
	Type         string            `json:"type"`
	SymmetricKey *symmetricKeyJSON `json:"symmetricKey,omitempty"`
	X509         *x509JSON         `json:"x509,omitempty"`
	TPM          json.RawMessage   `json:"tpm,omitempty"`
}

type x509JSON struct {
	ClientCertificates  *certPairJSON `json:"clientCertificates,omitempty"`
	SigningCertificates *certPairJSON `json:"signingCertificates,omitempty"`
	CAReferences        *caRefsJSON   `json:"caReferences,omitempty"`
}

type certPairJSON struct {
	Primary   *certJSON `json:"primary,omitempty"`
	Secondary *certJSON `json:"secondary,omitempty"`
}

type certJSON struct {
	Certificate string        `json:"certificate,omitempty"`
	Info        *certInfoJSON `json:"info,omitempty"`
}

type certInfoJSON struct {
	SubjectName      string `json:"subjectName"`
	SHA1Thumbprint   string `json:"sha1Thumbprint"`
	SHA256Thumbprint string `json:"sha256Thumbprint"`
	IssuerName       string `json:"issuerName"`
	NotBeforeUTC     string `json:"notBeforeUtc"`
	NotAfterUTC      string `json:"notAfterUtc"`
	SerialNumber     string `json:"serialNumber"`
	Version          int    `json:"version"`
}

type caRefsJSON struct {
	Primary   string `json:"primary,omitempty"`
	Secondary string `json:"secondary,omitempty"`
}

type initialTwinJSON struct {
	Tags       map[string]any `json:"tags,omitempty"`
	Properties *struct {
		Desired map[string]any `json:"desired,omitempty"`
	} `json:"properties,omitempty"`
}

type reprovisionJSON struct {
	UpdateHubAssignment *bool `json:"updateHubAssignment,omitempty"`
	MigrateDeviceData   *bool `json:"migrateDeviceData,omitempty"`
}

// enrollmentJSON is an enrollment group or an individual enrollment in the
// DPS service API's shape (the two share most members).
type enrollmentJSON struct {
	EnrollmentGroupID  string            `json:"enrollmentGroupId,omitempty"`
	RegistrationID     string            `json:"registrationId,omitempty"`
	DeviceID           string            `json:"deviceId,omitempty"`
	RegistrationState  *registrationJSON `json:"registrationState,omitempty"`
	Attestation        *attestationJSON  `json:"attestation"`
	Capabilities       *capabilityJSON   `json:"capabilities,omitempty"`
	IoTHubHostName     string            `json:"iotHubHostName,omitempty"`
	InitialTwin        *initialTwinJSON  `json:"initialTwin,omitempty"`
	ETag               string            `json:"etag,omitempty"`
	ProvisioningStatus string            `json:"provisioningStatus,omitempty"`
	ReprovisionPolicy  *reprovisionJSON  `json:"reprovisionPolicy,omitempty"`
	CreatedDateTimeUTC string            `json:"createdDateTimeUtc,omitempty"`
	LastUpdatedUTC     string            `json:"lastUpdatedDateTimeUtc,omitempty"`
	AllocationPolicy   string            `json:"allocationPolicy,omitempty"`
	IoTHubs            []string          `json:"iotHubs,omitempty"`
	CustomAllocation   json.RawMessage   `json:"customAllocationDefinition,omitempty"`
}

// registrationJSON is a device registration state.
type registrationJSON struct {
	RegistrationID     string          `json:"registrationId"`
	CreatedDateTimeUTC string          `json:"createdDateTimeUtc,omitempty"`
	AssignedHub        string          `json:"assignedHub,omitempty"`
	DeviceID           string          `json:"deviceId,omitempty"`
	Status             string          `json:"status"`
	Substatus          string          `json:"substatus,omitempty"`
	ErrorCode          int             `json:"errorCode,omitempty"`
	ErrorMessage       string          `json:"errorMessage,omitempty"`
	LastUpdatedUTC     string          `json:"lastUpdatedDateTimeUtc,omitempty"`
	ETag               string          `json:"etag,omitempty"`
	Payload            json.RawMessage `json:"payload,omitempty"`
}

func registrationOut(r *ferry.RegistrationRecord) *registrationJSON {
	return &registrationJSON{
		RegistrationID: r.RegistrationID, CreatedDateTimeUTC: timeString(r.CreatedAt), AssignedHub: r.AssignedHub,
		DeviceID: r.DeviceID, Status: string(r.Status), Substatus: r.Substatus, ErrorCode: r.ErrorCode,
		ErrorMessage: r.ErrorMessage, LastUpdatedUTC: timeString(r.UpdatedAt), ETag: r.ETag, Payload: r.Payload,
	}
}

// parseCert reads a certificate given as PEM or as base64 DER.
func parseCert(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		der = blk.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, ferry.Errorf(ferry.EINVALID, "A certificate must be PEM or base64 DER.")
		}
		der = b
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, ferry.WrapError(ferry.EINVALID, "The certificate could not be parsed.", err)
	}
	return der, nil
}

func certInfo(der []byte) *certJSON {
	if len(der) == 0 {
		return nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	return &certJSON{Info: &certInfoJSON{
		SubjectName: c.Subject.String(), IssuerName: c.Issuer.String(),
		SHA1Thumbprint: strings.ToUpper(hex.EncodeToString(s1[:])), SHA256Thumbprint: strings.ToUpper(hex.EncodeToString(s256[:])),
		NotBeforeUTC: timeString(c.NotBefore), NotAfterUTC: timeString(c.NotAfter),
		SerialNumber: strings.ToUpper(c.SerialNumber.Text(16)), Version: c.Version,
	}}
}

func thumbprint256(der []byte) string {
	if len(der) == 0 {
		return ""
	}
	s := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// attestationIn validates an attestation; group says whether it belongs to
// an enrollment group (signing certificates or CA references) or an
// individual enrollment (client certificates).
func (s *server) attestationIn(r *http.Request, ps *ferry.ProvisioningService, in *attestationJSON, group bool, old *ferry.Attestation) (ferry.Attestation, error) {
	if in == nil {
		return ferry.Attestation{}, ferry.Errorf(ferry.EINVALID, "An enrollment needs an attestation.")
	}
	a := ferry.Attestation{Type: ferry.AttestationType(in.Type)}
	switch a.Type {
	case ferry.AttestSymmetricKey:
		var p, sk string
		if in.SymmetricKey != nil {
			p, sk = str(in.SymmetricKey.PrimaryKey), str(in.SymmetricKey.SecondaryKey)
		}
		if old != nil && old.Type == ferry.AttestSymmetricKey {
			if p == "" {
				p = old.PrimaryKey
			}
			if sk == "" {
				sk = old.SecondaryKey
			}
		}
		if p == "" {
			p = ferry.NewKey(64)
		}
		if sk == "" {
			sk = ferry.NewKey(64)
		}
		for _, k := range []string{p, sk} {
			if err := validKey(k); err != nil {
				return a, err
			}
		}
		a.PrimaryKey, a.SecondaryKey = p, sk
	case ferry.AttestX509:
		if in.X509 == nil {
			return a, ferry.Errorf(ferry.EINVALID, "An x509 attestation needs certificates or CA references.")
		}
		pair := in.X509.ClientCertificates
		if group {
			pair = in.X509.SigningCertificates
			if in.X509.ClientCertificates != nil {
				return a, ferry.Errorf(ferry.EINVALID, "An enrollment group takes signing certificates or CA references, not client certificates.")
			}
			if refs := in.X509.CAReferences; refs != nil && refs.Primary != "" {
				if _, err := s.cfg.Store.GetProvisioningCA(r.Context(), ps.ID, refs.Primary); err != nil {
					if ferry.IsCode(err, ferry.ENOTFOUND) {
						return a, ferry.Errorf(ferry.EINVALID, "The CA %q is not registered with the provisioning service.", refs.Primary)
					}
					return a, fmt.Errorf("check CA reference: %w", err)
				}
				a.CAName = refs.Primary
			}
		} else if in.X509.SigningCertificates != nil || in.X509.CAReferences != nil {
			return a, ferry.Errorf(ferry.EINVALID, "An individual enrollment takes client certificates.")
		}
		if pair != nil && pair.Primary != nil && pair.Primary.Certificate != "" {
			der, err := parseCert(pair.Primary.Certificate)
			if err != nil {
				return a, err
			}
			a.PrimaryCertificate = der
		}
		if pair != nil && pair.Secondary != nil && pair.Secondary.Certificate != "" {
			der, err := parseCert(pair.Secondary.Certificate)
			if err != nil {
				return a, err
			}
			a.SecondaryCertificate = der
		}
		if old != nil && old.Type == ferry.AttestX509 && a.PrimaryCertificate == nil && a.CAName == "" {
			// The service returns certificate info, not the certificate;
			// an SDK that writes back what it read keeps the old one.
			a.PrimaryCertificate, a.SecondaryCertificate, a.CAName = old.PrimaryCertificate, old.SecondaryCertificate, old.CAName
		}
		if a.PrimaryCertificate == nil && a.CAName == "" {
			return a, ferry.Errorf(ferry.EINVALID, "An x509 attestation needs a primary certificate or a CA reference.")
		}
		if !group {
			a.PrimaryThumbprint, a.SecondaryThumbprint = thumbprint256(a.PrimaryCertificate), thumbprint256(a.SecondaryCertificate)
		}
	case ferry.AttestTPM:
		return a, ferry.Errorf(ferry.EINVALID, "TPM attestation is not supported.")
	default:
		return a, ferry.Errorf(ferry.EINVALID, "The attestation type must be symmetricKey or x509.")
	}
	return a, nil
}

// attestationOut renders an attestation; keys only when withKeys is set.
func attestationOut(a ferry.Attestation, group, withKeys bool) *attestationJSON {
	out := &attestationJSON{Type: string(a.Type)}
	switch a.Type {
	case ferry.AttestSymmetricKey:
		out.SymmetricKey = &symmetricKeyJSON{}
		if withKeys {
			out.SymmetricKey = &symmetricKeyJSON{PrimaryKey: strp(a.PrimaryKey), SecondaryKey: strp(a.SecondaryKey)}
		}
	case ferry.AttestX509:
		out.X509 = &x509JSON{}
		pair := &certPairJSON{Primary: certInfo(a.PrimaryCertificate), Secondary: certInfo(a.SecondaryCertificate)}
		switch {
		case group && a.CAName != "":
			out.X509.CAReferences = &caRefsJSON{Primary: a.CAName}
		case group:
			out.X509.SigningCertificates = pair
		default:
			out.X509.ClientCertificates = pair
		}
	}
	return out
}

// commonIn validates the members groups and individual enrollments share.
func commonIn(ps *ferry.ProvisioningService, in *enrollmentJSON) (status ferry.EnrollmentStatus, policy ferry.AllocationPolicy, hubs []string, rp ferry.ReprovisionPolicy, twin ferry.InitialTwin, err error) {
	status = ferry.EnrollmentStatus(in.ProvisioningStatus)
	switch status {
	case "":
		status = ferry.EnrollmentEnabled
	case ferry.EnrollmentEnabled, ferry.EnrollmentDisabled:
	default:
		return status, policy, hubs, rp, twin, ferry.Errorf(ferry.EINVALID, "provisioningStatus must be enabled or disabled.")
	}
	policy = ferry.AllocationPolicy(in.AllocationPolicy)
	switch policy {
	case "", ferry.AllocationHashed, ferry.AllocationGeoLatency, ferry.AllocationStatic:
	case "custom":
		return status, policy, hubs, rp, twin, ferry.Errorf(ferry.EINVALID, "Custom allocation is not supported.")
	default:
		return status, policy, hubs, rp, twin, ferry.Errorf(ferry.EINVALID, "allocationPolicy must be hashed, geoLatency or static.")
	}
	hubs = in.IoTHubs
	if len(hubs) == 0 && in.IoTHubHostName != "" {
		hubs = []string{in.IoTHubHostName}
	}
	for i, h := range hubs {
		found := false
		for _, l := range ps.LinkedHubs {
			if strings.EqualFold(l.HostName, h) {
				hubs[i], found = l.HostName, true
			}
		}
		if !found {
			return status, policy, hubs, rp, twin, ferry.Errorf(ferry.EINVALID, "The hub %s is not linked to the provisioning service.", h)
		}
	}
	if policy == ferry.AllocationStatic && len(hubs) != 1 {
		return status, policy, hubs, rp, twin, ferry.Errorf(ferry.EINVALID, "Static allocation needs exactly one hub in iotHubs.")
	}
	rp = ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}
	if in.ReprovisionPolicy != nil {
		if v := in.ReprovisionPolicy.UpdateHubAssignment; v != nil {
			rp.UpdateHubAssignment = *v
		}
		if v := in.ReprovisionPolicy.MigrateDeviceData; v != nil {
			rp.MigrateDeviceData = *v
		}
	}
	if in.InitialTwin != nil {
		twin.Tags = in.InitialTwin.Tags
		if in.InitialTwin.Properties != nil {
			twin.Desired = jobs.StripMeta(in.InitialTwin.Properties.Desired)
		}
		for _, m := range []map[string]any{twin.Tags, twin.Desired} {
			if err := jobs.CheckTwinKeys(m); err != nil {
				return status, policy, hubs, rp, twin, err
			}
		}
	}
	return status, policy, hubs, rp, twin, nil
}

func commonOut(out *enrollmentJSON, status ferry.EnrollmentStatus, policy ferry.AllocationPolicy, hubs []string, rp ferry.ReprovisionPolicy, twin ferry.InitialTwin, edge bool) {
	out.ProvisioningStatus = string(status)
	out.AllocationPolicy = string(policy)
	out.IoTHubs = hubs
	u, m := rp.UpdateHubAssignment, rp.MigrateDeviceData
	out.ReprovisionPolicy = &reprovisionJSON{UpdateHubAssignment: &u, MigrateDeviceData: &m}
	out.Capabilities = &capabilityJSON{IoTEdge: edge}
	if twin.Tags != nil || twin.Desired != nil {
		it := &initialTwinJSON{Tags: twin.Tags}
		if twin.Desired != nil {
			it.Properties = &struct {
				Desired map[string]any `json:"desired,omitempty"`
			}{Desired: twin.Desired}
		}
		out.InitialTwin = it
	}
}

func groupOut(g *ferry.EnrollmentGroup, withKeys bool) enrollmentJSON {
	out := enrollmentJSON{EnrollmentGroupID: g.ID, Attestation: attestationOut(g.Attestation, true, withKeys), ETag: g.ETag,
		CreatedDateTimeUTC: timeString(g.CreatedAt), LastUpdatedUTC: timeString(g.UpdatedAt)}
	commonOut(&out, g.Status, g.AllocationPolicy, g.IoTHubs, g.ReprovisionPolicy, g.InitialTwin, g.IoTEdge)
	return out
}

func enrollmentOut(e *ferry.IndividualEnrollment, reg *ferry.RegistrationRecord, withKeys bool) enrollmentJSON {
	out := enrollmentJSON{RegistrationID: e.RegistrationID, DeviceID: e.DeviceID, Attestation: attestationOut(e.Attestation, false, withKeys),
		ETag: e.ETag, CreatedDateTimeUTC: timeString(e.CreatedAt), LastUpdatedUTC: timeString(e.UpdatedAt)}
	if reg != nil {
		out.RegistrationState = registrationOut(reg)
	}
	commonOut(&out, e.Status, e.AllocationPolicy, e.IoTHubs, e.ReprovisionPolicy, e.InitialTwin, e.IoTEdge)
	return out
}

// validEnrollmentID applies the rule the device side (package
// provisioning) applies to registration IDs, to group IDs as well: up to 128
// letters, digits, '.', '_' and '-', not starting or ending with a special
// character. An enrollment the device side would refuse is refused here.
func validEnrollmentID(id string) error {
	if id == "" || len(id) > 128 {
		return ferry.Errorf(ferry.EINVALID, "An ID has 1 to 128 characters.")
	}
	for i, c := range []byte(id) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && !(strings.IndexByte("-._", c) >= 0 && i > 0 && i < len(id)-1) {
			return ferry.Errorf(ferry.EINVALID, "The ID %q holds a character DPS does not allow.", id)
		}
	}
	return nil
}

func enrollmentErr(what, id string, err error) error {
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		return dpsErr(http.StatusNotFound, 404201, ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("%s %s not found.", what, id), err))
	case ferry.IsCode(err, ferry.EPRECONDITION):
		return dpsErr(http.StatusPreconditionFailed, 412201, ferry.WrapError(ferry.EPRECONDITION, "The etag does not match.", err))
	}
	return err
}

func (s *server) serviceChanged(r *http.Request, ps *ferry.ProvisioningService) error {
	if s.cfg.Provisioning == nil {
		return nil
	}
	if err := s.cfg.Provisioning.ServiceChanged(r.Context(), ps.ID); err != nil {
		return fmt.Errorf("reload provisioning service: %w", err)
	}
	return nil
}

func (s *server) putGroup(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	if err := validEnrollmentID(id); err != nil {
		return err
	}
	var in enrollmentJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.EnrollmentGroupID != "" && !strings.EqualFold(in.EnrollmentGroupID, id) {
		return ferry.Errorf(ferry.EINVALID, "The enrollmentGroupId in the body does not match the one in the URI.")
	}
	ctx := r.Context()
	old, err := s.cfg.Store.GetEnrollmentGroup(ctx, ps.ID, id)
	if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return fmt.Errorf("put enrollment group: %w", err)
	}
	match := ifMatch(r)
	if match == "" && in.ETag != "" {
		match = in.ETag
	}
	var oldAtt *ferry.Attestation
	now := s.now()
	g := &ferry.EnrollmentGroup{ServiceID: ps.ID, ID: id, CreatedAt: now, UpdatedAt: now}
	if old != nil {
		oldAtt, g.ID, g.CreatedAt = &old.Attestation, old.ID, old.CreatedAt
	} else if match != "" && match != "*" {
		return enrollmentErr("Enrollment group", id, ferry.Errorf(ferry.ENOTFOUND, "not found"))
	}
	if g.Attestation, err = s.attestationIn(r, ps, in.Attestation, true, oldAtt); err != nil {
		return err
	}
	if g.Status, g.AllocationPolicy, g.IoTHubs, g.ReprovisionPolicy, g.InitialTwin, err = commonIn(ps, &in); err != nil {
		return err
	}
	if in.Capabilities != nil {
		g.IoTEdge = in.Capabilities.IoTEdge
	}
	storeMatch := ""
	if old != nil {
		storeMatch = old.ETag
		if !ferry.ETagMatches(match, old.ETag) {
			return enrollmentErr("Enrollment group", id, ferry.Errorf(ferry.EPRECONDITION, "etag mismatch"))
		}
	}
	if err := s.cfg.Store.PutEnrollmentGroup(ctx, g, storeMatch); err != nil {
		return enrollmentErr("Enrollment group", id, err)
	}
	if err := s.serviceChanged(r, ps); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g.ETag, groupOut(g, true))
}

func (s *server) getGroup(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	g, err := s.cfg.Store.GetEnrollmentGroup(r.Context(), ps.ID, id)
	if err != nil {
		return enrollmentErr("Enrollment group", id, err)
	}
	return writeJSON(w, http.StatusOK, g.ETag, groupOut(g, true))
}

func (s *server) groupAttestation(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	g, err := s.cfg.Store.GetEnrollmentGroup(r.Context(), ps.ID, id)
	if err != nil {
		return enrollmentErr("Enrollment group", id, err)
	}
	return writeJSON(w, http.StatusOK, "", attestationOut(g.Attestation, true, true))
}

func (s *server) deleteGroup(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	if err := s.cfg.Store.DeleteEnrollmentGroup(r.Context(), ps.ID, id, ifMatch(r)); err != nil {
		return enrollmentErr("Enrollment group", id, err)
	}
	if err := s.serviceChanged(r, ps); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// querySpec reads the body of a DPS query: {"query":"*"}. Only the query
// of everything is supported, as the SDKs send it.
func querySpec(r *http.Request) error {
	var in struct {
		Query string `json:"query"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	q := strings.TrimSpace(in.Query)
	if q != "*" && !strings.EqualFold(q, "SELECT * FROM enrollments") && !strings.EqualFold(q, "SELECT * FROM enrollmentGroups") {
		return ferry.Errorf(ferry.EINVALID, "Only the query \"*\" is supported.")
	}
	return nil
}

func (s *server) queryGroups(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	if err := querySpec(r); err != nil {
		return err
	}
	size, err := pageSize(r)
	if err != nil {
		return err
	}
	page, err := s.cfg.Store.ListEnrollmentGroups(r.Context(), ferry.EnrollmentFilter{ServiceID: ps.ID,
		ListOptions: ferry.ListOptions{After: r.Header.Get("x-ms-continuation"), Limit: size}})
	if err != nil {
		return continuationErr(err)
	}
	out := make([]enrollmentJSON, 0, len(page.Items))
	for _, g := range page.Items {
		out = append(out, groupOut(g, false))
	}
	return writePage(w, "enrollmentGroup", page.Next, out)
}

// writePage writes one page of a DPS query with its continuation token.
func writePage(w http.ResponseWriter, itemType, next string, v any) error {
	w.Header().Set("x-ms-item-type", itemType)
	if next != "" {
		w.Header().Set("x-ms-continuation", next)
	}
	return writeJSON(w, http.StatusOK, "", v)
}

func (s *server) putEnrollment(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	if err := validEnrollmentID(id); err != nil {
		return err
	}
	var in enrollmentJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.RegistrationID != "" && !strings.EqualFold(in.RegistrationID, id) {
		return ferry.Errorf(ferry.EINVALID, "The registrationId in the body does not match the one in the URI.")
	}
	if in.DeviceID != "" {
		if err := validDeviceID(in.DeviceID); err != nil {
			return err
		}
	}
	ctx := r.Context()
	old, err := s.cfg.Store.GetIndividualEnrollment(ctx, ps.ID, id)
	if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return fmt.Errorf("put enrollment: %w", err)
	}
	match := ifMatch(r)
	if match == "" && in.ETag != "" {
		match = in.ETag
	}
	now := s.now()
	e := &ferry.IndividualEnrollment{ServiceID: ps.ID, RegistrationID: strings.ToLower(id), DeviceID: in.DeviceID, CreatedAt: now, UpdatedAt: now}
	var oldAtt *ferry.Attestation
	if old != nil {
		oldAtt, e.RegistrationID, e.CreatedAt = &old.Attestation, old.RegistrationID, old.CreatedAt
	} else if match != "" && match != "*" {
		return enrollmentErr("Enrollment", id, ferry.Errorf(ferry.ENOTFOUND, "not found"))
	}
	if e.Attestation, err = s.attestationIn(r, ps, in.Attestation, false, oldAtt); err != nil {
		return err
	}
	if e.Status, e.AllocationPolicy, e.IoTHubs, e.ReprovisionPolicy, e.InitialTwin, err = commonIn(ps, &in); err != nil {
		return err
	}
	if in.Capabilities != nil {
		e.IoTEdge = in.Capabilities.IoTEdge
	}
	storeMatch := ""
	if old != nil {
		storeMatch = old.ETag
		if !ferry.ETagMatches(match, old.ETag) {
			return enrollmentErr("Enrollment", id, ferry.Errorf(ferry.EPRECONDITION, "etag mismatch"))
		}
	}
	if err := s.cfg.Store.PutIndividualEnrollment(ctx, e, storeMatch); err != nil {
		return enrollmentErr("Enrollment", id, err)
	}
	if err := s.serviceChanged(r, ps); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e.ETag, enrollmentOut(e, nil, true))
}

// enrollmentRegistration returns the registration record of an individual
// enrollment, or nil.
func (s *server) enrollmentRegistration(r *http.Request, ps *ferry.ProvisioningService, id string) (*ferry.RegistrationRecord, error) {
	reg, err := s.cfg.Store.GetRegistration(r.Context(), ps.ID, id)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get registration: %w", err)
	}
	if reg.EnrollmentGroupID != "" {
		return nil, nil
	}
	return reg, nil
}

func (s *server) getEnrollment(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	e, err := s.cfg.Store.GetIndividualEnrollment(r.Context(), ps.ID, id)
	if err != nil {
		return enrollmentErr("Enrollment", id, err)
	}
	reg, err := s.enrollmentRegistration(r, ps, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e.ETag, enrollmentOut(e, reg, true))
}

func (s *server) enrollmentAttestation(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	e, err := s.cfg.Store.GetIndividualEnrollment(r.Context(), ps.ID, id)
	if err != nil {
		return enrollmentErr("Enrollment", id, err)
	}
	return writeJSON(w, http.StatusOK, "", attestationOut(e.Attestation, false, true))
}

func (s *server) deleteEnrollment(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	if err := s.cfg.Store.DeleteIndividualEnrollment(r.Context(), ps.ID, id, ifMatch(r)); err != nil {
		return enrollmentErr("Enrollment", id, err)
	}
	if err := s.serviceChanged(r, ps); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) queryEnrollments(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	if err := querySpec(r); err != nil {
		return err
	}
	size, err := pageSize(r)
	if err != nil {
		return err
	}
	page, err := s.cfg.Store.ListIndividualEnrollments(r.Context(), ferry.EnrollmentFilter{ServiceID: ps.ID,
		ListOptions: ferry.ListOptions{After: r.Header.Get("x-ms-continuation"), Limit: size}})
	if err != nil {
		return continuationErr(err)
	}
	out := make([]enrollmentJSON, 0, len(page.Items))
	for _, e := range page.Items {
		out = append(out, enrollmentOut(e, nil, false))
	}
	return writePage(w, "enrollment", page.Next, out)
}

func (s *server) getRegistration(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	reg, err := s.cfg.Store.GetRegistration(r.Context(), ps.ID, id)
	if err != nil {
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return dpsErr(http.StatusNotFound, 404202, ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("Registration %s not found.", id), err))
		}
		return err
	}
	return writeJSON(w, http.StatusOK, reg.ETag, registrationOut(reg))
}

func (s *server) deleteRegistration(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	if err := s.cfg.Store.DeleteRegistration(r.Context(), ps.ID, id, ifMatch(r)); err != nil {
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return dpsErr(http.StatusNotFound, 404202, ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("Registration %s not found.", id), err))
		}
		return enrollmentErr("Registration", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// queryRegistrations serves POST /registrations/{groupId}/query: the
// registration states of an enrollment group's devices.
func (s *server) queryRegistrations(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error {
	id := r.PathValue("id")
	g, err := s.cfg.Store.GetEnrollmentGroup(r.Context(), ps.ID, id)
	if err != nil {
		return enrollmentErr("Enrollment group", id, err)
	}
	size, err := pageSize(r)
	if err != nil {
		return err
	}
	page, err := s.cfg.Store.ListRegistrations(r.Context(), ferry.EnrollmentFilter{ServiceID: ps.ID, EnrollmentGroupID: g.ID,
		ListOptions: ferry.ListOptions{After: r.Header.Get("x-ms-continuation"), Limit: size}})
	if err != nil {
		return continuationErr(err)
	}
	out := make([]*registrationJSON, 0, len(page.Items))
	for _, reg := range page.Items {
		out = append(out, registrationOut(reg))
	}
	return writePage(w, "deviceRegistration", page.Next, out)
}
