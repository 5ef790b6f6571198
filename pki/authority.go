package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names inside the directory given to LoadOrCreate.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// renewBefore is how long before expiry LoadOrCreate replaces the server
// certificate.
const renewBefore = 30 * 24 * time.Hour

// DefaultHostnames are the names of the server certificate when none are given.
var DefaultHostnames = []string{"localhost", "127.0.0.1"}

// Authority is Ferry's own certificate authority with the server
// certificate it issued for this node.
type Authority struct {
	caCert *x509.Certificate
	caKey  crypto.Signer
	server tls.Certificate
}

// LoadOrCreate returns the authority kept in dir. On first start it creates
// a root CA and a server certificate for hostnames (IP addresses go to the
// certificate's IP addresses) with keys readable by the owner only. Later it
// reuses them, and replaces only the server certificate, signed by the same
// CA, when the names changed or it nears expiry.
//
// It never writes over CA files: a CA file that cannot be read or parsed, or
// a certificate without its key, is an error.
func LoadOrCreate(dir string, hostnames []string, now time.Time) (*Authority, error) {
	if len(hostnames) == 0 {
		hostnames = DefaultHostnames
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create directory: %w", err)
	}
	caCert, caKey, err := loadOrCreateCA(dir, now)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	a := &Authority{caCert: caCert, caKey: caKey}
	server, err := loadOrIssueServer(dir, caCert, caKey, hostnames, now)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	a.server = server
	return a, nil
}

// loadPair reads a certificate and its key. It reports found=false when
// neither file exists, and an error when only one does or either is unreadable.
func loadPair(dir, certName, keyName string) (cert *x509.Certificate, key crypto.Signer, found bool, err error) {
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		return nil, nil, false, nil
	case certMissing:
		return nil, nil, false, fmt.Errorf("%s exists but %s is missing; restore it or remove both", keyPath, certPath)
	case keyMissing:
		return nil, nil, false, fmt.Errorf("%s exists but %s is missing; restore it or remove both", certPath, keyPath)
	case certErr != nil:
		return nil, nil, false, fmt.Errorf("read %s: %w", certPath, certErr)
	case keyErr != nil:
		return nil, nil, false, fmt.Errorf("read %s: %w", keyPath, keyErr)
	}
	cert, err = ParseCertPEM(certPEM)
	if err != nil {
		return nil, nil, false, fmt.Errorf("parse %s: %w", certPath, err)
	}
	key, err = ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, false, fmt.Errorf("parse %s: %w", keyPath, err)
	}
	return cert, key, true, nil
}

