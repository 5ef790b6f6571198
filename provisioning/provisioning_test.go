package provisioning_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/provisioning"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

type env struct {
	t     *testing.T
	store ferry.Store
	prov  *provisioning.Service
	hubs  *hub.Service
	auth  *pki.Authority
	addr  string
	svc   *ferry.ProvisioningService
	hubA  *ferry.Hub
	hubB  *ferry.Hub
}

func newEnv(t *testing.T, s ferry.Store) *env {
	t.Helper()
	return newEnvWith(t, s, provisioning.Config{})
}

// newEnvWith starts the gateway with cfg; its Store, Hubs and Bus are set
// here unless cfg.Store is set already (a wrapper around s).
func newEnvWith(t *testing.T, s ferry.Store, cfg provisioning.Config) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: s}
	var err error
	e.auth, err = pki.LoadOrCreate(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bus := eventbus.New(eventbus.Options{})
	e.hubs, err = hub.New(hub.Config{Store: s, Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.hubs.Close() })
	if cfg.Store == nil {
		cfg.Store = s
	}
	cfg.Hubs, cfg.Bus = e.hubs, bus
	e.prov, err = provisioning.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.prov.Close() })
	gw, err := mqttgw.New(mqttgw.Config{Hubs: e.hubs, Provisioning: e.prov})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", e.auth.ServerTLSConfig(pki.TLSOptions{ClientAuth: tls.RequestClientCert}))
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go gw.Serve(ln)
	t.Cleanup(func() { gw.Close() })
	for _, h := range []**ferry.Hub{&e.hubA, &e.hubB} {
		n := "hub-" + strconv.Itoa(len(e.t.Name())%7) + ferry.NewUUID()[:6]
		*h = &ferry.Hub{ID: ferry.NewUUID(), Name: n, HostName: n + ".test", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
		if err := s.CreateHub(ctx, *h); err != nil {
			t.Fatal(err)
		}
	}
	e.svc = &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: "dps-" + ferry.NewUUID()[:8], IDScope: provisioning.NewIDScope(),
		AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: time.Now(),
		LinkedHubs: []ferry.LinkedHub{
			{HubID: e.hubA.ID, HostName: e.hubA.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true},
			{HubID: e.hubB.ID, HostName: e.hubB.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true},
		}}
	if err := s.CreateProvisioningService(ctx, e.svc); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) group(g *ferry.EnrollmentGroup) {
	e.t.Helper()
	g.ServiceID = e.svc.ID
	if g.Status == "" {
		g.Status = ferry.EnrollmentEnabled
	}
	g.CreatedAt, g.UpdatedAt = time.Now(), time.Now()
	if err := e.store.PutEnrollmentGroup(context.Background(), g, ""); err != nil {
		e.t.Fatal(err)
	}
}

// nodeToken signs the DPS resource unencoded, as the Node SDK does.
func nodeToken(resource, key string, exp time.Time) string {
	k, _ := base64.StdEncoding.DecodeString(key)
	se := strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, k)
	m.Write([]byte(resource + "\n" + se))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	return "SharedAccessSignature sr=" + resource + "&sig=" + sas.Encode(sig) + "&skn=registration&se=" + se
}

type dev struct {
	c    paho.Client
	res  chan paho.Message
	lost chan error
}

func (e *env) dial(clientID, username, password string, cert *tls.Certificate) (*dev, byte) {
	e.t.Helper()
	tc := &tls.Config{RootCAs: e.auth.CAPool(), ServerName: "localhost"}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	d := &dev{res: make(chan paho.Message, 10), lost: make(chan error, 1)}
	opts := paho.NewClientOptions().AddBroker("ssl://" + e.addr).SetClientID(clientID).SetUsername(username).
		SetTLSConfig(tc).SetAutoReconnect(false).SetProtocolVersion(4).SetCleanSession(true).SetOrderMatters(false).
		SetConnectTimeout(5 * time.Second).SetConnectionLostHandler(func(_ paho.Client, err error) { d.lost <- err })
	if password != "" {
		opts.SetPassword(password)
	}
	d.c = paho.NewClient(opts)
	tok := d.c.Connect()
	tok.WaitTimeout(10 * time.Second)
	code := tok.(*paho.ConnectToken).ReturnCode()
	if code == 0 {
		e.t.Cleanup(func() { d.c.Disconnect(0) })
		d.c.Subscribe(mqttgw.FilterDPSRes, 1, func(_ paho.Client, m paho.Message) { d.res <- m }).WaitTimeout(5 * time.Second)
	} else if tok.Error() == nil {
		e.t.Fatalf("refused without error")
	}
	return d, code
}

