package hubsvc_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store/storetest"
)

// owner sends a request to the provisioning service as its owner policy.
func (e *env) dpsOwner(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	return e.do(method, hostDPS, path, e.dpsToken(), body, headers...)
}

// wantDPSError checks an error in DPS's shape.
func wantDPSError(t *testing.T, r resp, status, code int) {
	t.Helper()
	wantStatus(t, r, status)
	m := r.obj(t)
	if m["errorCode"] != float64(code) {
		t.Errorf("errorCode %v, want %d", m["errorCode"], code)
	}
	for _, f := range []string{"trackingId", "message", "timestampUtc"} {
		if _, ok := m[f]; !ok {
			t.Errorf("error has no %s: %s", f, r.body)
		}
	}
}

func TestEnrollmentGroups(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		r := e.dpsOwner("PUT", "/enrollmentGroups/g1", map[string]any{"enrollmentGroupId": "g1",
			"attestation": map[string]any{"type": "symmetricKey"}, "provisioningStatus": "enabled",
			"reprovisionPolicy": map[string]any{"updateHubAssignment": true, "migrateDeviceData": false},
			"allocationPolicy":  "static", "iotHubs": []string{hostA},
			"initialTwin":  map[string]any{"tags": map[string]any{"site": "berlin"}, "properties": map[string]any{"desired": map[string]any{"fw": "1"}}},
			"capabilities": map[string]any{"iotEdge": false}})
		wantStatus(t, r, 200)
		g := r.obj(t)
		keys := g["attestation"].(map[string]any)["symmetricKey"].(map[string]any)
		pk, _ := keys["primaryKey"].(string)
		if b, err := base64.StdEncoding.DecodeString(pk); err != nil || len(b) != 64 {
			t.Fatalf("generated key %q", pk)
		}
		etag := g["etag"].(string)
		for _, f := range []string{"createdDateTimeUtc", "lastUpdatedDateTimeUtc", "reprovisionPolicy", "initialTwin", "iotHubs", "allocationPolicy", "provisioningStatus"} {
			if _, ok := g[f]; !ok {
				t.Errorf("group has no %s: %s", f, r.body)
			}
		}
		if g["reprovisionPolicy"].(map[string]any)["migrateDeviceData"] != false {
			t.Errorf("reprovisionPolicy %v", g["reprovisionPolicy"])
		}

		stored, err := s.GetEnrollmentGroup(context.Background(), e.dps.ID, "g1")
		if err != nil {
			t.Fatal(err)
		}
		if stored.Attestation.PrimaryKey != pk || stored.AllocationPolicy != ferry.AllocationStatic || stored.InitialTwin.Tags["site"] != "berlin" {
			t.Errorf("stored %+v", stored)
		}

		t.Run("Get", func(t *testing.T) {
			r := e.dpsOwner("GET", "/enrollmentGroups/G1", nil)
			wantStatus(t, r, 200)
			if !strings.Contains(string(r.body), pk) {
				t.Errorf("GET does not return the key")
			}
		})
		t.Run("StaleETag", func(t *testing.T) {
			r := e.dpsOwner("PUT", "/enrollmentGroups/g1", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}}, "If-Match", `"stale"`)
			wantDPSError(t, r, 412, 412201)
		})
		t.Run("Update", func(t *testing.T) {
			r := e.dpsOwner("PUT", "/enrollmentGroups/g1", map[string]any{"enrollmentGroupId": "g1", "etag": etag,
				"attestation": map[string]any{"type": "symmetricKey"}, "provisioningStatus": "disabled"})
			wantStatus(t, r, 200)
			g := r.obj(t)
			if g["provisioningStatus"] != "disabled" || g["etag"] == etag || !strings.Contains(string(r.body), pk) {
				t.Errorf("after update (keys must stay): %s", r.body)
			}
		})
		t.Run("Attestation", func(t *testing.T) {
			r := e.dpsOwner("POST", "/enrollmentgroups/g1/attestationmechanism", nil)
			wantStatus(t, r, 200)
			if !strings.Contains(string(r.body), pk) {
				t.Errorf("attestation mechanism: %s", r.body)
			}
		})
		t.Run("X509CA", func(t *testing.T) {
			caCert, _, err := pki.NewCA("group-ca", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutProvisioningCA(context.Background(), &ferry.ProvisioningCA{ServiceID: e.dps.ID, Name: "ca1", DER: caCert.Raw,
				Subject: caCert.Subject.String(), Thumbprint: pki.ThumbprintSHA1(caCert), Verified: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}, ""); err != nil {
				t.Fatal(err)
			}
			r := e.dpsOwner("PUT", "/enrollmentGroups/gx", map[string]any{"attestation": map[string]any{"type": "x509",
				"x509": map[string]any{"caReferences": map[string]any{"primary": "ca1"}}}})
			wantStatus(t, r, 200)
			r = e.dpsOwner("PUT", "/enrollmentGroups/gy", map[string]any{"attestation": map[string]any{"type": "x509",
				"x509": map[string]any{"signingCertificates": map[string]any{"primary": map[string]any{"certificate": string(pki.EncodeCertPEM(caCert))}}}}})
			wantStatus(t, r, 200)
			info := r.obj(t)["attestation"].(map[string]any)["x509"].(map[string]any)["signingCertificates"].(map[string]any)["primary"].(map[string]any)["info"].(map[string]any)
			if info["sha1Thumbprint"] != pki.ThumbprintSHA1(caCert) || !strings.Contains(info["subjectName"].(string), "group-ca") {
				t.Errorf("certificate info %v", info)
			}
		})
		bad := []struct {
			name string
			body map[string]any
		}{
			{"TPM", map[string]any{"attestation": map[string]any{"type": "tpm", "tpm": map[string]any{"endorsementKey": "x"}}}},
			{"NoAttestation", map[string]any{}},
			{"UnknownCA", map[string]any{"attestation": map[string]any{"type": "x509", "x509": map[string]any{"caReferences": map[string]any{"primary": "nope"}}}}},
			{"BadCertificate", map[string]any{"attestation": map[string]any{"type": "x509", "x509": map[string]any{"signingCertificates": map[string]any{"primary": map[string]any{"certificate": "bm90IGEgY2VydA=="}}}}}},
			{"ClientCertsOnGroup", map[string]any{"attestation": map[string]any{"type": "x509", "x509": map[string]any{"clientCertificates": map[string]any{}}}}},
			{"UnlinkedHub", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "iotHubs": []string{"elsewhere.example"}}},
			{"StaticTwoHubs", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "allocationPolicy": "static", "iotHubs": []string{hostA, hostB}}},
			{"Custom", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "allocationPolicy": "custom"}},
			{"BadStatus", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "provisioningStatus": "paused"}},
			{"BadKey", map[string]any{"attestation": map[string]any{"type": "symmetricKey", "symmetricKey": map[string]any{"primaryKey": "abc"}}}},
			{"BadTwinKey", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "initialTwin": map[string]any{"tags": map[string]any{"$x": 1}}}},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				wantDPSError(t, e.dpsOwner("PUT", "/enrollmentGroups/bad", b.body), 400, 400004)
			})
		}
		t.Run("BadID", func(t *testing.T) {
			for _, id := range []string{"a%20b", "-lead", "trail.", "a:b"} {
				wantDPSError(t, e.dpsOwner("PUT", "/enrollmentGroups/"+id, map[string]any{"attestation": map[string]any{"type": "symmetricKey"}}), 400, 400004)
			}
		})
		t.Run("QueryAndPaging", func(t *testing.T) {
			var all []map[string]any
			cont := ""
			for range 5 {
				h := []string{"x-ms-max-item-count", "2"}
				if cont != "" {
					h = append(h, "x-ms-continuation", cont)
				}
				r := e.dpsOwner("POST", "/enrollmentGroups/query", map[string]any{"query": "*"}, h...)
				wantStatus(t, r, 200)
				var page []map[string]any
				r.json(t, &page)
				all = append(all, page...)
				if cont = r.header.Get("x-ms-continuation"); cont == "" {
					break
				}
			}
			if len(all) != 3 {
				t.Errorf("queried %d groups, want 3", len(all))
			}
			for _, g := range all {
				if sk, ok := g["attestation"].(map[string]any)["symmetricKey"].(map[string]any); ok && sk["primaryKey"] != nil {
					t.Errorf("a query result holds keys: %v", g)
				}
			}
		})
		t.Run("Delete", func(t *testing.T) {
			wantStatus(t, e.dpsOwner("DELETE", "/enrollmentGroups/gx", nil), 204)
			wantDPSError(t, e.dpsOwner("GET", "/enrollmentGroups/gx", nil), 404, 404201)
			wantDPSError(t, e.dpsOwner("DELETE", "/enrollmentGroups/gx", nil), 404, 404201)
		})
		t.Run("Auth", func(t *testing.T) {
			wantStatus(t, e.do("GET", hostDPS, "/enrollmentGroups/g1", "", nil), 401)
			wantStatus(t, e.do("GET", hostDPS, "/enrollmentGroups/g1", e.hubToken(e.hubA, "iothubowner"), nil), 401)
			wantDPSError(t, e.do("GET", hostA, "/enrollmentGroups/g1", e.dpsToken(), nil), 404, 404001) // no DPS at hub A's host
		})
	})
}

