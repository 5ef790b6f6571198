package servicesdk_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/jobs"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

// skipOrFail skips the test, or fails it when CI=true.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// sdkDir returns tests/azure-sdk with its node_modules, or skips.
func sdkDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../azure-sdk")
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"azure-iothub", "azure-iot-provisioning-service"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			skipOrFail(t, "%s is not installed (run npm ci in tests/azure-sdk): %v", pkg, err)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		skipOrFail(t, "node is not installed")
	}
	return dir
}

// listen443 binds port 443 on a free loopback address.
func listen443(t *testing.T) net.Listener {
	t.Helper()
	for range 50 {
		ip := fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(254))
		ln, err := net.Listen("tcp", ip+":443")
		if err == nil {
			return ln
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			skipOrFail(t, "cannot bind port 443, which the SDKs always dial: %v", err)
		}
	}
	t.Fatal("no free loopback address for port 443")
	return nil
}

// startHubs starts a hub service on s and an MQTT gateway for its devices
// on a plain-TCP loopback listener, all stopped when the test ends.
func startHubs(t *testing.T, s ferry.Store) (*hub.Service, *mqttgw.Gateway, net.Listener) {
	t.Helper()
	hs, err := hub.New(hub.Config{Store: s, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	gw, err := mqttgw.New(mqttgw.Config{Hubs: hs})
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(mln)
	t.Cleanup(func() { gw.Close() })
	return hs, gw, mln
}

func host(ln net.Listener) string {
	h, _, _ := net.SplitHostPort(ln.Addr().String())
	return h
}

func TestServiceSDKs(t *testing.T) {
	dir := sdkDir(t)
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		hubLn, dpsLn := listen443(t), listen443(t)
		hubHost, dpsHost := host(hubLn), host(dpsLn)

		hs, _, mln := startHubs(t, s)
		runner, err := jobs.New(jobs.Config{Store: s, Hubs: hs, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		runner.Start(ctx)
		t.Cleanup(func() { runner.Close() })

		h := &ferry.Hub{ID: ferry.NewUUID(), Name: "sdk-hub", HostName: hubHost, Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
		if err := s.CreateHub(ctx, h); err != nil {
			t.Fatal(err)
		}
		ps := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: "sdk-dps", IDScope: "0ne000SDK01", HostName: dpsHost,
			AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: time.Now(),
			LinkedHubs: []ferry.LinkedHub{{HubID: h.ID, HostName: hubHost, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
		if err := s.CreateProvisioningService(ctx, ps); err != nil {
			t.Fatal(err)
		}

		// Registration records as the device side leaves them.
		now := time.Now()
		if err := s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: ps.ID, ID: "reg-group", Status: ferry.EnrollmentEnabled,
			Attestation: ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: ferry.NewKey(64), SecondaryKey: ferry.NewKey(64)},
			CreatedAt:   now, UpdatedAt: now}, ""); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"reg-a", "reg-b"} {
			if err := s.PutRegistration(ctx, &ferry.RegistrationRecord{ServiceID: ps.ID, RegistrationID: id, EnrollmentGroupID: "reg-group",
				DeviceID: id, AssignedHub: hubHost, Status: ferry.RegistrationAssigned, Substatus: ferry.SubstatusInitialAssignment,
				CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}

		ca, err := pki.LoadOrCreate(t.TempDir(), []string{hubHost, dpsHost}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, ca.CACertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: hubsvc.New(hubsvc.Config{Store: s, Hubs: hs, JobsChanged: runner.Wake}), ReadHeaderTimeout: 5 * time.Second}
		tc := &tls.Config{Certificates: []tls.Certificate{ca.ServerCertificate()}}
		go srv.Serve(tls.NewListener(hubLn, tc))
		go srv.Serve(tls.NewListener(dpsLn, tc))
		t.Cleanup(func() { srv.Close() })

		// A device connected over MQTT answers direct methods.
		key := ferry.NewKey(32)
		if err := s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: h.ID, DeviceID: "method-dev", GenerationID: "1",
			Status: ferry.DeviceEnabled, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: key, SecondaryKey: ferry.NewKey(32)}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		calls := make(chan string, 10)
		connectDevice(t, mln.Addr().String(), hubHost, "method-dev", key, calls)

		hubPolicy, dpsPolicy := h.Policy("iothubowner"), ps.Policy("provisioningserviceowner")
		cmd := exec.Command("node", filepath.Join(dir, "service", "service.js"))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"NODE_EXTRA_CA_CERTS="+caFile,
			fmt.Sprintf("HUB_CS=HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", hubHost, hubPolicy.KeyName, hubPolicy.PrimaryKey),
			fmt.Sprintf("DPS_CS=HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", dpsHost, dpsPolicy.KeyName, dpsPolicy.PrimaryKey),
			"METHOD_DEVICE=method-dev", "REG_GROUP=reg-group", "REG_ID=reg-a")
		out, err := cmd.CombinedOutput()
		t.Logf("node service.js:\n%s", out)
		if err != nil || !strings.Contains(string(out), "\nPASS") {
			t.Fatalf("service.js failed: %v", err)
		}

		// The server side agrees with what the SDKs saw.
		d, err := s.GetDeviceIdentity(ctx, h.ID, "node-1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != ferry.DeviceDisabled || d.StatusReason != "sdk test" || d.Auth.Type != ferry.AuthSAS {
			t.Errorf("node-1 = %+v", d)
		}
		tw, err := s.GetTwin(ctx, h.ID, "node-1")
		if err != nil {
			t.Fatal(err)
		}
		if tw.Tags["site"] != "berlin" || tw.Desired["fw"] != "3.0" || tw.Tags["wave"] != float64(1) {
			t.Errorf("node-1 twin tags %v desired %v", tw.Tags, tw.Desired)
		}
		if _, err := s.GetDeviceIdentity(ctx, h.ID, "node-2"); !ferry.IsCode(err, ferry.ENOTFOUND) {
			t.Errorf("node-2 was not deleted: %v", err)
		}
		j, err := s.GetJob(ctx, h.ID, "job-method")
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != ferry.JobCompleted || j.Statistics.SucceededCount != 1 || j.Statistics.FailedCount != 1 {
			t.Errorf("job-method = %+v", j)
		}
		if j, err := s.GetJob(ctx, h.ID, "job-later"); err != nil || j.Status != ferry.JobCancelled {
			t.Errorf("job-later = %+v, %v", j, err)
		}
		if n := len(calls); n != 2 {
			t.Errorf("the device saw %d method calls, want 2 (one direct, one from the job)", n)
		}
		if _, err := s.GetEnrollmentGroup(ctx, ps.ID, "sdk-group"); !ferry.IsCode(err, ferry.ENOTFOUND) {
			t.Errorf("sdk-group was not deleted: %v", err)
		}
		if _, err := s.GetRegistration(ctx, ps.ID, "reg-a"); !ferry.IsCode(err, ferry.ENOTFOUND) {
			t.Errorf("reg-a was not deleted: %v", err)
		}
		if _, err := s.GetRegistration(ctx, ps.ID, "reg-b"); err != nil {
			t.Errorf("reg-b: %v", err)
		}
	})
}

// connectDevice connects a device over MQTT that answers every method with
// status 200 and {"rebooted":true,"delay":<payload.delay>}.
func connectDevice(t *testing.T, addr, hubHost, id, key string, calls chan<- string) {
	t.Helper()
	tok, err := sas.Sign(hubHost+"/devices/"+id, key, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var c paho.Client
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(hubHost + "/" + id + "/?api-version=2021-04-12").SetPassword(tok).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetProtocolVersion(4).SetOrderMatters(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			topic := m.Topic()
			if !strings.HasPrefix(topic, "$iothub/methods/POST/") {
				return
			}
			calls <- topic
			rid := topic[strings.Index(topic, "$rid=")+5:]
			var delay any = nil
			if p := string(m.Payload()); strings.Contains(p, `"delay":`) {
				delay = strings.TrimSuffix(strings.SplitN(p, `"delay":`, 2)[1], "}")
			}
			c.Publish("$iothub/methods/res/200/?$rid="+rid, 0, false, []byte(fmt.Sprintf(`{"rebooted":true,"delay":%v}`, delay)))
		})
	c = paho.NewClient(opts)
	if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("connect %s: %v", id, tk.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	if tk := c.Subscribe("$iothub/methods/POST/#", 0, nil); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe: %v", tk.Error())
	}
}
