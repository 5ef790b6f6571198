package device

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/sas"
)

// DPSAPIVersion is the api-version the SDK sends to provisioning services.
const DPSAPIVersion = "2019-03-31"

// clientVersion identifies the SDK in usernames, as the Azure SDKs do.
const clientVersion = "ferry-device%2F1"

// ProvisionConfig says how a device registers with a provisioning service.
// Exactly one of SymmetricKey, GroupKey or Certificate is set.
type ProvisionConfig struct {
	// Host is the provisioning service's host name (or IP address), with an
	// optional ":port".
	Host string
	// IDScope selects the provisioning service instance.
	IDScope string
	// RegistrationID is the device's registration ID (its certificate's CN
	// with X.509).
	RegistrationID string
	// SymmetricKey is the device's own base64 key (individual enrollment, or
	// one already derived from a group key).
	SymmetricKey string
	// GroupKey is an enrollment group's base64 key; the device key is derived
	// from it with sas.DeriveDeviceKey.
	GroupKey string
	// Certificate is the device's X.509 certificate (chain) and key.
	Certificate *tls.Certificate
	// Payload is sent as the registration's custom payload (e.g.
	// {"modelId": "dtmi:…"}); nil sends none.
	Payload any
	// Transport says how to dial the service.
	Transport
	// TokenTTL is the lifetime of the registration SAS; 0: one hour.
	TokenTTL time.Duration
	// Timeout bounds the whole registration, polls included; 0: 60 s.
	Timeout time.Duration
}

// Registration is the outcome of a successful provisioning.
type Registration struct {
	RegistrationID    string
	AssignedHub       string // host name to connect to, possibly with a port
	DeviceID          string
	Status            string // "assigned"
	Substatus         string // initialAssignment, deviceDataMigrated, …
	EnrollmentGroupID string
	CreatedAt         time.Time
	LastUpdatedAt     time.Time
	ETag              string
	OperationID       string
	Payload           json.RawMessage // data returned by the service, if any
	// Key is the symmetric key the device authenticates with at the hub
	// (derived from the group key when one was given); "" with X.509.
	Key string
}

// deviceKey returns the key a symmetric-key device signs with.
func (c *ProvisionConfig) deviceKey() (string, error) {
	switch {
	case c.SymmetricKey != "":
		return c.SymmetricKey, nil
	case c.GroupKey != "":
		k, err := sas.DeriveDeviceKey(c.GroupKey, c.RegistrationID)
		if err != nil {
			return "", fmt.Errorf("provision: %w", err)
		}
		return k, nil
	}
	return "", nil
}

func (c *ProvisionConfig) validate() error {
	n := 0
	for _, set := range []bool{c.SymmetricKey != "", c.GroupKey != "", c.Certificate != nil} {
		if set {
			n++
		}
	}
	switch {
	case c.Host == "":
		return ferry.Errorf(ferry.EINVALID, "provision: a provisioning host is required")
	case c.IDScope == "":
		return ferry.Errorf(ferry.EINVALID, "provision: an ID scope is required")
	case c.RegistrationID == "":
		return ferry.Errorf(ferry.EINVALID, "provision: a registration ID is required")
	case n != 1:
		return ferry.Errorf(ferry.EINVALID, "provision: set exactly one of a symmetric key, a group key or a certificate")
	}
	return nil
}

// dpsState is registrationState in a DPS answer.
type dpsState struct {
	RegistrationID string          `json:"registrationId"`
	AssignedHub    string          `json:"assignedHub"`
	DeviceID       string          `json:"deviceId"`
	Status         string          `json:"status"`
	Substatus      string          `json:"substatus"`
	CreatedAt      time.Time       `json:"createdDateTimeUtc"`
	LastUpdatedAt  time.Time       `json:"lastUpdatedDateTimeUtc"`
	ETag           string          `json:"etag"`
	ErrorCode      int             `json:"errorCode"`
	ErrorMessage   string          `json:"errorMessage"`
	Payload        json.RawMessage `json:"payload"`
	X509           *struct {
		EnrollmentGroupID string `json:"enrollmentGroupId"`
	} `json:"x509"`
	SymmetricKey *struct {
		EnrollmentGroupID string `json:"enrollmentGroupId"`
	} `json:"symmetricKey"`
}

type dpsAnswer struct {
	OperationID       string    `json:"operationId"`
	Status            string    `json:"status"`
	RegistrationState *dpsState `json:"registrationState"`
}

type dpsMsg struct {
	res  response
	body []byte
}

