package device

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// DefaultPort is the MQTT over TLS port of hubs and provisioning services.
const DefaultPort = 8883

// Transport says how the SDK reaches a server: over TLS (the default) or
// plain TCP for development listeners, from which source address, and with
// which timeouts. The zero value dials TLS on port 8883 with the system roots.
type Transport struct {
	// TLS configures TLS; nil means the system roots. ServerName defaults to
	// the host dialled. A client certificate for X.509 attestation is added
	// by the SDK from the certificate in the provisioning or device config.
	TLS *tls.Config
	// Plain dials plain TCP, for development listeners only.
	Plain bool
	// Port is used when the host has no port of its own; 0 means 8883.
	Port int
	// LocalAddr is the source IP to dial from (e.g. "127.0.0.7"), so that a
	// load generator can open more connections than one address allows.
	LocalAddr string
	// DialTimeout bounds the TCP connect, TLS handshake and CONNACK; 0: 10 s.
	DialTimeout time.Duration
	// KeepAlive is the MQTT keep-alive; 0: 180 s, as the Node SDK sends.
	KeepAlive time.Duration
}

func (t Transport) dialTimeout() time.Duration {
	if t.DialTimeout > 0 {
		return t.DialTimeout
	}
	return 10 * time.Second
}

// address returns host:port to dial and the TLS server name for host, which
// may carry its own port.
func (t Transport) address(host string) (addr, serverName string) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return host, h
	}
	port := t.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), host
}

// options returns paho options that dial host with this transport. The
// caller adds identity, credentials and handlers.
func (t Transport) options(host string, cert *tls.Certificate) *paho.ClientOptions {
	addr, serverName := t.address(host)
	keepAlive := t.KeepAlive
	if keepAlive == 0 {
		keepAlive = 180 * time.Second
	}
	o := paho.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(t.dialTimeout()).
		SetWriteTimeout(t.dialTimeout()).
		SetKeepAlive(keepAlive).
		SetPingTimeout(t.dialTimeout()).
		SetOrderMatters(false)
	o.SetCustomOpenConnectionFn(func(_ *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		return t.dial(context.Background(), addr, serverName, cert)
	})
	return o
}

func (t Transport) dial(ctx context.Context, addr, serverName string, cert *tls.Certificate) (net.Conn, error) {
	d := net.Dialer{Timeout: t.dialTimeout()}
	if t.LocalAddr != "" {
		ip := net.ParseIP(t.LocalAddr)
		if ip == nil {
			return nil, fmt.Errorf("dial %s: bad local address %q", addr, t.LocalAddr)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
		d.Control = bindNoPort
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if t.Plain {
		return conn, nil
	}
	var cfg *tls.Config
	if t.TLS != nil {
		cfg = t.TLS.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
		if cfg.ClientSessionCache != nil && len(cert.Certificate) > 0 {
			// A resumed session keeps the certificate of the session it
			// resumes: never resume another device's session.
			sum := sha256.Sum256(cert.Certificate[0])
			cfg.ClientSessionCache = certCache{inner: cfg.ClientSessionCache, prefix: hex.EncodeToString(sum[:8]) + "/"}
		}
	}
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.dialTimeout())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// certCache keeps one device's TLS sessions apart from the others' in a
// shared cache.
type certCache struct {
	inner  tls.ClientSessionCache
	prefix string
}

func (c certCache) Get(key string) (*tls.ClientSessionState, bool) {
	return c.inner.Get(c.prefix + key)
}
func (c certCache) Put(key string, cs *tls.ClientSessionState) { c.inner.Put(c.prefix+key, cs) }

// wait waits for a paho token, the context or the timeout, whichever first.
func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errTimeout
	}
}