func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func loadOrCreateCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	cert, key, found, err := loadPair(dir, CACertFile, CAKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate authority: %w", err)
	}
	if found {
		if !keyMatches(cert, key) {
			return nil, nil, fmt.Errorf("certificate authority: %s does not match %s", CAKeyFile, CACertFile)
		}
		if !cert.IsCA {
			return nil, nil, fmt.Errorf("certificate authority: %s is not a CA certificate", CACertFile)
		}
		if now.After(cert.NotAfter) {
			return nil, nil, fmt.Errorf("certificate authority: %s expired on %s", CACertFile, cert.NotAfter.Format(time.DateOnly))
		}
		return cert, key, nil
	}
	cert, ecKey, err := NewCA("Ferry Root CA", now)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := EncodeKeyPEM(ecKey)
	if err != nil {
		return nil, nil, err
	}
	// The key goes first: a crash between the two leaves a key without a
	// certificate, which the next start reports instead of guessing.
	if err := writeNew(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeNew(filepath.Join(dir, CACertFile), EncodeCertPEM(cert), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, ecKey, nil
}

func loadOrIssueServer(dir string, caCert *x509.Certificate, caKey crypto.Signer, hostnames []string, now time.Time) (tls.Certificate, error) {
	cert, key, found, err := loadPair(dir, ServerCertFile, ServerKeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server certificate: %w", err)
	}
	if found && !needsReissue(cert, key, caCert, hostnames, now) {
		return TLSCertificate(cert, key), nil
	}
	cert, ecKey, err := IssueServerCert(caCert, caKey, hostnames, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := EncodeKeyPEM(ecKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := replaceFile(filepath.Join(dir, ServerKeyFile), keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := replaceFile(filepath.Join(dir, ServerCertFile), EncodeCertPEM(cert), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return TLSCertificate(cert, ecKey), nil
}

// needsReissue reports whether a stored server certificate must be
// replaced. The pair is derived from the CA, so replacing it loses nothing.
func needsReissue(cert *x509.Certificate, key crypto.Signer, caCert *x509.Certificate, hostnames []string, now time.Time) bool {
	dns, ips := splitNames(hostnames)
	return !keyMatches(cert, key) ||
		cert.CheckSignatureFrom(caCert) != nil ||
		now.Add(renewBefore).After(cert.NotAfter) ||
		now.Before(cert.NotBefore) ||
		!slices.Equal(nameSet(cert.DNSNames, cert.IPAddresses), nameSet(dns, ips))
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// replaceFile writes a file through a temporary one and a rename, so that a
// reader never sees half of it.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := writeNew(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// CACert returns the CA certificate.
func (a *Authority) CACert() *x509.Certificate { return a.caCert }

// CACertPEM returns the CA certificate in PEM, for clients to trust.
func (a *Authority) CACertPEM() []byte { return EncodeCertPEM(a.caCert) }

// CAPool returns a pool holding only the CA certificate.
func (a *Authority) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.caCert)
	return p
}

// ServerCertificate returns the server certificate with its key.
func (a *Authority) ServerCertificate() tls.Certificate { return a.server }

// IssueClientCert returns a client certificate with common name cn signed by
// the authority, for devices and tests that trust Ferry's CA.
func (a *Authority) IssueClientCert(cn string, now time.Time) (tls.Certificate, error) {
	cert, key, err := IssueClientCert(a.caCert, a.caKey, cn, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	return TLSCertificate(cert, key), nil
}

// TLSOptions are the per-listener settings of ServerTLSConfig.
type TLSOptions struct {
	NextProtos []string           // ALPN protocols, such as "h2", "http/1.1" or "mqtt"
	ClientAuth tls.ClientAuthType // tls.RequestClientCert on the MQTT listener
}

// Key exchanges offered by ServerTLSConfig.
var (
	// ClassicalCurves are what a client that offers them gets, fastest first.
	ClassicalCurves = []tls.CurveID{tls.X25519, tls.CurveP256}
	// HybridCurves are the post-quantum hybrids, used only with a client that
	// offers nothing else: they cost about three times as much per handshake.
	HybridCurves = []tls.CurveID{tls.X25519MLKEM768, tls.SecP256r1MLKEM768}
)

// ServerTLSConfig returns a TLS server configuration with the server
// certificate, TLS 1.2 or later, session tickets on, and explicit key
// exchanges: X25519 and P-256 for every client that offers one of them, the
// hybrid post-quantum exchanges only for a client that offers nothing else.
// (Go's server picks a hybrid whenever both sides offer one, so it is left
// out unless needed.)
func (a *Authority) ServerTLSConfig(opts TLSOptions) *tls.Config {
	cfg := &tls.Config{
		Certificates:     []tls.Certificate{a.server},
		MinVersion:       tls.VersionTLS12,
		CurvePreferences: slices.Clone(ClassicalCurves),
		NextProtos:       slices.Clone(opts.NextProtos),
		ClientAuth:       opts.ClientAuth,
	}
	hybrid := cfg.Clone()
	hybrid.CurvePreferences = slices.Concat(HybridCurves, ClassicalCurves)
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if offersAny(hello.SupportedCurves, ClassicalCurves) || !offersAny(hello.SupportedCurves, HybridCurves) {
			return nil, nil
		}
		return hybrid, nil
	}
	return cfg
}

func offersAny(offered, wanted []tls.CurveID) bool {
	return slices.ContainsFunc(offered, func(c tls.CurveID) bool { return slices.Contains(wanted, c) })
}
