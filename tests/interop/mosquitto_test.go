package interop_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestMosquittoClients(t *testing.T) {
	require(t, haveTool("mosquitto_pub") && haveTool("mosquitto_sub"), "mosquitto_pub and mosquitto_sub")
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := newPlane(t, s)
		ctx := context.Background()
		keys := map[string]string{}
		for _, id := range []string{"mq-1", "mq-2"} {
			keys[id] = ferry.NewKey(32)
			if err := s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: p.hub.ID, DeviceID: id, GenerationID: ferry.NewUUID(),
				Status: ferry.DeviceEnabled, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: keys[id]}, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := sas.Sign(p.host+"/devices/mq-1", keys["mq-1"], "", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		common := []string{"-h", "127.0.0.1", "-p", p.port, "--cafile", p.caFile, "-V", "mqttv311",
			"-i", "mq-1", "-u", p.host + "/mq-1/?api-version=2021-04-12", "-P", tok}
		run := func(name string, args ...string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, name, append(append([]string{}, common...), args...)...).CombinedOutput()
			return string(out), err
		}

		out, err := run("mosquitto_pub", "-q", "1", "-t", "devices/mq-1/messages/events/%24.mid=mosq-1&src=mosquitto", "-m", `{"v":7}`)
		if err != nil {
			t.Fatalf("mosquitto_pub: %v\n%s", err, out)
		}
		recs, err := export.ReadAll(p.dir)
		if err != nil {
			t.Fatal(err)
		}
		if !exported(recs, "mosq-1") {
			t.Fatalf("mosquitto telemetry not exported")
		}

		t.Run("publish as another device", func(t *testing.T) {
			out, err := run("mosquitto_pub", "-q", "1", "-t", "devices/mq-2/messages/events/%24.mid=stolen-1", "-m", "x")
			if err == nil {
				t.Errorf("mosquitto_pub to another device's topic succeeded:\n%s", out)
			}
			recs, _ := export.ReadAll(p.dir)
			if exported(recs, "stolen-1") {
				t.Error("message on another device's topic was accepted")
			}
		})
		t.Run("subscribe to another device", func(t *testing.T) {
			out, err := run("mosquitto_sub", "-q", "1", "-t", "devices/mq-2/messages/devicebound/#", "-C", "1", "-W", "3")
			// mosquitto_sub 2.0 reports the refused SUBACK and exits 0.
			if !strings.Contains(out, "All subscription requests were denied") {
				t.Errorf("mosquitto_sub on another device's topic: %v\n%s", err, out)
			}
		})
		t.Run("wrong key", func(t *testing.T) {
			bad, _ := sas.Sign(p.host+"/devices/mq-1", keys["mq-2"], "", time.Now().Add(time.Hour))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{}, common[:len(common)-1]...)
			out, err := exec.CommandContext(ctx, "mosquitto_pub", append(args, bad, "-q", "1", "-t", "devices/mq-1/messages/events/", "-m", "x")...).CombinedOutput()
			if err == nil || !strings.Contains(strings.ToLower(string(out)), "not authori") {
				t.Errorf("wrong key: %v\n%s", err, out)
			}
		})
	})
}

func exported(recs []export.Record, messageID string) bool {
	for _, r := range recs {
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), `"`+messageID+`"`) {
			return true
		}
	}
	return false
}