func (d *dev) call(t *testing.T, topic, body string) (string, map[string]any) {
	t.Helper()
	d.c.Publish(topic, 1, false, []byte(body)).WaitTimeout(5 * time.Second)
	select {
	case m := <-d.res:
		var v map[string]any
		if err := json.Unmarshal(m.Payload(), &v); err != nil {
			t.Fatalf("response body %q is not JSON: %v", m.Payload(), err)
		}
		return m.Topic(), v
	case <-time.After(10 * time.Second):
		t.Fatalf("no response to %s", topic)
		return "", nil
	}
}

// register runs the whole DPS flow, taking a direct 200 assigned or a 202
// assigning followed by polls, and returns the final registration state.
func (d *dev) register(t *testing.T, regID, payload string) map[string]any {
	t.Helper()
	body := `{"registrationId":"` + regID + `"` + payload + `}`
	topic, v := d.call(t, "$dps/registrations/PUT/iotdps-register/?$rid=r1", body)
	if topic == "$dps/registrations/res/200/?$rid=r1" {
		if v["status"] != "assigned" || v["operationId"] == nil {
			t.Fatalf("register: %s %v", topic, v)
		}
		return v["registrationState"].(map[string]any)
	}
	for i := 2; topic == "$dps/registrations/res/202/?$rid=r"+strconv.Itoa(i-1)+"&retry-after=1" && v["status"] == "assigning"; i++ {
		op, _ := v["operationId"].(string)
		rid := "r" + strconv.Itoa(i)
		topic, v = d.call(t, "$dps/registrations/GET/iotdps-get-operationstatus/?$rid="+rid+"&operationId="+op, " ")
		if topic == "$dps/registrations/res/200/?$rid="+rid {
			if v["status"] != "assigned" || v["operationId"] != op {
				t.Fatalf("poll: %s %v", topic, v)
			}
			return v["registrationState"].(map[string]any)
		}
		if i > 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("register: %s %v", topic, v)
	return nil
}

func TestSymmetricKeyGroup(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		groupKey := ferry.NewKey(64)
		e.group(&ferry.EnrollmentGroup{ID: "grp", Attestation: ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: groupKey, SecondaryKey: ferry.NewKey(64)},
			InitialTwin:       ferry.InitialTwin{Tags: map[string]any{"site": "berlin"}, Desired: map[string]any{"interval": 10}},
			ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}})
		dk, err := sas.DeriveDeviceKey(groupKey, "dev-001")
		if err != nil {
			t.Fatal(err)
		}
		res := e.svc.IDScope + "/registrations/dev-001"
		user := res + "/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1"
		d, code := e.dial("dev-001", user, nodeToken(res, dk, time.Now().Add(time.Hour)), nil)
		if code != 0 {
			t.Fatalf("CONNACK %d", code)
		}
		st := d.register(t, "dev-001", `,"payload":{"modelId":"dtmi:x:y;1"}`)
		assigned, _ := st["assignedHub"].(string)
		if st["deviceId"] != "dev-001" || st["status"] != "assigned" || st["substatus"] != "initialAssignment" ||
			(assigned != e.hubA.HostName && assigned != e.hubB.HostName) || st["symmetricKey"].(map[string]any)["enrollmentGroupId"] != "grp" {
			t.Fatalf("registrationState %v", st)
		}
		h, err := s.GetHubByHost(ctx, assigned)
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.GetDeviceIdentity(ctx, h.ID, "dev-001")
		if err != nil {
			t.Fatal(err)
		}
		if id.ModelID != "dtmi:x:y;1" || id.Auth.PrimaryKey != dk || id.EnrollmentGroupID != "grp" {
			t.Errorf("identity %+v", id)
		}
		tw, _ := s.GetTwin(ctx, h.ID, "dev-001")
		if tw.Tags["site"] != "berlin" || tw.Desired["interval"] == nil {
			t.Errorf("initial twin %+v", tw)
		}
		rec, err := s.GetRegistration(ctx, e.svc.ID, "dev-001")
		if err != nil || rec.AssignedHub != assigned || rec.Status != ferry.RegistrationAssigned || rec.ModelID != "dtmi:x:y;1" ||
			!strings.Contains(string(rec.Payload), "dtmi:x:y;1") {
			t.Errorf("record %+v, %v", rec, err)
		}
		// The device now reaches its hub with the same derived key.
		tok, _ := sas.Sign(assigned+"/devices/dev-001", dk, "", time.Now().Add(time.Hour))
		if _, code := e.dial("dev-001", assigned+"/dev-001/?api-version=2021-04-12", tok, nil); code != 0 {
			t.Errorf("hub CONNACK %d", code)
		}

		// Python encodes sr; that works too. A second registration keeps the record's creation time.
		ptok, _ := sas.Sign(res, dk, "registration", time.Now().Add(time.Hour))
		d2, code := e.dial("dev-001", res+"/api-version=2019-03-31", ptok, nil)
		if code != 0 {
			t.Fatalf("python-style CONNACK %d", code)
		}
		st2 := d2.register(t, "dev-001", "")
		if st2["assignedHub"] != assigned || st2["createdDateTimeUtc"] != st["createdDateTimeUtc"] {
			t.Errorf("re-registration %v", st2)
		}
	})
}

