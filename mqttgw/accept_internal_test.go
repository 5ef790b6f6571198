package mqttgw

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

// failingListener answers Accept with its errors in turn, then ErrClosed.
type failingListener struct {
	net.Listener
	errs []error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if len(l.errs) == 0 {
		return nil, net.ErrClosed
	}
	err := l.errs[0]
	l.errs = l.errs[1:]
	return nil, err
}

func (l *failingListener) Close() error { return nil }

// TestServeOutlivesFileExhaustion: running out of file descriptors (or an
// aborted connection) does not stop the listener; another error does.
func TestServeOutlivesFileExhaustion(t *testing.T) {
	newGateway := func(t *testing.T) *Gateway {
		g, err := New(Config{Hubs: nopHubs{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Close() })
		return g
	}
	accept := func(err error) error { return &net.OpError{Op: "accept", Net: "tcp", Err: err} }

	g := newGateway(t)
	ln := &failingListener{errs: []error{accept(syscall.EMFILE), accept(syscall.ENFILE), accept(syscall.ECONNABORTED)}}
	if err := g.Serve(ln); err != nil {
		t.Fatalf("Serve stopped on a passing error: %v", err)
	}
	if len(ln.errs) != 0 {
		t.Fatalf("%d errors not reached", len(ln.errs))
	}

	g = newGateway(t)
	boom := errors.New("boom")
	if err := g.Serve(&failingListener{errs: []error{fmt.Errorf("accept: %w", boom)}}); !errors.Is(err, boom) {
		t.Fatalf("Serve = %v, want the listener's error", err)
	}
}