func TestEnrollmentsAndRegistrations(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		r := e.dpsOwner("PUT", "/enrollments/Dev-1", map[string]any{"registrationId": "Dev-1", "deviceId": "device-1",
			"attestation": map[string]any{"type": "symmetricKey"}})
		wantStatus(t, r, 200)
		en := r.obj(t)
		if en["registrationId"] != "dev-1" || en["deviceId"] != "device-1" || en["provisioningStatus"] != "enabled" {
			t.Errorf("enrollment %s", r.body)
		}
		leaf, _, err := pki.NewSelfSignedCert("dev-x", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r = e.dpsOwner("PUT", "/enrollments/dev-x", map[string]any{"attestation": map[string]any{"type": "x509",
			"x509": map[string]any{"clientCertificates": map[string]any{"primary": map[string]any{"certificate": base64.StdEncoding.EncodeToString(leaf.Raw)}}}}})
		wantStatus(t, r, 200)
		stored, err := s.GetIndividualEnrollment(ctx, e.dps.ID, "dev-x")
		if err != nil {
			t.Fatal(err)
		}
		if stored.Attestation.PrimaryThumbprint != pki.ThumbprintSHA256(leaf) {
			t.Errorf("thumbprint %q, want %q", stored.Attestation.PrimaryThumbprint, pki.ThumbprintSHA256(leaf))
		}
		t.Run("SigningCertsRefused", func(t *testing.T) {
			r := e.dpsOwner("PUT", "/enrollments/dev-y", map[string]any{"attestation": map[string]any{"type": "x509",
				"x509": map[string]any{"caReferences": map[string]any{"primary": "ca"}}}})
			wantDPSError(t, r, 400, 400004)
		})
		t.Run("Query", func(t *testing.T) {
			r := e.dpsOwner("POST", "/enrollments/query", map[string]any{"query": "*"})
			wantStatus(t, r, 200)
			var list []map[string]any
			r.json(t, &list)
			if len(list) != 2 {
				t.Errorf("%d enrollments", len(list))
			}
			wantDPSError(t, e.dpsOwner("POST", "/enrollments/query", map[string]any{"query": "SELECT * FROM enrollments WHERE x = 1"}), 400, 400004)
		})

		// Registration records come from the device side; write them directly.
		now := time.Now()
		if err := s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: e.dps.ID, ID: "g1", Status: ferry.EnrollmentEnabled,
			Attestation: ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: ferry.NewKey(64), SecondaryKey: ferry.NewKey(64)},
			CreatedAt:   now, UpdatedAt: now}, ""); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := s.PutRegistration(ctx, &ferry.RegistrationRecord{ServiceID: e.dps.ID, RegistrationID: fmt.Sprintf("g-dev-%d", i),
				EnrollmentGroupID: "g1", DeviceID: fmt.Sprintf("g-dev-%d", i), AssignedHub: hostA, Status: ferry.RegistrationAssigned,
				Substatus: ferry.SubstatusInitialAssignment, CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutRegistration(ctx, &ferry.RegistrationRecord{ServiceID: e.dps.ID, RegistrationID: "dev-1", DeviceID: "device-1",
			AssignedHub: hostB, Status: ferry.RegistrationAssigned, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		t.Run("EnrollmentShowsRegistration", func(t *testing.T) {
			r := e.dpsOwner("GET", "/enrollments/dev-1", nil)
			wantStatus(t, r, 200)
			rs, ok := r.obj(t)["registrationState"].(map[string]any)
			if !ok || rs["assignedHub"] != hostB || rs["status"] != "assigned" {
				t.Errorf("enrollment %s", r.body)
			}
		})
		t.Run("GetRegistration", func(t *testing.T) {
			r := e.dpsOwner("GET", "/registrations/g-dev-1", nil)
			wantStatus(t, r, 200)
			reg := r.obj(t)
			for _, f := range []string{"registrationId", "createdDateTimeUtc", "assignedHub", "deviceId", "status", "substatus", "lastUpdatedDateTimeUtc", "etag"} {
				if _, ok := reg[f]; !ok {
					t.Errorf("registration has no %s: %s", f, r.body)
				}
			}
			wantDPSError(t, e.dpsOwner("GET", "/registrations/nope", nil), 404, 404202)
		})
		t.Run("QueryGroupRegistrations", func(t *testing.T) {
			r := e.dpsOwner("POST", "/registrations/g1/query", map[string]any{"query": "*"}, "x-ms-max-item-count", "2")
			wantStatus(t, r, 200)
			var page []map[string]any
			r.json(t, &page)
			cont := r.header.Get("x-ms-continuation")
			if len(page) != 2 || cont == "" {
				t.Fatalf("first page %d, continuation %q", len(page), cont)
			}
			r = e.dpsOwner("POST", "/registrations/g1/query", map[string]any{"query": "*"}, "x-ms-max-item-count", "2", "x-ms-continuation", cont)
			r.json(t, &page)
			if len(page) != 1 || r.header.Get("x-ms-continuation") != "" {
				t.Errorf("second page %d", len(page))
			}
			wantDPSError(t, e.dpsOwner("POST", "/registrations/nope/query", map[string]any{"query": "*"}), 404, 404201)
		})
		t.Run("DeleteRegistration", func(t *testing.T) {
			wantStatus(t, e.dpsOwner("DELETE", "/registrations/g-dev-0", nil), http.StatusNoContent)
			wantDPSError(t, e.dpsOwner("GET", "/registrations/g-dev-0", nil), 404, 404202)
		})
		t.Run("DeleteEnrollment", func(t *testing.T) {
			wantDPSError(t, e.dpsOwner("DELETE", "/enrollments/dev-1", nil, "If-Match", `"stale"`), 412, 412201)
			wantStatus(t, e.dpsOwner("DELETE", "/enrollments/dev-1", nil, "If-Match", "*"), http.StatusNoContent)
		})
	})
}
