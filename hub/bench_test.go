package hub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store/storetest"
	"github.com/mochi-mqtt/server/v2/packets"
)

// benchEnv is a hub on SQLite with a plain and a TLS listener.
func benchEnv(b *testing.B) (*env, string, *pki.Authority) {
	b.Helper()
	e := newEnvWith(b, storetest.OpenSQLite(b), mqttgw.Config{MaxConnections: 1 << 20}, "127.0.0.1:0")
	auth, err := pki.LoadOrCreate(b.TempDir(), nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", auth.ServerTLSConfig(pki.TLSOptions{ClientAuth: tls.RequestClientCert}))
	if err != nil {
		b.Fatal(err)
	}
	go e.gw.Serve(ln)
	return e, ln.Addr().String(), auth
}

func connectPacket(username, password, clientID string, keepalive uint16) []byte {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepalive, ClientIdentifier: clientID,
			UsernameFlag: true, Username: []byte(username), PasswordFlag: true, Password: []byte(password)}}
	var buf bytes.Buffer
	_ = pk.ConnectEncode(&buf)
	return buf.Bytes()
}

func subscribePacket(filters ...string) []byte {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1, ProtocolVersion: 4}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f})
	}
	var buf bytes.Buffer
	_ = pk.SubscribeEncode(&buf)
	return buf.Bytes()
}

// devices creates n identities and their CONNECT packets.
func devices(b *testing.B, e *env, n int) [][]byte {
	b.Helper()
	out := make([][]byte, n)
	for i := range out {
		id := fmt.Sprintf("bench-%05d", i)
		key := e.device(id)
		out[i] = connectPacket(e.hub.HostName+"/"+id+"/?api-version=2021-04-12", e.token(id, key, 24*time.Hour), id, 600)
	}
	return out
}

func readConnack(c net.Conn) error {
	ack := make([]byte, 4)
	if _, err := io_ReadFull(c, ack); err != nil {
		return err
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		return fmt.Errorf("CONNACK %x", ack)
	}
	return nil
}

func io_ReadFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// BenchmarkTLSConnect measures TLS handshakes (server certificate ECDSA
// P-256) plus CONNECT, SAS check and CONNACK, from 8 concurrent dialers:
// full handshakes with Go's default key exchange offer (X25519 plus the
// hybrid ML-KEM share), full handshakes offering P-256 only, and
// reconnects resuming the device's TLS session (one session cache per
// device, as the SDKs keep) with P-256 or X25519 only. Client and server
// share the process, so the figure is both sides' cost.
func BenchmarkTLSConnect(b *testing.B) {
	cases := []struct {
		name   string
		curves []tls.CurveID
		resume bool
	}{
		{"full-default", nil, false},
		{"full-p256", []tls.CurveID{tls.CurveP256}, false},
		{"resumed-p256", []tls.CurveID{tls.CurveP256}, true},
		{"resumed-x25519", []tls.CurveID{tls.X25519}, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			e, addr, auth := benchEnv(b)
			conns := devices(b, e, 256)
			cfgs := make([]*tls.Config, len(conns))
			for i := range cfgs {
				cfgs[i] = &tls.Config{RootCAs: auth.CAPool(), ServerName: "localhost", CurvePreferences: tc.curves}
				if tc.resume {
					cfgs[i].ClientSessionCache = tls.NewLRUClientSessionCache(1)
				}
			}
			dial := func(i int) (bool, error) {
				c, err := tls.Dial("tcp", addr, cfgs[i])
				if err != nil {
					return false, err
				}
				defer c.Close()
				if _, err := c.Write(conns[i]); err != nil {
					return false, err
				}
				if err := readConnack(c); err != nil {
					return false, err
				}
				return c.ConnectionState().DidResume, nil
			}
			if tc.resume {
				for i := range conns { // a first session for every device's ticket
					if _, err := dial(i); err != nil {
						b.Fatal(err)
					}
				}
			}
			var next, resumed atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := dial(int(next.Add(1)) % len(conns))
					if err != nil {
						b.Error(err)
						return
					}
					if r {
						resumed.Add(1)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "connects/s")
			if tc.resume && resumed.Load() < int64(b.N)*9/10 {
				b.Errorf("%d of %d sessions resumed", resumed.Load(), b.N)
			}
		})
	}
}

