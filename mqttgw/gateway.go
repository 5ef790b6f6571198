// Package mqttgw is Ferry's MQTT 3.1.1 endpoint for devices: one listener
// (TLS, plain TCP for development, or WebSocket at /$iothub/websocket) that
// serves Device Provisioning Service sessions and IoT Hub sessions, routed
// by the shape of the CONNECT username. It embeds mochi-mqtt as a transport
// only: every PUBLISH of a device is handed to the hub or provisioning
// session that owns the connection, and every response is written to that one
// connection, never fanned out through the broker.
package mqttgw

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-iot/ferry"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Message is an MQTT application message.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Conn is a device connection as the gateway shows it to its session.
// Its methods are safe for concurrent use.
type Conn interface {
	// Send writes a QoS 0 PUBLISH to the device.
	Send(topic string, payload []byte) error
	// SendQoS1 writes a QoS 1 PUBLISH and returns its packet ID; the
	// session's Acked is called when the device acknowledges it.
	SendQoS1(topic string, payload []byte) (uint16, error)
	// Close drops the connection.
	Close(reason error)
}

// ConnectRequest is what a device presented when it connected.
type ConnectRequest struct {
	ClientID         string
	Username         Username
	Password         string
	HasPassword      bool
	CleanSession     bool
	KeepAlive        uint16
	Will             *Message // nil if none
	ServerName       string   // TLS server name (SNI), if any
	LocalAddr        net.Addr
	RemoteAddr       net.Addr
	PeerCertificates []*x509.Certificate // TLS client certificates, leaf first
	Conn             Conn
}

// Session is the hub's or provisioning service's side of one connection.
// The gateway calls it from the connection's read goroutine, so a device's
// packets are handled in order.
type Session interface {
	// Key names the session for takeover: a new session with the same key
	// drops the old one.
	Key() string
	// Established is called once the CONNACK has been sent.
	Established()
	// Publish handles a PUBLISH of the device. For QoS 1 the PUBACK is sent
	// after it returns nil; an error closes the connection.
	Publish(ctx context.Context, m Message) error
	// Subscribe reports whether the device may subscribe to filter.
	Subscribe(filter string) bool
	// Subscribed is called after the SUBACK granting filters was sent.
	Subscribed(filters []string)
	// Acked is called when the device acknowledges a QoS 1 PUBLISH.
	Acked(packetID uint16)
	// Closed is called once when the connection ends; graceful is true
	// after a DISCONNECT from the device.
	Closed(graceful bool)
}

// DeviceHubs authenticates hub sessions.
type DeviceHubs interface {
	// ConnectDevice authenticates a device and opens its session. An
	// EUNAUTHORIZED, EFORBIDDEN, ENOTFOUND or EINVALID error refuses it with
	// CONNACK 5; any other error with CONNACK 3 (server unavailable).
	ConnectDevice(ctx context.Context, req *ConnectRequest) (Session, error)
}

// DeviceProvisioner authenticates DPS sessions, with DeviceHubs' error rules.
type DeviceProvisioner interface {
	ConnectRegistration(ctx context.Context, req *ConnectRequest) (Session, error)
}

// Config configures a Gateway. Zero limits take the defaults.
type Config struct {
	Hubs         DeviceHubs
	Provisioning DeviceProvisioner
	Logger       *slog.Logger
	// MaxConnections sheds connections beyond it with CONNACK 3 (default
	// 200,000). The gateway lowers it to the process's open-file limit
	// less FileReserve; Capacity reports the limit in force.
	MaxConnections int64
	// FileReserve is how many open files the connection limit leaves to
	// the rest of the process (default DefaultFileReserve; negative: none).
	FileReserve int64
	// MaxPacketSize closes connections that send larger packets (default 262,144 + 1,024 bytes of header room).
	MaxPacketSize uint32
	// MaxSubscriptions per connection (default 5, as IoT Hub).
	MaxSubscriptions int
	// ConnectTimeout bounds the TLS handshake and CONNECT (default 10 s).
	ConnectTimeout time.Duration
	// WritesPending is mochi's per-client outbound queue length (default 16).
	WritesPending int32
	// BufferSize is the per-client read and write buffer size (default 1,024 bytes).
	BufferSize int
}