func TestBadRegistrations(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		groupKey := ferry.NewKey(64)
		g := &ferry.EnrollmentGroup{ID: "grp", Attestation: ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: groupKey}}
		e.group(g)
		dk, _ := sas.DeriveDeviceKey(groupKey, "dev-1")
		res := e.svc.IDScope + "/registrations/dev-1"
		user := res + "/api-version=2019-03-31"
		good := nodeToken(res, dk, time.Now().Add(time.Hour))

		refused := []struct{ name, clientID, user, pass string }{
			{"unknown scope", "dev-1", "0neFFFFFFFF/registrations/dev-1/api-version=2019-03-31", nodeToken("0neFFFFFFFF/registrations/dev-1", dk, time.Now().Add(time.Hour))},
			{"wrong key", "dev-1", user, nodeToken(res, ferry.NewKey(32), time.Now().Add(time.Hour))},
			{"group key used directly", "dev-1", user, nodeToken(res, groupKey, time.Now().Add(time.Hour))},
			{"expired", "dev-1", user, nodeToken(res, dk, time.Now().Add(-time.Minute))},
			{"client id mismatch", "dev-2", user, good},
			{"malformed password", "dev-1", user, "SharedAccessSignature sr="},
			{"no credentials", "dev-1", user, ""},
			{"invalid registration id", "-dev", e.svc.IDScope + "/registrations/-dev/api-version=2019-03-31", good},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				if _, code := e.dial(tt.clientID, tt.user, tt.pass, nil); code != mqttgw.ConnackNotAuthorized {
					t.Errorf("CONNACK %d, want 5", code)
				}
			})
		}

		d, code := e.dial("dev-1", user, good, nil)
		if code != 0 {
			t.Fatalf("CONNACK %d", code)
		}
		errorCase := func(name, topic, body, wantTopic string, wantCode float64) {
			t.Run(name, func(t *testing.T) {
				gotTopic, v := d.call(t, topic, body)
				if gotTopic != wantTopic || v["errorCode"] != wantCode || v["trackingId"] == nil || v["message"] == nil || v["timestampUtc"] == nil {
					t.Errorf("%s %v", gotTopic, v)
				}
			})
		}
		errorCase("invalid json", "$dps/registrations/PUT/iotdps-register/?$rid=a", `{"registrationId":`, "$dps/registrations/res/400/?$rid=a", 400004)
		errorCase("other registration id", "$dps/registrations/PUT/iotdps-register/?$rid=b", `{"registrationId":"dev-9"}`, "$dps/registrations/res/400/?$rid=b", 400004)
		errorCase("payload not an object", "$dps/registrations/PUT/iotdps-register/?$rid=b2", `{"registrationId":"dev-1","payload":[1]}`, "$dps/registrations/res/400/?$rid=b2", 400004)
		errorCase("unknown operation", "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=c&operationId=4.nope", " ", "$dps/registrations/res/404/?$rid=c", 404203)

		g.Status = ferry.EnrollmentDisabled
		cur, _ := s.GetEnrollmentGroup(ctx, e.svc.ID, "grp")
		g.ETag = ""
		if err := s.PutEnrollmentGroup(ctx, g, cur.ETag); err != nil {
			t.Fatal(err)
		}
		errorCase("disabled enrollment", "$dps/registrations/PUT/iotdps-register/?$rid=d", `{"registrationId":"dev-1"}`, "$dps/registrations/res/401/?$rid=d", 401002)
		rec, err := s.GetRegistration(ctx, e.svc.ID, "dev-1")
		if err != nil || rec.Status != ferry.RegistrationDisabled {
			t.Errorf("record %+v %v", rec, err)
		}
		d.c.Publish("$iothub/twin/GET/?$rid=1", 0, false, []byte(" "))
		select {
		case <-d.lost:
		case <-time.After(5 * time.Second):
			t.Error("hub topic on a DPS session did not close it")
		}
	})
}

