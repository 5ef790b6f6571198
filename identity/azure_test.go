package identity_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store/storetest"
)

// The official Azure SDK's ClientSecretCredential, with Ferry as its
// authority host, gets a token that Ferry accepts, and an azcore pipeline
// with the SDK's bearer-token policy calls a protected route with it.
func TestAzureSDKClientSecretCredential(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ca, err := pki.LoadOrCreate(t.TempDir(), nil, time.Now())
		must(t, err)
		mux := http.NewServeMux()
		srv := httptest.NewUnstartedServer(mux)
		srv.TLS = ca.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"http/1.1"}})
		srv.StartTLS()
		t.Cleanup(srv.Close)

		svc, err := identity.New(identity.Config{Store: s, Issuer: srv.URL, Audience: "api://ferry"})
		must(t, err)
		boot, err := svc.Bootstrap(ctx, "")
		must(t, err)
		svc.Register(mux)
		mux.Handle("GET /whoami", svc.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]string{"id": ferry.CallerFromContext(r.Context()).ID()})
		})))
		sp, secret, err := svc.CreateServicePrincipal(ctx, "sdk")
		must(t, err)

		transport := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CAPool()}}}
		clientOpts := azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.URL + "/", Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}},
			Transport: transport,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		}
		cred, err := azidentity.NewClientSecretCredential(boot.TenantID, sp.Name, secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            clientOpts,
			DisableInstanceDiscovery: true,
		})
		must(t, err)
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		scopes := []string{"api://ferry/.default"}
		tok, err := cred.GetToken(tctx, policy.TokenRequestOptions{Scopes: scopes})
		if err != nil {
			t.Fatalf("GetToken: %v", err)
		}
		claims, err := svc.VerifyToken(ctx, tok.Token)
		must(t, err)
		if claims.ObjectID != sp.ID || claims.TenantID != boot.TenantID || claims.Type != ferry.PrincipalServicePrincipal {
			t.Errorf("claims = %+v", claims)
		}
		if d := time.Until(tok.ExpiresOn); d < 50*time.Minute || d > 61*time.Minute {
			t.Errorf("ExpiresOn in %v, want about an hour", d)
		}

		pl := runtime.NewPipeline("ferrytest", "v0.0.0", runtime.PipelineOptions{
			PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, scopes, nil)},
		}, &clientOpts)
		req, err := runtime.NewRequest(tctx, http.MethodGet, srv.URL+"/whoami")
		must(t, err)
		resp, err := pl.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var who map[string]string
		must(t, json.NewDecoder(resp.Body).Decode(&who))
		if resp.StatusCode != 200 || who["id"] != sp.ID {
			t.Errorf("whoami = %d %v", resp.StatusCode, who)
		}

		t.Run("WrongSecret", func(t *testing.T) {
			bad, err := azidentity.NewClientSecretCredential(boot.TenantID, sp.Name, "wrong-secret", &azidentity.ClientSecretCredentialOptions{
				ClientOptions: clientOpts, DisableInstanceDiscovery: true,
			})
			must(t, err)
			_, err = bad.GetToken(tctx, policy.TokenRequestOptions{Scopes: scopes})
			if err == nil {
				t.Fatal("GetToken with a wrong secret succeeded")
			}
		})
	})
}