// Connack return codes of MQTT 3.1.1 the gateway sends.
const (
	ConnackServerUnavailable = 3
	ConnackNotAuthorized     = 5
)

// MaxKeepAlive is the largest keep-alive (seconds) the gateway honours; a
// device asking for 0 (none) or more gets this one.
const MaxKeepAlive = 1177

// Gateway is the MQTT endpoint.
type Gateway struct {
	cfg   Config
	log   *slog.Logger
	srv   *mqtt.Server
	conns sync.Map // net.Conn -> *gwConn
	codes sync.Map // net.Conn -> byte: CONNACK code override for a refused connection
	raw   sync.Map // net.Conn -> struct{}: every open connection, closed by Close
	open  int64    // connections in handle, atomic
	limit int64    // sessions accepted at most: MaxConnections within the open-file limit

	mu     sync.Mutex
	lns    []net.Listener
	closed bool
	wg     sync.WaitGroup
}

type gwConn struct {
	g        *Gateway
	cl       *mqtt.Client
	sess     Session
	graceful atomic.Bool

	mu      sync.Mutex
	subs    map[string]bool
	pending []string        // filters granted by the SUBSCRIBE being answered
	out     map[uint16]bool // outbound QoS 1 packet IDs awaiting PUBACK
}

// New returns a gateway. Call Serve for each listener and Close at the end.
func New(cfg Config) (*Gateway, error) {
	if cfg.Hubs == nil && cfg.Provisioning == nil {
		return nil, errors.New("mqttgw: no hubs and no provisioning")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 200_000
	}
	if cfg.FileReserve == 0 {
		cfg.FileReserve = DefaultFileReserve
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = 256*1024 + 1024
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = 5
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.WritesPending <= 0 {
		cfg.WritesPending = 16
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 1024
	}
	limit := connectionLimit(cfg.MaxConnections, openFileLimit(), cfg.FileReserve)
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = limit
	caps.MaximumClientWritesPending = cfg.WritesPending
	caps.MaximumPacketSize = cfg.MaxPacketSize
	caps.MaximumQos = 1
	caps.RetainAvailable = 0
	caps.MaximumInflight = 64
	caps.ReceiveMaximum = 64
	caps.MaximumSessionExpiryInterval = 0
	caps.MinimumProtocolVersion = 4
	caps.SharedSubAvailable = 0
	caps.WildcardSubAvailable = 1
	caps.SubIDAvailable = 0
	caps.TopicAliasMaximum = 0
	g := &Gateway{cfg: cfg, log: cfg.Logger, limit: limit}
	g.srv = mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		ClientNetWriteBufferSize: cfg.BufferSize,
		ClientNetReadBufferSize:  cfg.BufferSize,
		Logger:                   cfg.Logger.With("component", "mqtt"),
		SysTopicResendInterval:   1 << 30,
	})
	if err := g.srv.AddHook(&hook{g: g}, nil); err != nil {
		return nil, fmt.Errorf("mqttgw: add hook: %w", err)
	}
	if err := slowHousekeeping(g.srv, HousekeepingInterval); err != nil {
		return nil, err
	}
	if err := g.srv.Serve(); err != nil {
		return nil, fmt.Errorf("mqttgw: start: %w", err)
	}
	return g, nil
}

// Serve accepts connections on ln until it is closed or the gateway is
// closed. For TLS pass a tls.Listener whose config requests client
// certificates (tls.RequestClientCert) so X.509 devices can authenticate.
func (g *Gateway) Serve(ln net.Listener) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return net.ErrClosed
	}
	g.lns = append(g.lns, ln)
	g.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			g.mu.Lock()
			closed := g.closed
			g.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if transientAccept(err) {
				// Out of file descriptors or the like: keep the listener
				// and try again as connections close, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				g.log.Warn("mqtt accept failed; retrying", "error", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("mqttgw: accept: %w", err)
		}
		backoff = 0
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.handle(c, "tcp")
		}()
	}
}

