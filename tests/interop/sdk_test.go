package interop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device/devicetest"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

type step struct {
	Step        string          `json:"step"`
	At          string          `json:"at"`
	Error       string          `json:"error"`
	AssignedHub string          `json:"assignedHub"`
	DeviceID    string          `json:"deviceId"`
	Body        string          `json:"body"`
	MessageID   string          `json:"messageId"`
	Payload     json.RawMessage `json:"payload"`
	Desired     map[string]any  `json:"desired"`
}

// runDevice starts device.js and returns its steps as they come.
func (p *plane) runDevice(t *testing.T, env ...string) (<-chan step, func() error) {
	t.Helper()
	dir := sdkDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "node", "device.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+p.caFile, "PROVISIONING_HOST="+p.host, "ID_SCOPE="+p.svc.IDScope)
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := make(chan step, 32)
	go func() {
		defer close(steps)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var s step
			if json.Unmarshal(sc.Bytes(), &s) == nil {
				steps <- s
			}
		}
	}()
	wait := func() error {
		err := cmd.Wait()
		if err != nil {
			t.Logf("device.js stderr:\n%s", stderr.String())
		}
		return err
	}
	return steps, wait
}

// expect reads steps until name arrives; an error step fails the test.
func expect(t *testing.T, steps <-chan step, name string) step {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case s, ok := <-steps:
			if !ok {
				t.Fatalf("device.js ended before %q", name)
			}
			t.Logf("device: %s", s.Step)
			if s.Step == "error" {
				t.Fatalf("device.js failed at %s: %s", s.At, s.Error)
			}
			if s.Step == name {
				return s
			}
		case <-timeout:
			t.Fatalf("no %q from device.js", name)
		}
	}
}

