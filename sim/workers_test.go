package sim_test

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
	"github.com/ferry-iot/ferry/sim"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestFerrySimWorkers builds the ferry binary and runs `ferry sim` with two
// worker processes against an in-process device plane.
func TestFerrySimWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ferry binary")
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	build := exec.Command("go", "build", "-o", bin, "github.com/ferry-iot/ferry/cmd/ferry")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s := storetest.OpenSQLite(t)
	p := devicetest.NewPlane(t, s)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, p.Auth.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "sim", "--workers", "2", "--count", "40", "--prefix", "w-",
		"--provisioning-host", p.ProvHost, "--id-scope", p.SvcA.IDScope, "--ca", caFile,
		"--telemetry-interval", "100ms", "--stats-interval", "200ms", "--duration", "4s", "--json")
	cmd.Env = append(os.Environ(), "FERRY_SIM_GROUP_KEY="+p.GroupKey)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last sim.Stats
	maxConnected := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("bad stats line %q: %v", sc.Text(), err)
		}
		maxConnected = max(maxConnected, last.Connected)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ferry sim: %v\n%s", err, stderr.String())
	}
	if last.Devices != 40 || last.Provisioned != 40 || maxConnected != 40 || last.Sent == 0 || last.Acked < last.Sent || last.Queued != 0 {
		t.Errorf("final stats %+v (at most %d connected)\n%s", last, maxConnected, stderr.String())
	}
	n, err := s.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: p.HubA.ID})
	if err != nil || n != 40 {
		t.Errorf("%d identities at hub A, %v", n, err)
	}
	for _, id := range []string{"w-000000", "w-000039"} {
		seqs := p.Seqs(id)
		if len(seqs) == 0 {
			t.Errorf("no telemetry from %s", id)
		}
		p.CheckNoGap(t, id, len(seqs))
	}
}