// transientAccept reports whether an Accept error passes: a timeout, the
// process or system out of file descriptors or memory for sockets, or a
// connection aborted before it was accepted.
func transientAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// handle runs one connection until it ends.
func (g *Gateway) handle(c net.Conn, listener string) {
	atomic.AddInt64(&g.open, 1)
	defer atomic.AddInt64(&g.open, -1)
	g.raw.Store(c, struct{}{})
	defer g.raw.Delete(c)
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Now().Add(g.cfg.ConnectTimeout))
	if tc, ok := c.(*tls.Conn); ok {
		// The deadline bounds the handshake. HandshakeContext would start a
		// goroutine per connection to watch its context, for nothing more.
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return
		}
	}
	err := g.srv.EstablishConnection(listener, c)
	if v, ok := g.conns.LoadAndDelete(c); ok {
		v.(*gwConn).sess.Closed(false)
	}
	g.codes.Delete(c)
	_ = c.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		g.log.Debug("mqtt connection ended", "remote", c.RemoteAddr().String(), "error", err)
	}
}

// Close stops every listener and drops every connection.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	lns := g.lns
	g.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, cl := range g.srv.Clients.GetAll() {
		cl.Stop(errors.New("server closing"))
	}
	g.raw.Range(func(k, _ any) bool {
		_ = k.(net.Conn).Close()
		return true
	})
	g.wg.Wait()
	return g.srv.Close()
}

// Connections returns the number of connections in the MQTT session state.
func (g *Gateway) Connections() int64 { return atomic.LoadInt64(&g.srv.Info.ClientsConnected) }

func (c *gwConn) Send(topic string, payload []byte) error {
	return c.cl.WritePacket(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish},
		TopicName:   topic,
		Payload:     payload,
	})
}

func (c *gwConn) SendQoS1(topic string, payload []byte) (uint16, error) {
	id, err := c.cl.NextPacketID()
	if err != nil {
		return 0, fmt.Errorf("mqttgw: packet id: %w", err)
	}
	c.mu.Lock()
	if c.out == nil {
		c.out = map[uint16]bool{}
	}
	c.out[uint16(id)] = true
	c.mu.Unlock()
	err = c.cl.WritePacket(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   topic,
		Payload:     payload,
		PacketID:    uint16(id),
	})
	if err != nil {
		c.mu.Lock()
		delete(c.out, uint16(id))
		c.mu.Unlock()
		return 0, err
	}
	return uint16(id), nil
}

func (c *gwConn) Close(reason error) {
	c.cl.Stop(reason)
}

// hook adapts mochi's hooks to sessions.
type hook struct {
	mqtt.HookBase
	g *Gateway
}

func (h *hook) ID() string { return "ferry-mqttgw" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablished, mqtt.OnDisconnect,
		mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnPacketSent, mqtt.OnPublish, mqtt.OnSubscribed:
		return true
	}
	return false
}

func (h *hook) conn(cl *mqtt.Client) *gwConn {
	if cl.Net.Conn == nil {
		return nil
	}
	v, ok := h.g.conns.Load(cl.Net.Conn)
	if !ok {
		return nil
	}
	return v.(*gwConn)
}