// Provision registers a device with a provisioning service over MQTT
// (reference: DPS over MQTT): it subscribes to the response topic, sends
// iotdps-register, polls iotdps-get-operationstatus as long as the service
// answers 202 or 429 and more, honouring retry-after, and returns the
// assignment. Returns EINVALID for a bad config; EUNAUTHORIZED, EFORBIDDEN,
// ENOTFOUND or EINVALID when the service refuses the device; ETIMEOUT when
// no assignment arrives in time.
func Provision(ctx context.Context, cfg ProvisionConfig) (*Registration, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key, err := cfg.deviceKey()
	if err != nil {
		return nil, err
	}
	resource := cfg.IDScope + "/registrations/" + cfg.RegistrationID
	opts := cfg.Transport.options(cfg.Host, cfg.Certificate).
		SetClientID(cfg.RegistrationID).
		SetUsername(resource + "/api-version=" + DPSAPIVersion + "&ClientVersion=" + clientVersion).
		SetCleanSession(true)
	if key != "" {
		ttl := cfg.TokenTTL
		if ttl == 0 {
			ttl = time.Hour
		}
		tok, err := sas.Sign(resource, key, "registration", time.Now().Add(ttl))
		if err != nil {
			return nil, fmt.Errorf("provision: %w", err)
		}
		opts.SetPassword(tok)
	}
	msgs := make(chan dpsMsg, 4)
	lost := make(chan error, 1)
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		r, err := parseResponse(m.Topic(), "$dps/registrations/res/")
		if err != nil {
			return
		}
		select {
		case msgs <- dpsMsg{res: r, body: m.Payload()}:
		default:
		}
	})
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	c := paho.NewClient(opts)
	if err := connectErr(ctx, c.Connect(), cfg.dialTimeout()); err != nil {
		return nil, fmt.Errorf("provision %s at %s: %w", cfg.RegistrationID, cfg.Host, err)
	}
	defer c.Disconnect(0)
	if err := wait(ctx, c.Subscribe("$dps/registrations/res/#", 1, nil), cfg.dialTimeout()); err != nil {
		return nil, fmt.Errorf("provision: subscribe: %w", err)
	}
	body := map[string]any{"registrationId": cfg.RegistrationID}
	if cfg.Payload != nil {
		body["payload"] = cfg.Payload
	}
	reg, _ := json.Marshal(body)
	topic := "$dps/registrations/PUT/iotdps-register/?$rid="
	payload := reg
	for {
		rid := newRID()
		if err := wait(ctx, c.Publish(topic+rid, 1, false, payload), cfg.dialTimeout()); err != nil {
			return nil, fmt.Errorf("provision: publish: %w", err)
		}
		var m dpsMsg
	recv:
		for {
			select {
			case m = <-msgs:
				if m.res.RID == rid {
					break recv
				}
			case err := <-lost:
				return nil, fmt.Errorf("provision: connection lost: %w", err)
			case <-ctx.Done():
				return nil, fmt.Errorf("provision %s: %w", cfg.RegistrationID, ctxErr(ctx))
			}
		}
		var a dpsAnswer
		switch {
		case m.res.Status >= 300 && m.res.Status < 429:
			return nil, statusError("provision "+cfg.RegistrationID, m.res.Status, m.body)
		case m.res.Status < 300:
			if err := json.Unmarshal(m.body, &a); err != nil {
				return nil, ferry.Errorf(ferry.EINTERNAL, "provision: bad answer: %v", err)
			}
		}
		switch strings.ToLower(a.Status) {
		case "assigned":
			return registration(a, key), nil
		case "failed", "disabled", "unassigned":
			st := a.RegistrationState
			if st != nil && st.ErrorCode != 0 {
				b, _ := json.Marshal(serviceError{ErrorCode: st.ErrorCode, Message: st.ErrorMessage})
				return nil, statusError("provision "+cfg.RegistrationID, st.ErrorCode/1000, b)
			}
			return nil, ferry.Errorf(ferry.EFORBIDDEN, "provision %s: registration %s", cfg.RegistrationID, a.Status)
		}
		// 202 assigning/registering, or >= 429: wait and poll (or retry).
		delay := time.Duration(m.res.RetryAfter) * time.Second
		if m.res.RetryAfter == 0 {
			delay = 2 * time.Second
		}
		if m.res.Status < 300 && a.OperationID != "" {
			topic = "$dps/registrations/GET/iotdps-get-operationstatus/?operationId=" + a.OperationID + "&$rid="
			payload = []byte(" ")
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, fmt.Errorf("provision %s: %w", cfg.RegistrationID, ctxErr(ctx))
		}
	}
}

func registration(a dpsAnswer, key string) *Registration {
	r := &Registration{Status: "assigned", OperationID: a.OperationID, Key: key}
	if st := a.RegistrationState; st != nil {
		r.RegistrationID, r.AssignedHub, r.DeviceID = st.RegistrationID, st.AssignedHub, st.DeviceID
		r.Substatus, r.CreatedAt, r.LastUpdatedAt, r.ETag = st.Substatus, st.CreatedAt, st.LastUpdatedAt, st.ETag
		r.Payload = st.Payload
		if st.X509 != nil {
			r.EnrollmentGroupID = st.X509.EnrollmentGroupID
		}
		if st.SymmetricKey != nil {
			r.EnrollmentGroupID = st.SymmetricKey.EnrollmentGroupID
		}
	}
	return r
}

// connectErr waits for a CONNECT and maps CONNACK refusals to error codes:
// 2, 4 and 5 (bad identity or credentials) are EUNAUTHORIZED, 3 (server
// unavailable, shedding load) ETHROTTLED.
func connectErr(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	err := wait(ctx, tok, timeout+time.Second)
	select {
	case <-tok.Done():
	default:
		return err // the token is still in use by paho
	}
	ct, ok := tok.(*paho.ConnectToken)
	if !ok || err == nil {
		return err
	}
	switch ct.ReturnCode() {
	case 2, 4, 5: // identifier rejected, bad username or password, not authorized
		return ferry.WrapError(ferry.EUNAUTHORIZED, "the server refused the credentials", err)
	case 3: // server unavailable
		return ferry.WrapError(ferry.ETHROTTLED, "the server is unavailable", err)
	}
	return err
}

func ctxErr(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return ferry.WrapError(ferry.ETIMEOUT, "timed out", ctx.Err())
	}
	return ctx.Err()
}

func newRID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