// drive runs the service side of one device's life and checks every step
// on the server too.
func (p *plane) drive(t *testing.T, regID, modelID string, env ...string) {
	t.Helper()
	ctx := context.Background()
	steps, wait := p.runDevice(t, append(env, "REGISTRATION_ID="+regID, "MODEL_ID="+modelID)...)

	prov := expect(t, steps, "provisioned")
	if prov.AssignedHub != p.host || prov.DeviceID != regID {
		t.Fatalf("provisioned to %q as %q", prov.AssignedHub, prov.DeviceID)
	}
	rec, err := p.store.GetRegistration(ctx, p.svc.ID, regID)
	if err != nil || rec.Status != ferry.RegistrationAssigned || rec.AssignedHub != p.host || rec.ModelID != modelID {
		t.Fatalf("registration record %+v, %v", rec, err)
	}
	id, err := p.store.GetDeviceIdentity(ctx, p.hub.ID, regID)
	if err != nil || id.ModelID != modelID {
		t.Fatalf("identity %+v, %v", id, err)
	}

	expect(t, steps, "connected")
	expect(t, steps, "telemetry")
	// The SDK saw its PUBACK, so the message is in the export files now.
	recs, err := export.ReadAll(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		b, _ := json.Marshal(r)
		s := string(b)
		if strings.Contains(s, `"msg-`+regID+`"`) && strings.Contains(s, "berlin west") && strings.Contains(s, "21.5") {
			found = true
		}
	}
	if !found {
		t.Fatalf("telemetry of %s not in the export files: %d records", regID, len(recs))
	}

	tw := expect(t, steps, "twin")
	_ = tw
	expect(t, steps, "reported")
	twin, err := p.store.GetTwin(ctx, p.hub.ID, regID)
	if err != nil || twin.Reported["firmware"] != "1.2.3" {
		t.Fatalf("reported twin %+v, %v", twin, err)
	}
	expect(t, steps, "ready")

	res, err := p.hubs.InvokeMethod(ctx, p.hub.ID, regID, ferry.MethodRequest{MethodName: "reboot",
		Payload: json.RawMessage(`{"delay":1}`), ResponseTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("invoke method: %v", err)
	}
	if res.Status != 200 || !strings.Contains(string(res.Payload), `"rebooted":true`) || !strings.Contains(string(res.Payload), `"delay":1`) {
		t.Errorf("method response %d %s", res.Status, res.Payload)
	}
	if _, err := p.hubs.UpdateTwin(ctx, p.hub.ID, regID, ferry.TwinPatch{Desired: map[string]any{"interval": 42}}, "*"); err != nil {
		t.Fatal(err)
	}
	if err := p.hubs.SendC2D(ctx, &ferry.C2DMessage{HubID: p.hub.ID, DeviceID: regID, MessageID: "c2d-1",
		Properties: map[string]string{"kind": "greeting"}, Body: []byte("hello from ferry")}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]step{}
	for len(seen) < 4 {
		select {
		case s, ok := <-steps:
			if !ok {
				t.Fatalf("device.js ended early; saw %v", keys(seen))
			}
			if s.Step == "error" {
				t.Fatalf("device.js failed at %s: %s", s.At, s.Error)
			}
			seen[s.Step] = s
			if s.Step == "done" && len(seen) < 4 {
				t.Fatalf("done after %v", keys(seen))
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("device saw only %v", keys(seen))
		}
	}
	if m := seen["method"]; !strings.Contains(string(m.Payload), `"delay":1`) {
		t.Errorf("method payload at the device %s", m.Payload)
	}
	if c := seen["c2d"]; c.Body != "hello from ferry" || c.MessageID != "c2d-1" {
		t.Errorf("c2d at the device %+v", c)
	}
	if err := wait(); err != nil {
		t.Fatalf("device.js: %v", err)
	}
	eventually(t, "C2D completion", func() bool {
		m, err := p.store.ListPendingC2D(ctx, p.hub.ID, regID)
		return err == nil && len(m) == 0
	})
	eventually(t, "disconnected state", func() bool {
		d, err := p.store.GetDeviceIdentity(ctx, p.hub.ID, regID)
		return err == nil && d.ConnectionState == ferry.Disconnected && !d.LastActivityAt.IsZero()
	})
	eventually(t, "connected, disconnected, provisioned and property events", func() bool {
		return len(p.eventsOf(ferry.SourceDeviceConnectivity, ferry.TypeConnected)) > 0 &&
			len(p.eventsOf(ferry.SourceDeviceConnectivity, ferry.TypeDisconnected)) > 0 &&
			len(p.eventsOf(ferry.SourceDeviceLifecycle, ferry.TypeProvisioned)) > 0 &&
			len(p.eventsOf(ferry.SourceProperties, ferry.TypeDevicePropertyReportedChange)) > 0 &&
			len(p.eventsOf(ferry.SourceProperties, ferry.TypeDevicePropertyDesiredChange)) > 0
	})
}

func keys(m map[string]step) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestNodeSDKSymmetricKeyGroup(t *testing.T) {
	sdkDir(t)
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := newPlane(t, s)
		groupKey := ferry.NewKey(64)
		g := &ferry.EnrollmentGroup{ServiceID: p.svc.ID, ID: "sdk-group", Status: ferry.EnrollmentEnabled,
			Attestation:       ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: groupKey, SecondaryKey: ferry.NewKey(64)},
			ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
			CreatedAt:         time.Now(), UpdatedAt: time.Now()}
		if err := s.PutEnrollmentGroup(context.Background(), g, ""); err != nil {
			t.Fatal(err)
		}
		dk, err := sas.DeriveDeviceKey(groupKey, "node-dev-1")
		if err != nil {
			t.Fatal(err)
		}
		p.drive(t, "node-dev-1", "dtmi:ferry:interop;1", "DEVICE_KEY="+dk)
	})
}

func TestNodeSDKX509CAGroup(t *testing.T) {
	sdkDir(t)
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := newPlane(t, s)
		caCert, caKey := devicetest.AddX509Group(t, s, p.prov, p.svc.ID, "device-ca", "x509-group")
		leaf, key, err := pki.IssueClientCert(caCert, caKey, "node-x509-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		keyPEM, err := pki.EncodeKeyPEM(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile := filepath.Join(dir, "device.crt"), filepath.Join(dir, "device.key")
		if err := os.WriteFile(certFile, pki.EncodeCertPEM(leaf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		p.drive(t, "node-x509-1", "dtmi:ferry:interop;2", "CERT_FILE="+certFile, "KEY_FILE="+keyFile)
	})
}