// tlsState returns the TLS state of a connection, if it has one.
func tlsState(c net.Conn) (tls.ConnectionState, bool) {
	switch x := c.(type) {
	case *tls.Conn:
		return x.ConnectionState(), true
	case *wsConn:
		if x.tls != nil {
			return *x.tls, true
		}
	}
	return tls.ConnectionState{}, false
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	g := h.g
	refuse := func(code byte) bool {
		g.codes.Store(cl.Net.Conn, code)
		return false
	}
	if cl.Properties.ProtocolVersion != 4 {
		return refuse(1) // unacceptable protocol version
	}
	u, err := ParseUsername(string(pk.Connect.Username))
	if err != nil {
		return refuse(ConnackNotAuthorized)
	}
	req := &ConnectRequest{
		ClientID:     pk.Connect.ClientIdentifier,
		Username:     u,
		Password:     string(pk.Connect.Password),
		HasPassword:  pk.Connect.PasswordFlag,
		CleanSession: pk.Connect.Clean,
		KeepAlive:    pk.Connect.Keepalive,
		LocalAddr:    cl.Net.Conn.LocalAddr(),
		RemoteAddr:   cl.Net.Conn.RemoteAddr(),
	}
	if pk.Connect.WillFlag {
		req.Will = &Message{Topic: pk.Connect.WillTopic, Payload: pk.Connect.WillPayload,
			QoS: pk.Connect.WillQos, Retain: pk.Connect.WillRetain}
	}
	if st, ok := tlsState(cl.Net.Conn); ok {
		req.ServerName = st.ServerName
		req.PeerCertificates = st.PeerCertificates
	}
	gc := &gwConn{g: g, cl: cl, subs: map[string]bool{}}
	req.Conn = gc
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ConnectTimeout)
	defer cancel()
	var sess Session
	aside(func() {
		switch {
		case u.Kind == KindDPS && g.cfg.Provisioning != nil:
			sess, err = g.cfg.Provisioning.ConnectRegistration(ctx, req)
		case u.Kind == KindHub && g.cfg.Hubs != nil:
			sess, err = g.cfg.Hubs.ConnectDevice(ctx, req)
		default:
			err = ferry.Errorf(ferry.ENOTFOUND, "no such endpoint")
		}
	})
	if err != nil {
		g.log.Debug("mqtt connect refused", "username", string(pk.Connect.Username), "remote", req.RemoteAddr.String(), "error", err)
		switch ferry.ErrorCode(err) {
		case ferry.EUNAUTHORIZED, ferry.EFORBIDDEN, ferry.ENOTFOUND, ferry.EINVALID:
			return refuse(ConnackNotAuthorized)
		}
		return refuse(ConnackServerUnavailable)
	}
	gc.sess = sess
	cl.ID = sess.Key()
	if cl.State.Keepalive == 0 || cl.State.Keepalive > MaxKeepAlive {
		// IoT Hub drops a silent connection after at most 1,767 s, whatever
		// keep-alive the device asked for (1.5 × 1,177 s).
		cl.State.Keepalive = MaxKeepAlive
	}
	cl.Properties.Clean = true // sessions live in the store, not in the broker
	cl.Properties.Will = mqtt.Will{}
	g.conns.Store(cl.Net.Conn, gc)
	return true
}

func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode != 0 && cl.Net.Conn != nil {
		if v, ok := h.g.codes.Load(cl.Net.Conn); ok {
			pk.ReasonCode = v.(byte)
		} else if pk.ReasonCode == 4 { // bad user name or password: Azure sends 5
			pk.ReasonCode = ConnackNotAuthorized
		}
	}
	return pk
}

func (h *hook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if c := h.conn(cl); c != nil {
		aside(c.sess.Established)
	}
}

func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if cl.Net.Conn == nil {
		return
	}
	if v, ok := h.g.conns.LoadAndDelete(cl.Net.Conn); ok {
		c := v.(*gwConn)
		graceful := c.graceful.Load()
		aside(func() { c.sess.Closed(graceful) })
	}
}

