package pki_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry/pki"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func mustLoad(t testing.TB, dir string, names []string, now time.Time) *pki.Authority {
	t.Helper()
	a, err := pki.LoadOrCreate(dir, names, now)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return a
}

func TestLoadOrCreateReusesAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	names := []string{"localhost", "127.0.0.1", "ferry.example.com"}
	a1 := mustLoad(t, dir, names, t0)
	before := readFiles(t, dir)
	a2 := mustLoad(t, dir, names, t0.Add(24*time.Hour))
	after := readFiles(t, dir)

	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Errorf("%s changed on restart", name)
		}
	}
	if !a1.CACert().Equal(a2.CACert()) {
		t.Error("CA changed on restart")
	}
	if !bytes.Equal(a1.ServerCertificate().Certificate[0], a2.ServerCertificate().Certificate[0]) {
		t.Error("server certificate changed on restart")
	}
	leaf := a2.ServerCertificate().Leaf
	if got, want := leaf.DNSNames, []string{"localhost", "ferry.example.com"}; !slices.Equal(got, want) {
		t.Errorf("DNSNames = %v, want %v", got, want)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IPAddresses = %v, want [127.0.0.1]", leaf.IPAddresses)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a2.CAPool(), DNSName: "ferry.example.com", CurrentTime: t0}); err != nil {
		t.Errorf("server certificate does not chain to the CA: %v", err)
	}
	if !bytes.Equal(a2.CACertPEM(), before[pki.CACertFile]) {
		t.Error("CACertPEM differs from ca.crt")
	}
}

func TestLoadOrCreateKeyPermissions(t *testing.T) {
	dir := t.TempDir()
	mustLoad(t, dir, nil, t0)
	for _, name := range []string{pki.CAKeyFile, pki.ServerKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode = %o, want 600", name, perm)
		}
	}
}

func TestLoadOrCreateBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		wantMsg string
	}{
		{"CorruptCACert", func(t *testing.T, dir string) { write(t, dir, pki.CACertFile, "not a certificate") }, "ca.crt"},
		{"CorruptCAKey", func(t *testing.T, dir string) {
			write(t, dir, pki.CAKeyFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		}, "ca.key"},
		{"CACertWithoutKey", func(t *testing.T, dir string) { remove(t, dir, pki.CAKeyFile) }, "ca.key is missing"},
		{"CAKeyWithoutCert", func(t *testing.T, dir string) { remove(t, dir, pki.CACertFile) }, "ca.crt is missing"},
		{"UnreadableCACert", func(t *testing.T, dir string) {
			remove(t, dir, pki.CACertFile)
			if err := os.Mkdir(filepath.Join(dir, pki.CACertFile), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "ca.crt"},
		{"CAKeyOfAnotherCA", func(t *testing.T, dir string) {
			other := t.TempDir()
			mustLoad(t, other, nil, t0)
			b, err := os.ReadFile(filepath.Join(other, pki.CAKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			write(t, dir, pki.CAKeyFile, string(b))
		}, "does not match"},
		{"ServerCertWithoutKey", func(t *testing.T, dir string) { remove(t, dir, pki.ServerKeyFile) }, "server.key is missing"},
		{"CorruptServerCert", func(t *testing.T, dir string) { write(t, dir, pki.ServerCertFile, "junk") }, "server.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustLoad(t, dir, nil, t0)
			tt.corrupt(t, dir)
			before := readFilesLenient(dir)
			_, err := pki.LoadOrCreate(dir, nil, t0)
			if err == nil {
				t.Fatal("LoadOrCreate succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			after := readFilesLenient(dir)
			if len(before) != len(after) {
				t.Errorf("files changed: before %d, after %d", len(before), len(after))
			}
			for name, b := range before {
				if !bytes.Equal(b, after[name]) {
					t.Errorf("%s was rewritten", name)
				}
			}
		})
	}
}

func readFilesLenient(dir string) map[string][]byte {
	out := map[string][]byte{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = b
	}
	return out
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateReissuesServerCert(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		now   time.Time
	}{
		{"HostnamesChanged", []string{"localhost", "127.0.0.1", "new.example.com"}, t0},
		{"NearExpiry", nil, t0.Add(pki.ServerLifetime - 10*24*time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a1 := mustLoad(t, dir, nil, t0)
			caBefore := readFiles(t, dir)
			a2 := mustLoad(t, dir, tt.names, tt.now)
			caAfter := readFiles(t, dir)
			for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
				if !bytes.Equal(caBefore[f], caAfter[f]) {
					t.Errorf("%s changed", f)
				}
			}
			if bytes.Equal(a1.ServerCertificate().Certificate[0], a2.ServerCertificate().Certificate[0]) {
				t.Fatal("server certificate was not reissued")
			}
			if err := a2.ServerCertificate().Leaf.CheckSignatureFrom(a1.CACert()); err != nil {
				t.Errorf("new server certificate not signed by the same CA: %v", err)
			}
			// And it is what a third start finds.
			a3 := mustLoad(t, dir, tt.names, tt.now)
			if !bytes.Equal(a2.ServerCertificate().Certificate[0], a3.ServerCertificate().Certificate[0]) {
				t.Error("reissued certificate was not kept")
			}
			if fi, err := os.Stat(filepath.Join(dir, pki.ServerKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("server.key after reissue: %v, %v", fi.Mode(), err)
			}
		})
	}
}

// handshake runs one TLS handshake plus a byte each way against srv and
// returns the client's view of the connection.
func handshake(t testing.TB, srv *tls.Config, cli *tls.Config) tls.ConnectionState {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			done <- err
			return
		}
		_, err = c.Write(b)
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState()
}

func TestServerTLSConfigHandshake(t *testing.T) {
	a := mustLoad(t, t.TempDir(), nil, time.Now())
	srv := a.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"mqtt"}, ClientAuth: tls.RequestClientCert})

	tests := []struct {
		name      string
		curves    []tls.CurveID
		maxVer    uint16
		wantCurve tls.CurveID
	}{
		{"DefaultGoClientGetsX25519", nil, 0, tls.X25519},
		{"P256Only", []tls.CurveID{tls.CurveP256}, 0, tls.CurveP256},
		{"HybridOnlyClient", []tls.CurveID{tls.X25519MLKEM768}, 0, tls.X25519MLKEM768},
		{"TLS12", nil, tls.VersionTLS12, tls.X25519},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli := &tls.Config{RootCAs: a.CAPool(), ServerName: "localhost", NextProtos: []string{"mqtt"}, CurvePreferences: tt.curves, MaxVersion: tt.maxVer}
			st := handshake(t, srv, cli)
			if st.CurveID != tt.wantCurve {
				t.Errorf("curve = %v, want %v", st.CurveID, tt.wantCurve)
			}
			if st.NegotiatedProtocol != "mqtt" {
				t.Errorf("ALPN = %q, want mqtt", st.NegotiatedProtocol)
			}
		})
	}

	t.Run("ClientCertificateReachesServer", func(t *testing.T) {
		cert, key, err := pki.NewSelfSignedCert("device-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		s := srv.Clone()
		s.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				got <- pki.ThumbprintSHA256(cs.PeerCertificates[0])
			}
			return nil
		}
		cli := &tls.Config{RootCAs: a.CAPool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{pki.TLSCertificate(cert, key)}}
		handshake(t, s, cli)
		select {
		case tp := <-got:
			if tp != pki.ThumbprintSHA256(cert) {
				t.Errorf("server saw thumbprint %s, want %s", tp, pki.ThumbprintSHA256(cert))
			}
		default:
			t.Error("server saw no client certificate")
		}
	})

	t.Run("SessionResumption", func(t *testing.T) {
		cli := &tls.Config{RootCAs: a.CAPool(), ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		if st := handshake(t, srv, cli); st.DidResume {
			t.Fatal("first handshake resumed")
		}
		if st := handshake(t, srv, cli); !st.DidResume {
			t.Error("second handshake did not resume")
		}
	})
}

func benchmarkHandshake(b *testing.B, resume bool, curves []tls.CurveID) {
	a := mustLoad(b, b.TempDir(), nil, time.Now())
	srv := a.ServerTLSConfig(pki.TLSOptions{})
	cli := &tls.Config{RootCAs: a.CAPool(), ServerName: "localhost", CurvePreferences: curves}
	if resume {
		cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		handshake(b, srv, cli)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err == nil {
					_, _ = c.Write(b)
				}
			}()
		}
	}()
	addr := ln.Addr().String()
	b.ResetTimer()
	for b.Loop() {
		c, err := tls.Dial("tcp", addr, cli)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte{1}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		if resume && !c.ConnectionState().DidResume {
			b.Fatal("did not resume")
		}
		c.Close()
	}
}

// BenchmarkHandshake measures a TLS 1.3 handshake (client and server on one
// machine, so both sides' costs count) with the configuration Ferry serves:
// a default Go client (X25519 chosen), the same resuming a session, and a
// client that offers only the X25519MLKEM768 hybrid, which Ferry accepts
// but does not choose when it has a choice.
func BenchmarkHandshake(b *testing.B) {
	b.Run("Full", func(b *testing.B) { benchmarkHandshake(b, false, nil) })
	b.Run("Resumed", func(b *testing.B) { benchmarkHandshake(b, true, nil) })
	b.Run("FullHybridOnly", func(b *testing.B) { benchmarkHandshake(b, false, []tls.CurveID{tls.X25519MLKEM768}) })
}
