// Package pki creates and keeps Ferry's certificate authority and server
// certificate, and offers the X.509 helpers the device plane and its tests
// use: device certificates, thumbprints, proof of possession and PEM coding.
// It uses the standard library only, with ECDSA P-256 keys everywhere.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// Lifetimes of the certificates this package makes.
const (
	CALifetime     = 10 * 365 * 24 * time.Hour
	ServerLifetime = 397 * 24 * time.Hour
	ClientLifetime = 365 * 24 * time.Hour

	// backdate moves NotBefore back so that a peer whose clock runs a little
	// slow still accepts a certificate made a moment ago.
	backdate = time.Hour
)

// NewKey returns a new ECDSA P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new certificate: %w", err)
	}
	return cert, nil
}

// NewCA returns a new self-signed root certificate authority named cn, valid
// for CALifetime from now.
func NewCA(cn string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Ferry"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := create(tmpl, nil, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("new CA: %w", err)
	}
	return cert, key, nil
}

// IssueServerCert returns a TLS server certificate for hostnames signed by
// the CA. Names that parse as IP addresses go to IPAddresses, the rest to
// DNSNames; the first name is the subject's common name.
func IssueServerCert(caCert *x509.Certificate, caKey crypto.Signer, hostnames []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if len(hostnames) == 0 {
		return nil, nil, ferry.Errorf(ferry.EINVALID, "A server certificate needs at least one host name.")
	}
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	dns, ips := splitNames(hostnames)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hostnames[0], Organization: []string{"Ferry"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    capExpiry(now.Add(ServerLifetime), caCert),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	cert, err := create(tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("issue server certificate: %w", err)
	}
	return cert, key, nil
}

// IssueClientCert returns a TLS client certificate with common name cn
// signed by the CA. Device certificates carry the device ID as cn; a
// proof-of-possession certificate carries the verification code.
func IssueClientCert(caCert *x509.Certificate, caKey crypto.Signer, cn string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if cn == "" {
		return nil, nil, ferry.Errorf(ferry.EINVALID, "A client certificate needs a common name.")
	}
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   now.Add(-backdate),
		NotAfter:    capExpiry(now.Add(ClientLifetime), caCert),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert, err := create(tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate: %w", err)
	}
	return cert, key, nil
}

// NewSelfSignedCert returns a self-signed client certificate with common
// name cn, as devices authenticated by thumbprint use.
func NewSelfSignedCert(cn string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if cn == "" {
		return nil, nil, ferry.Errorf(ferry.EINVALID, "A certificate needs a common name.")
	}
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(ClientLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	cert, err := create(tmpl, nil, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("new self-signed certificate: %w", err)
	}
	return cert, key, nil
}

// TLSCertificate pairs a certificate (and optional chain above it) with its
// key for use in a tls.Config.
func TLSCertificate(cert *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// capExpiry keeps a certificate from outliving its issuer.
func capExpiry(notAfter time.Time, issuer *x509.Certificate) time.Time {
	if issuer != nil && notAfter.After(issuer.NotAfter) {
		return issuer.NotAfter
	}
	return notAfter
}

// splitNames sorts host names into DNS names and IP addresses, lowercased
// and without duplicates, in the order given.
func splitNames(names []string) ([]string, []net.IP) {
	var dns []string
	var ips []net.IP
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		n = strings.ToLower(n)
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

// nameSet returns the names of a certificate or a name list in one sorted,
// comparable form.
func nameSet(dns []string, ips []net.IP) []string {
	out := make([]string, 0, len(dns)+len(ips))
	for _, d := range dns {
		out = append(out, "dns:"+strings.ToLower(d))
	}
	for _, ip := range ips {
		out = append(out, "ip:"+ip.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ThumbprintSHA1 returns the SHA-1 thumbprint of a certificate in uppercase
// hex, as Azure shows it.
func ThumbprintSHA1(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// ThumbprintSHA256 returns the SHA-256 thumbprint of a certificate in
// uppercase hex, as Azure shows it.
func ThumbprintSHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// NormalizeThumbprint returns a thumbprint as typed by a person (any case,
// with colons, spaces or dashes) in the uppercase hex form of ThumbprintSHA1
// and ThumbprintSHA256. It returns EINVALID if what remains is not hex of a
// SHA-1 or SHA-256 length.
func NormalizeThumbprint(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case ':', ' ', '-', '\t':
			continue
		}
		b.WriteRune(r)
	}
	t := strings.ToUpper(b.String())
	if _, err := hex.DecodeString(t); err != nil || (len(t) != 40 && len(t) != 64) {
		return "", ferry.Errorf(ferry.EINVALID, "The thumbprint must be 40 or 64 hexadecimal characters.")
	}
	return t, nil
}

// NewVerificationCode returns a random code for proof of possession of a
// CA's key: the owner signs a certificate whose common name is the code.
func NewVerificationCode() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("verification code: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

// CheckVerificationCert checks proof of possession of caCert's key: the
// verification certificate must carry code as its common name and be signed
// by the CA's key. Returns EINVALID otherwise.
func CheckVerificationCert(caCert, verificationCert *x509.Certificate, code string) error {
	if caCert == nil || verificationCert == nil {
		return ferry.Errorf(ferry.EINVALID, "A certificate is missing.")
	}
	if code == "" || !strings.EqualFold(verificationCert.Subject.CommonName, code) {
		return ferry.Errorf(ferry.EINVALID, "The verification certificate's common name does not match the verification code.")
	}
	if err := verificationCert.CheckSignatureFrom(caCert); err != nil {
		return ferry.WrapError(ferry.EINVALID, "The verification certificate is not signed by the certificate's private key.", err)
	}
	return nil
}

// EncodeCertPEM returns a certificate as a PEM "CERTIFICATE" block.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// EncodeKeyPEM returns a private key as a PKCS #8 PEM "PRIVATE KEY" block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCertsPEM returns every certificate in PEM data, in order. Returns
// EINVALID if there is none or one does not parse.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, ferry.WrapError(ferry.EINVALID, "The certificate could not be parsed.", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "No PEM certificate found.")
	}
	return certs, nil
}

// ParseCertPEM returns the first certificate in PEM data. Returns EINVALID
// if there is none or it does not parse.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseKeyPEM returns the private key in PEM data: PKCS #8, SEC 1 ("EC
// PRIVATE KEY") or PKCS #1. Returns EINVALID if none parses.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, ferry.Errorf(ferry.EINVALID, "No PEM private key found.")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, ferry.WrapError(ferry.EINVALID, "The private key could not be parsed.", err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, ferry.Errorf(ferry.EINVALID, "The private key type is not supported.")
		}
		return s, nil
	}
}
