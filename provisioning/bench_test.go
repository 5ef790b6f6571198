package provisioning_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/provisioning"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

// replyConn is the device's side of a session without MQTT: it keeps the
// topic of the last answer.
type replyConn struct{ topic atomic.Pointer[string] }

func (c *replyConn) Send(topic string, payload []byte) error { c.topic.Store(&topic); return nil }
func (c *replyConn) SendQoS1(string, []byte) (uint16, error) { return 1, nil }
func (c *replyConn) Close(error)                             {}

// BenchmarkRegister measures the server's side of a symmetric-key group
// registration of a new device, as each device of a migration makes at
// its target: the session's authentication, the register request and the
// assignment with its store writes, without MQTT and TLS. 32 registrations
// run at once, as a fleet's do.
func BenchmarkRegister(b *testing.B) {
	ctx := context.Background()
	s := storetest.OpenSQLite(b)
	bus := eventbus.New(eventbus.Options{})
	hubs, err := hub.New(hub.Config{Store: s, Bus: bus})
	if err != nil {
		b.Fatal(err)
	}
	defer hubs.Close()
	prov, err := provisioning.New(provisioning.Config{Store: s, Hubs: hubs, Bus: bus})
	if err != nil {
		b.Fatal(err)
	}
	defer prov.Close()
	h := &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-b", HostName: "hub-b.test", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	if err := s.CreateHub(ctx, h); err != nil {
		b.Fatal(err)
	}
	svc := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: "dps-b", IDScope: provisioning.NewIDScope(),
		AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: time.Now(),
		LinkedHubs: []ferry.LinkedHub{{HubID: h.ID, HostName: h.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
	if err := s.CreateProvisioningService(ctx, svc); err != nil {
		b.Fatal(err)
	}
	key := ferry.NewKey(64)
	g := &ferry.EnrollmentGroup{ServiceID: svc.ID, ID: "fleet", Status: ferry.EnrollmentEnabled,
		Attestation: ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: key}, IoTHubs: []string{h.HostName},
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.PutEnrollmentGroup(ctx, g, ""); err != nil {
		b.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var next atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS registrations in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			regID := "dev-" + run + "-" + strconv.FormatInt(next.Add(1), 10)
			dk, err := sas.DeriveDeviceKey(key, regID)
			if err != nil {
				b.Error(err)
				return
			}
			res := svc.IDScope + "/registrations/" + regID
			tok := nodeToken(res, dk, time.Now().Add(time.Hour))
			c := &replyConn{}
			sess, err := prov.ConnectRegistration(ctx, &mqttgw.ConnectRequest{ClientID: regID, HasPassword: true, Password: tok,
				Username: mqttgw.Username{Kind: mqttgw.KindDPS, IDScope: svc.IDScope, RegistrationID: regID, APIVersion: "2019-03-31"},
				Conn:     c})
			if err != nil {
				b.Error(err)
				return
			}
			body := `{"registrationId":"` + regID + `","payload":{"modelId":"dtmi:ferry:bench:Mover;1"}}`
			if err := sess.Publish(ctx, mqttgw.Message{Topic: "$dps/registrations/PUT/iotdps-register/?$rid=1", Payload: []byte(body), QoS: 1}); err != nil {
				b.Error(err)
				return
			}
			if t := c.topic.Load(); t == nil || !strings.HasPrefix(*t, "$dps/registrations/res/200/") {
				b.Errorf("answer %v", t)
				return
			}
			sess.Closed(true)
		}
	})
}
