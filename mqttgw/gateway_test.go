package mqttgw_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
)

// refuseAll is a DeviceHubs that admits nobody.
type refuseAll struct{}

func (refuseAll) ConnectDevice(context.Context, *mqttgw.ConnectRequest) (mqttgw.Session, error) {
	return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "not authorized")
}

// TestStalledTLSHandshakeIsDropped: a client that opens a TCP connection to
// the TLS listener and never says hello is closed after ConnectTimeout, so
// it cannot hold a connection slot.
func TestStalledTLSHandshakeIsDropped(t *testing.T) {
	auth, err := pki.LoadOrCreate(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mqttgw.New(mqttgw.Config{Hubs: refuseAll{}, ConnectTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	ln, err := tls.Listen("tcp", "127.0.0.1:0", auth.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"mqtt"}, ClientAuth: tls.RequestClientCert}))
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(ln)

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The deadline only keeps a broken gateway from hanging the test.
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the gateway kept a stalled handshake open")
	}
	if err == nil {
		t.Fatal("the gateway wrote to a client that sent no hello")
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		t.Logf("read: %v", err) // a reset is as good as an EOF
	}
}
