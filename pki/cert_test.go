package pki_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/pki"
)

func TestIssueClientCertChainsToCA(t *testing.T) {
	ca, caKey, err := pki.NewCA("Test CA", t0)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := pki.IssueClientCert(ca, caKey, "device-42", t0)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "device-42" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestThumbprints(t *testing.T) {
	cert, _, err := pki.NewSelfSignedCert("dev", t0)
	if err != nil {
		t.Fatal(err)
	}
	s1, s256 := pki.ThumbprintSHA1(cert), pki.ThumbprintSHA256(cert)
	if len(s1) != 40 || len(s256) != 64 || s1 != strings.ToUpper(s1) || s256 != strings.ToUpper(s256) {
		t.Fatalf("thumbprints %q %q: want uppercase hex of 40 and 64", s1, s256)
	}
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"Uppercase", s1, s1, false},
		{"LowercaseWithColons", colons(strings.ToLower(s256)), s256, false},
		{"Spaces", strings.Join([]string{s1[:10], s1[10:]}, " "), s1, false},
		{"WrongLength", s1[:20], "", true},
		{"NotHex", strings.Repeat("Z", 40), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pki.NormalizeThumbprint(tt.in)
			if tt.wantErr {
				if !ferry.IsCode(err, ferry.EINVALID) {
					t.Errorf("err = %v, want EINVALID", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizeThumbprint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func colons(s string) string {
	var parts []string
	for i := 0; i < len(s); i += 2 {
		parts = append(parts, s[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestCheckVerificationCert(t *testing.T) {
	ca, caKey, err := pki.NewCA("Owner CA", t0)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, otherKey, err := pki.NewCA("Other CA", t0)
	if err != nil {
		t.Fatal(err)
	}
	_ = otherCA
	code, err := pki.NewVerificationCode()
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := pki.IssueClientCert(ca, caKey, code, t0)
	if err != nil {
		t.Fatal(err)
	}
	wrongCN, _, err := pki.IssueClientCert(ca, caKey, "something-else", t0)
	if err != nil {
		t.Fatal(err)
	}
	wrongSigner, _, err := pki.IssueClientCert(otherCA, otherKey, code, t0)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned, _, err := pki.NewSelfSignedCert(code, t0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		code string
		ok   bool
	}{
		{"Good", good, code, true},
		{"CodeCaseInsensitive", good, strings.ToLower(code), true},
		{"WrongCommonName", wrongCN, code, false},
		{"SignedByAnotherKey", wrongSigner, code, false},
		{"SelfSigned", selfSigned, code, false},
		{"EmptyCode", good, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pki.CheckVerificationCert(ca, tt.cert, tt.code)
			if tt.ok && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if !tt.ok && !ferry.IsCode(err, ferry.EINVALID) {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestPEMRoundTrip(t *testing.T) {
	ca, caKey, err := pki.NewCA("CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := pki.IssueClientCert(ca, caKey, "d", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pki.EncodeCertPEM(leaf), pki.EncodeCertPEM(ca)...)
	certs, err := pki.ParseCertsPEM(chain)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(leaf) || !certs[1].Equal(ca) {
		t.Errorf("ParseCertsPEM returned %d certificates, not the chain", len(certs))
	}
	keyPEM, err := pki.EncodeKeyPEM(caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !caKey.PublicKey.Equal(key.Public()) {
		t.Error("key changed in a round trip")
	}
	for _, bad := range []string{"", "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := pki.ParseCertPEM([]byte(bad)); !ferry.IsCode(err, ferry.EINVALID) {
			t.Errorf("ParseCertPEM(%q) err = %v, want EINVALID", bad, err)
		}
	}
}