// BenchmarkTelemetryQoS1 measures QoS 1 telemetry from 100 devices, each
// waiting for its PUBACK, which comes after the export sink's fsync.
func BenchmarkTelemetryQoS1(b *testing.B) {
	e, _, _ := benchEnv(b)
	const n = 100
	clients := make([]paho.Client, n)
	for i := range clients {
		id := fmt.Sprintf("tel-%03d", i)
		clients[i] = e.connect(id, e.device(id))
	}
	payload := []byte(`{"temperature":21.5,"humidity":40}`)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(c paho.Client, id string) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				tok := c.Publish("devices/"+id+"/messages/events/%24.ct=application%2Fjson", 1, false, payload)
				tok.Wait()
				if tok.Error() != nil {
					b.Error(tok.Error())
					return
				}
			}
		}(clients[i], fmt.Sprintf("tel-%03d", i))
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMethodRoundTrip measures InvokeMethod to a paho device that answers.
func BenchmarkMethodRoundTrip(b *testing.B) {
	e, _, _ := benchEnv(b)
	c := e.connect("m1", e.device("m1"))
	c.Subscribe(mqttgw.FilterMethods, 0, func(c paho.Client, m paho.Message) {
		rid := m.Topic()[strings.LastIndex(m.Topic(), "=")+1:]
		c.Publish("$iothub/methods/res/200/?$rid="+rid, 0, false, []byte(`{"ok":true}`))
	}).Wait()
	ctx := context.Background()
	req := ferry.MethodRequest{MethodName: "ping", Payload: json.RawMessage(`{}`)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.hubs.InvokeMethod(ctx, e.hub.ID, "m1", req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleSessionMemory connects 2,000 devices that subscribe to three
// filters and then idle, and reports heap plus goroutine stacks per session.
// The plain variant is the server's share alone (a raw TCP client holds
// almost nothing); the TLS variant includes the in-process client's TLS
// state, so it is an upper bound.
func BenchmarkIdleSessionMemory(b *testing.B) {
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			e, tlsAddr, auth := benchEnv(b)
			const n = 2000
			pkts := devices(b, e, n)
			sub := subscribePacket(mqttgw.FilterMethods, mqttgw.FilterTwinRes, mqttgw.FilterTwinDesired)
			tc := &tls.Config{RootCAs: auth.CAPool(), ServerName: "localhost"}
			beforeHeap, beforeStack := memInUse()
			beforeG := runtime.NumGoroutine()
			conns := make([]net.Conn, 0, n)
			b.ResetTimer()
			for i := 0; i < n; i++ {
				var c net.Conn
				var err error
				if useTLS {
					c, err = tls.Dial("tcp", tlsAddr, tc)
				} else {
					c, err = net.Dial("tcp", e.addr)
				}
				if err != nil {
					b.Fatal(err)
				}
				conns = append(conns, c)
				c.Write(pkts[i])
				if err := readConnack(c); err != nil {
					b.Fatal(err)
				}
				c.Write(sub)
				io_ReadFull(c, make([]byte, 7)) // SUBACK with three codes
			}
			b.StopTimer()
			time.Sleep(500 * time.Millisecond)
			afterHeap, afterStack := memInUse()
			b.ReportMetric(float64(runtime.NumGoroutine()-beforeG)/n, "goroutines/session")
			if path := os.Getenv("FERRY_BENCH_HEAPPROFILE"); path != "" {
				f, err := os.Create(path)
				if err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			heap := float64(afterHeap-beforeHeap) / n / 1024
			stack := float64(afterStack-beforeStack) / n / 1024
			b.ReportMetric(heap+stack, "KiB/session")
			b.ReportMetric(heap, "heap-KiB/session")
			b.ReportMetric(stack, "stack-KiB/session")
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

func memInUse() (heap, stack uint64) {
	// Each GC may halve a stack that is mostly unused, as happens over time
	// in a running server; several cycles reach the steady state.
	for i := 0; i < 6; i++ {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}