func TestX509(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		now := time.Now()
		caCert, caKey, err := pki.NewCA("Device CA", now)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := pki.NewVerificationCode()
		ca := &ferry.ProvisioningCA{ServiceID: e.svc.ID, Name: "ca1", DER: caCert.Raw, Subject: caCert.Subject.String(),
			Thumbprint: pki.ThumbprintSHA1(caCert), VerificationCode: code, CreatedAt: now, UpdatedAt: now}
		if err := s.PutProvisioningCA(ctx, ca, ""); err != nil {
			t.Fatal(err)
		}
		e.group(&ferry.EnrollmentGroup{ID: "x509grp", Attestation: ferry.Attestation{Type: ferry.AttestX509, CAName: "ca1"},
			IoTHubs: []string{e.hubB.HostName}, AllocationPolicy: ferry.AllocationStatic})
		leaf, leafKey, _ := pki.IssueClientCert(caCert, caKey, "x509-dev", now)
		cert := pki.TLSCertificate(leaf, leafKey)
		user := e.svc.IDScope + "/registrations/x509-dev/api-version=2019-03-31"
		if _, code := e.dial("x509-dev", user, "", &cert); code != mqttgw.ConnackNotAuthorized {
			t.Fatalf("unverified CA: CONNACK %d", code)
		}
		// Proof of possession: a wrong code is refused, the right one verifies.
		bad, badKey, _ := pki.IssueClientCert(caCert, caKey, "wrong-code", now)
		_ = badKey
		if _, err := e.prov.VerifyCA(ctx, e.svc.ID, "ca1", bad.Raw); ferry.ErrorCode(err) != ferry.EINVALID {
			t.Fatalf("wrong verification: %v", err)
		}
		vc, _, _ := pki.IssueClientCert(caCert, caKey, code, now)
		if _, err := e.prov.VerifyCA(ctx, e.svc.ID, "ca1", vc.Raw); err != nil {
			t.Fatal(err)
		}
		d, c := e.dial("x509-dev", user, "", &cert)
		if c != 0 {
			t.Fatalf("CONNACK %d", c)
		}
		st := d.register(t, "x509-dev", "")
		if st["assignedHub"] != e.hubB.HostName || st["x509"].(map[string]any)["enrollmentGroupId"] != "x509grp" {
			t.Fatalf("registrationState %v", st)
		}
		id, err := s.GetDeviceIdentity(ctx, e.hubB.ID, "x509-dev")
		if err != nil || id.Auth.Type != ferry.AuthCertificateAuthority {
			t.Fatalf("identity %+v %v", id, err)
		}
		hubUser := e.hubB.HostName + "/x509-dev/?api-version=2021-04-12"
		if _, c := e.dial("x509-dev", hubUser, "", &cert); c != 0 {
			t.Errorf("hub CONNACK %d", c)
		}
		// A certificate from another CA, and one whose CN is not the device ID, are refused.
		otherCA, otherKey, _ := pki.NewCA("Other", now)
		ol, olk, _ := pki.IssueClientCert(otherCA, otherKey, "x509-dev", now)
		oc := pki.TLSCertificate(ol, olk)
		if _, c := e.dial("x509-dev", hubUser, "", &oc); c != mqttgw.ConnackNotAuthorized {
			t.Errorf("foreign chain: CONNACK %d", c)
		}
		if _, c := e.dial("x509-dev", user, "", &oc); c != mqttgw.ConnackNotAuthorized {
			t.Errorf("foreign chain at DPS: CONNACK %d", c)
		}
		wl, wlk, _ := pki.IssueClientCert(caCert, caKey, "someone-else", now)
		wc := pki.TLSCertificate(wl, wlk)
		if _, c := e.dial("x509-dev", hubUser, "", &wc); c != mqttgw.ConnackNotAuthorized {
			t.Errorf("CN mismatch: CONNACK %d", c)
		}

		// A self-signed device registered by thumbprint in an individual enrollment.
		ss, ssKey, _ := pki.NewSelfSignedCert("thumb-dev", now)
		ie := &ferry.IndividualEnrollment{ServiceID: e.svc.ID, RegistrationID: "thumb-dev", Status: ferry.EnrollmentEnabled,
			Attestation: ferry.Attestation{Type: ferry.AttestX509, PrimaryThumbprint: pki.ThumbprintSHA256(ss)}, CreatedAt: now, UpdatedAt: now}
		if err := s.PutIndividualEnrollment(ctx, ie, ""); err != nil {
			t.Fatal(err)
		}
		sc := pki.TLSCertificate(ss, ssKey)
		d3, c := e.dial("thumb-dev", e.svc.IDScope+"/registrations/thumb-dev/api-version=2019-03-31", "", &sc)
		if c != 0 {
			t.Fatalf("thumbprint CONNACK %d", c)
		}
		st = d3.register(t, "thumb-dev", "")
		host, _ := st["assignedHub"].(string)
		h, err := s.GetHubByHost(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		if _, c := e.dial("thumb-dev", host+"/thumb-dev/?api-version=2021-04-12", "", &sc); c != 0 {
			t.Errorf("self-signed hub CONNACK %d", c)
		}
		id, _ = s.GetDeviceIdentity(ctx, h.ID, "thumb-dev")
		if id == nil || id.Auth.Type != ferry.AuthSelfSigned {
			t.Errorf("identity %+v", id)
		}
	})
}
