package hubsvc_test

import (
	"context"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestBearer authenticates with Ferry access tokens from the real identity
// service; the Authorize hook decides per operation.
func TestBearer(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ids, admin, bearer := adminBearer(t, s)
		var seen []hubsvc.Operation
		e := newEnv(t, s, func(c *hubsvc.Config) {
			c.Tokens = ids
			c.Authorize = func(ctx context.Context, caller *ferry.Caller, tgt hubsvc.Target, op hubsvc.Operation) error {
				if caller.Claims == nil || caller.Claims.ObjectID != admin.ID {
					t.Errorf("caller %+v", caller)
				}
				seen = append(seen, op)
				if op == hubsvc.OpRegistryWrite && tgt.Hub != nil && tgt.Hub.HostName == hostB {
					return ferry.Errorf(ferry.EFORBIDDEN, "not on hub B")
				}
				return nil
			}
		})
		wantStatus(t, e.do("PUT", hostA, "/devices/b1", bearer, map[string]any{}), 200)
		wantStatus(t, e.do("GET", hostA, "/devices/b1", bearer, nil), 200)
		wantStatus(t, e.do("GET", hostDPS, "/enrollments/none", bearer, nil), 404)
		wantHubError(t, e.do("PUT", hostB, "/devices/b1", bearer, map[string]any{}), 403, "Forbidden")
		wantHubError(t, e.do("GET", hostA, "/devices/b1", "Bearer not-a-token", nil), 401, "IotHubUnauthorizedAccess")
		if len(seen) != 4 || seen[2] != hubsvc.OpEnrollmentRead {
			t.Errorf("Authorize saw %v", seen)
		}
	})
}

func TestServesHost(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		h := hubsvc.New(e.cfg)
		for host, want := range map[string]bool{hostA: true, hostB + ":443": true, hostDPS + ":8443": true, "DPS-A.example.com": true, "127.0.0.9": false, "ferry.example.com": false} {
			got, err := h.ServesHost(context.Background(), host)
			if err != nil || got != want {
				t.Errorf("ServesHost(%q) = %v, %v; want %v", host, got, err, want)
			}
		}
	})
}

// adminBearer bootstraps the identity service on s and returns it, its
// administrator and an Authorization header with an access token of theirs.
func adminBearer(t *testing.T, s ferry.Store) (*identity.Service, *ferry.Principal, string) {
	t.Helper()
	ctx := context.Background()
	ids, err := identity.New(identity.Config{Store: s, Issuer: "https://ferry.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.Bootstrap(ctx, "correct-horse-battery-staple"); err != nil {
		t.Fatal(err)
	}
	admin, err := s.GetPrincipalByName(ctx, identity.AdminName)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ids.IssueToken(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	return ids, admin, "Bearer " + tok.AccessToken
}
