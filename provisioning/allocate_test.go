package provisioning

import (
	"strconv"
	"testing"

	"github.com/ferry-iot/ferry"
)

func TestAllocateHashedIsStableAndWeighted(t *testing.T) {
	cands := []ferry.LinkedHub{{HubID: "a", HostName: "a", AllocationWeight: 1}, {HubID: "b", HostName: "b", AllocationWeight: 3}}
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		id := "dev-" + strconv.Itoa(i)
		h, err := allocate(ferry.AllocationHashed, cands, id)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := allocate(ferry.AllocationHashed, cands, id)
		if again.HubID != h.HubID {
			t.Fatalf("%s moved from %s to %s", id, h.HubID, again.HubID)
		}
		counts[h.HubID]++
	}
	if counts["a"] < 800 || counts["a"] > 1200 || counts["b"] < 2800 || counts["b"] > 3200 {
		t.Errorf("weights 1:3 gave %v", counts)
	}
}

func TestAllocateStatic(t *testing.T) {
	one := []ferry.LinkedHub{{HubID: "a"}}
	if h, err := allocate(ferry.AllocationStatic, one, "x"); err != nil || h.HubID != "a" {
		t.Errorf("static: %v %v", h, err)
	}
	if _, err := allocate(ferry.AllocationStatic, append(one, ferry.LinkedHub{HubID: "b"}), "x"); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Errorf("static over two hubs: %v", err)
	}
}

func TestCandidates(t *testing.T) {
	linked := []ferry.LinkedHub{{HubID: "a", HostName: "A.test", ApplyAllocationPolicy: true}, {HubID: "b", HostName: "b.test"}}
	if got := candidates(linked, []string{"b.TEST"}); len(got) != 1 || got[0].HubID != "b" {
		t.Errorf("named: %v", got)
	}
	if got := candidates(linked, nil); len(got) != 1 || got[0].HubID != "a" {
		t.Errorf("policy hubs: %v", got)
	}
}

func TestValidRegistrationID(t *testing.T) {
	for id, want := range map[string]bool{"dev-001": true, "sn.1_x": true, "-a": false, "a-": false, "": false, "a b": false, "ÄB": false} {
		if got := ValidRegistrationID(id); got != want {
			t.Errorf("%q: %v", id, got)
		}
	}
}