func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	c := h.conn(cl)
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if pk.FixedHeader.Qos > 1 {
			cl.Stop(packets.ErrQosNotSupported) // IoT Hub closes the connection on QoS 2
			return pk, packets.ErrRejectPacket
		}
		if strings.ContainsAny(pk.TopicName, "+#") || pk.TopicName == "" {
			cl.Stop(packets.ErrTopicNameInvalid) // mochi would drop it silently
			return pk, packets.ErrRejectPacket
		}
	case packets.Disconnect:
		if c != nil {
			c.graceful.Store(true)
		}
	case packets.Puback:
		if c != nil {
			c.mu.Lock()
			mine := c.out[pk.PacketID]
			delete(c.out, pk.PacketID)
			c.mu.Unlock()
			if mine {
				aside(func() { c.sess.Acked(pk.PacketID) })
			}
		}
	}
	return pk, nil
}

func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	c := h.conn(cl)
	if c == nil {
		cl.Stop(errors.New("no session"))
		return pk, packets.ErrRejectPacket
	}
	ctx := context.Background()
	var err error
	aside(func() {
		err = c.sess.Publish(ctx, Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain})
	})
	if err != nil {
		h.g.log.Debug("mqtt publish refused", "client", cl.ID, "topic", pk.TopicName, "error", err)
		cl.Stop(err)
		return pk, packets.ErrRejectPacket
	}
	return pk, packets.CodeSuccessIgnore
}

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return true // publishes are checked by the session in OnPublish
	}
	c := h.conn(cl)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.subs[topic] && len(c.subs) >= h.g.cfg.MaxSubscriptions {
		return false
	}
	if !c.sess.Subscribe(topic) {
		return false
	}
	c.subs[topic] = true
	return true
}

func (h *hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	c := h.conn(cl)
	if c == nil {
		return
	}
	var granted []string
	for i, f := range pk.Filters {
		if i < len(reasonCodes) && reasonCodes[i] < 0x80 {
			granted = append(granted, f.Filter)
		}
	}
	c.mu.Lock()
	c.pending = granted
	c.mu.Unlock()
}

func (h *hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, b []byte) {
	if pk.FixedHeader.Type != packets.Suback {
		return
	}
	c := h.conn(cl)
	if c == nil {
		return
	}
	c.mu.Lock()
	granted := c.pending
	c.pending = nil
	c.mu.Unlock()
	if len(granted) > 0 {
		aside(func() { c.sess.Subscribed(granted) })
	}
}

// aside runs fn on another goroutine and waits for it. Session callbacks
// reach the store and the export sink, whose code needs deep stacks;
// running them aside keeps the stack of each connection's long-lived read
// goroutine small, which is most of an idle session's memory.
//
// The goroutines are pooled: one that finished a callback waits asideIdle
// for the next before it exits. A fresh goroutine per call (as before) paid
// for its creation and, on every PUBLISH, for growing its stack again from
// the minimum (copystack was ~5% of the ingest CPU profile); a pooled one
// keeps the stack it grew. The pool grows to the number of callbacks
// running at once and shrinks when the devices fall quiet.
func aside(fn func()) {
	t := asideTasks.Get().(*asideTask)
	t.fn = fn
	select {
	case asideWork <- t:
	default:
		go asideWorker(t)
	}
	<-t.done
	t.fn = nil
	asideTasks.Put(t)
}

// asideTask is one callback; done is signalled when it has run.
type asideTask struct {
	fn   func()
	done chan struct{}
}

var (
	asideWork  = make(chan *asideTask) // unbuffered: only an idle worker takes a task
	asideTasks = sync.Pool{New: func() any { return &asideTask{done: make(chan struct{}, 1)} }}
)

// asideIdle is how long a pooled goroutine waits for more work.
const asideIdle = 5 * time.Second

func asideWorker(t *asideTask) {
	idle := time.NewTimer(asideIdle)
	defer idle.Stop()
	for {
		t.fn()
		t.done <- struct{}{}
		idle.Reset(asideIdle)
		select {
		case t = <-asideWork:
		case <-idle.C:
			return
		}
	}
}

// WebSocketHandler serves MQTT over WebSocket (subprotocol "mqtt"), as
// devices use at wss://{host}/$iothub/websocket.
func (g *Gateway) WebSocketHandler() http.Handler {
	return http.HandlerFunc(g.serveWS)
}
