// Package device is Ferry's Go device SDK. It speaks the Azure IoT device
// protocols over MQTT 3.1.1, so it works against Ferry and against Azure IoT
// Hub and DPS alike: registration with a provisioning service (symmetric
// key, group-derived key or X.509), a hub connection with QoS 1 telemetry
// through an outbound queue that survives reconnects and moves, direct
// methods, twins, cloud-to-device messages, SAS renewal, reconnects with
// backoff and jitter, and the DeviceMove command of
// dtmi:azureiot:DeviceMigration;1, which re-provisions the device at a new ID
// scope and carries its queue to the newly assigned hub.
package device

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/sas"
)

// HubAPIVersion is the api-version the SDK sends to hubs.
const HubAPIVersion = "2021-04-12"

// Message is a device-to-cloud or cloud-to-device message.
type Message struct {
	Body            []byte
	Properties      map[string]string // application properties
	MessageID       string
	CorrelationID   string
	ContentType     string // e.g. application/json
	ContentEncoding string // e.g. utf-8
}

// MethodRequest is a direct method call from the service.
type MethodRequest struct {
	Name    string
	Payload json.RawMessage // the JSON body; empty when none was sent
}

// MethodResponse is a device's answer to a direct method. Payload is
// marshalled to JSON; nil sends an empty body.
type MethodResponse struct {
	Status  int
	Payload any
}

// Move is the payload of a DeviceMove command (dtmi:azureiot:DeviceMigration;1)
// plus Ferry's optional provisioning host.
type Move struct {
	Method              string `json:"-"` // the method name it arrived as
	IDScope             string `json:"idScope"`
	ProvisioningHost    string `json:"provisioningHost,omitempty"`
	DPSName             string `json:"dpsName,omitempty"`
	DPSID               string `json:"dpsId,omitempty"`
	CentralAppName      string `json:"centralAppName,omitempty"`
	CentralAppSubdomain string `json:"centralAppSubdomain,omitempty"`
	DeviceTemplateID    string `json:"deviceTemplateId,omitempty"`
}

// Twin is a device twin as the device sees it.
type Twin struct {
	Desired         map[string]any
	DesiredVersion  int64
	Reported        map[string]any
	ReportedVersion int64
}

// Stats counts what a client did.
type Stats struct {
	Sent       uint64 // telemetry PUBLISHes written, resends included
	Acked      uint64 // telemetry messages confirmed by PUBACK
	Queued     uint64 // messages waiting for a PUBACK now
	Reconnects uint64 // connections lost and re-established
	Renewals   uint64 // reconnects to renew the SAS token
	Moves      uint64 // DeviceMove commands completed
}

// Config says how a device connects to its hub. Key or Certificate is set.
type Config struct {
	// Hub is the hub's host name as DPS assigned it, with an optional
	// ":port"; it goes into the username and the SAS resource verbatim.
	Hub      string
	DeviceID string
	// Key is the device's base64 symmetric key.
	Key string
	// Certificate is the device's X.509 certificate and key.
	Certificate *tls.Certificate
	// ModelID is the DTDL model ID announced in the username (model-id).
	ModelID string
	// Transport says how to dial; it is also used after a move.
	Transport
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger

	// OnMethod answers direct methods other than DeviceMove; nil answers
	// 404 to every other method.
	OnMethod func(ctx context.Context, req MethodRequest) MethodResponse
	// OnDesired receives desired-property patches (with "$version" removed).
	// Setting it subscribes to twin notifications.
	OnDesired func(patch map[string]any, version int64)
	// OnC2D receives cloud-to-device messages. Setting it subscribes to them.
	OnC2D func(Message)
	// OnMove is called when a DeviceMove arrives, before anything is done;
	// returning an error refuses the move (answer 400). nil accepts it.
	OnMove func(Move) error
	// OnMoved is called when a move completes (connected at the new hub)
	// with the new registration, or with the error that kept or brought the
	// device back at its hub.
	OnMoved func(*Registration, error)

	// Provisioning is how the device registered; DeviceMove re-runs it with
	// the new ID scope (and host). Without it DeviceMove is refused.
	Provisioning *ProvisionConfig

	// TokenTTL is the lifetime of hub SAS tokens; 0: one hour. The client
	// reconnects with a fresh token when a quarter of it is left.
	TokenTTL time.Duration
	// MinBackoff and MaxBackoff bound reconnect delays (exponential with
	// full jitter); 0: 500 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// QueueSize bounds the outbound queue; Send blocks when it is full.
	// 0: 10,000 messages.
	QueueSize int
	// InFlight bounds unacknowledged PUBLISHes on the wire; 0: 32.
	InFlight int
	// MoveTimeout bounds re-provisioning after DeviceMove, and then the
	// attempts to connect to the new hub, before the device goes back to its
	// hub; 0: two minutes.
	MoveTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = time.Hour
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.QueueSize == 0 {
		c.QueueSize = 10000
	}
	if c.InFlight == 0 {
		c.InFlight = 32
	}
	if c.MoveTimeout == 0 {
		c.MoveTimeout = 2 * time.Minute
	}
}

// entry is a queued telemetry message.
type entry struct {
	topic string
	body  []byte
	acked bool
}

// conn is one MQTT connection to a hub.
type conn struct {
	pc      paho.Client
	hub     string
	expiry  time.Time // of its SAS token; zero with X.509
	done    chan struct{}
	once    sync.Once
	err     error
	twinMu  sync.Mutex
	twinSub bool
}

func (cn *conn) end(err error) {
	cn.once.Do(func() { cn.err = err; close(cn.done) })
}

func (cn *conn) ended() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

type twinResult struct {
	res  response
	body []byte
}

// Client is a device connected to its hub. It keeps the connection up until
// Close. Its methods are safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*entry // unacknowledged, oldest first
	next     int      // queue[:next] were written on the current connection
	flying   int      // PUBLISHes written on the current connection and not yet acknowledged
	paused   *conn    // a connection that must not take new telemetry (a move is under way)
	cur      *conn
	up       chan struct{} // closed while connected
	hub      string
	deviceID string
	key      string
	prov     *ProvisionConfig
	closed   bool
	waiters  map[string]chan twinResult

	// A move in progress, owned by the run goroutine: where the device came
	// from, when, and its new registration, until it connects to the new hub.
	movedFrom *home
	movedAt   time.Time
	movedReg  *Registration

	moves   chan Move
	closing chan struct{}
	stopped chan struct{}

	sent, acked, reconnects, renewals, moved atomic.Uint64
}

// Connect connects a device to its hub and keeps it connected until Close:
// lost connections are re-established with exponential backoff and jitter,
// SAS tokens are renewed before they expire, and DeviceMove is handled.
// Returns EINVALID for a bad config, or the error of the first connection
// attempt (EUNAUTHORIZED when the hub refuses the credentials).
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	cfg.defaults()
	switch {
	case cfg.Hub == "":
		return nil, ferry.Errorf(ferry.EINVALID, "connect: a hub host name is required")
	case cfg.DeviceID == "":
		return nil, ferry.Errorf(ferry.EINVALID, "connect: a device ID is required")
	case (cfg.Key == "") == (cfg.Certificate == nil):
		return nil, ferry.Errorf(ferry.EINVALID, "connect: set exactly one of a key or a certificate")
	}
	c := &Client{
		cfg: cfg, log: cfg.Logger.With("subsystem", "device", "device_id", cfg.DeviceID),
		up: make(chan struct{}), hub: cfg.Hub, deviceID: cfg.DeviceID, key: cfg.Key, prov: cfg.Provisioning,
		waiters: map[string]chan twinResult{},
		moves:   make(chan Move, 1), closing: make(chan struct{}), stopped: make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	cn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	go c.run(cn)
	return c, nil
}

// ProvisionAndConnect provisions a device and connects it to the assigned
// hub, keeping pc for DeviceMove. cfg's Hub, DeviceID, Key, Certificate and
// Transport are filled in from the registration and pc.
func ProvisionAndConnect(ctx context.Context, pc ProvisionConfig, cfg Config) (*Client, *Registration, error) {
	reg, err := Provision(ctx, pc)
	if err != nil {
		return nil, nil, err
	}
	cfg.Hub, cfg.DeviceID, cfg.Key, cfg.Certificate = reg.AssignedHub, reg.DeviceID, reg.Key, pc.Certificate
	cfg.Transport = pc.Transport
	cfg.Provisioning = &pc
	c, err := Connect(ctx, cfg)
	if err != nil {
		return nil, reg, err
	}
	return c, reg, nil
}

// Send queues a telemetry message. It returns once the message is accepted
// into the outbound queue, blocking while the queue is full; accepted
// messages are sent in order with QoS 1 and kept until the hub acknowledges
// them, across reconnects and moves. Returns EPRECONDITION after Close.
func (c *Client) Send(ctx context.Context, m Message) error {
	props := make(map[string]string, len(m.Properties)+4)
	for k, v := range m.Properties {
		props[k] = v
	}
	for k, v := range map[string]string{PropMessageID: m.MessageID, PropCorrelationID: m.CorrelationID,
		PropContentType: m.ContentType, PropContentEncoding: m.ContentEncoding} {
		if v != "" {
			props[k] = v
		}
	}
	e := &entry{body: m.Body, topic: encodeBag(props)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) >= c.cfg.QueueSize && ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
		defer stop()
	}
	for len(c.queue) >= c.cfg.QueueSize && !c.closed {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		c.cond.Wait()
	}
	if c.closed {
		return ferry.Errorf(ferry.EPRECONDITION, "send: the client is closed")
	}
	c.queue = append(c.queue, e)
	c.cond.Broadcast()
	return nil
}

// Flush waits until every queued message is acknowledged.
func (c *Client) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		if c.closed {
			return ferry.Errorf(ferry.EPRECONDITION, "flush: the client is closed")
		}
		c.cond.Wait()
	}
	return nil
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	q := len(c.queue)
	c.mu.Unlock()
	return Stats{Sent: c.sent.Load(), Acked: c.acked.Load(), Queued: uint64(q),
		Reconnects: c.reconnects.Load(), Renewals: c.renewals.Load(), Moves: c.moved.Load()}
}

// Hub returns the host name of the hub the device belongs to now.
func (c *Client) Hub() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hub
}

// Connected reports whether the device holds a hub connection now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && !c.cur.ended()
}

// Disconnect drops the current connection as if the network failed; the
// client reconnects with its usual backoff. Tests use it.
func (c *Client) Disconnect() {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn != nil {
		cn.pc.Disconnect(0)
		cn.end(errors.New("disconnected by the application"))
	}
}

// Close disconnects and stops reconnecting. Messages not yet acknowledged
// are dropped; call Flush first to wait for them.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	close(c.closing)
	<-c.stopped
	return nil
}

// dial opens one connection to the current hub and subscribes.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	hub, deviceID, key := c.hub, c.deviceID, c.key
	c.mu.Unlock()
	cn := &conn{hub: hub, done: make(chan struct{})}
	username := hub + "/" + deviceID + "/?api-version=" + HubAPIVersion + "&DeviceClientType=" + clientVersion
	if c.cfg.ModelID != "" {
		username += "&model-id=" + escape(c.cfg.ModelID)
	}
	opts := c.cfg.Transport.options(hub, c.cfg.Certificate).
		SetClientID(deviceID).SetUsername(username).SetCleanSession(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.dispatch(cn, m) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { cn.end(err) })
	if key != "" {
		// se has whole seconds: renewal is timed from the expiry as signed.
		cn.expiry = time.Unix(time.Now().Add(c.cfg.TokenTTL).Unix(), 0)
		tok, err := sas.Sign(hub+"/devices/"+deviceID, key, "", cn.expiry)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		opts.SetPassword(tok)
	}
	cn.pc = paho.NewClient(opts)
	timeout := c.cfg.dialTimeout()
	if err := connectErr(ctx, cn.pc.Connect(), timeout); err != nil {
		cn.pc.Disconnect(0)
		return nil, fmt.Errorf("connect %s to %s: %w", deviceID, hub, err)
	}
	filters := map[string]byte{"$iothub/methods/POST/#": 0}
	if c.cfg.OnC2D != nil {
		filters["devices/"+deviceID+"/messages/devicebound/#"] = 1
	}
	if c.cfg.OnDesired != nil {
		filters["$iothub/twin/res/#"] = 0
		filters["$iothub/twin/PATCH/properties/desired/#"] = 0
		cn.twinSub = true
	}
	if err := wait(ctx, cn.pc.SubscribeMultiple(filters, nil), timeout); err != nil {
		cn.pc.Disconnect(0)
		return nil, fmt.Errorf("connect %s: subscribe: %w", deviceID, err)
	}
	c.log.Debug("connected", "hub", hub)
	return cn, nil
}

// run keeps the device connected until Close.
func (c *Client) run(cn *conn) {
	defer close(c.stopped)
	for {
		lost := c.serve(cn)
		cn = nil
		for attempt := 0; cn == nil; attempt++ {
			if lost || attempt > 0 {
				select {
				case <-c.closing:
					return
				case <-time.After(c.backoff(attempt)):
				}
			}
			select {
			case <-c.closing:
				return
			default:
			}
			if c.movedFrom != nil && time.Since(c.movedAt) > c.cfg.MoveTimeout {
				c.goBack(attempt)
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-c.closing:
					cancel()
				case <-ctx.Done():
				}
			}()
			var err error
			cn, err = c.dial(ctx)
			cancel()
			if err != nil {
				c.log.Info("reconnect failed", "attempt", attempt, "error", err)
			}
		}
		if lost {
			c.reconnects.Add(1)
		}
		if c.movedFrom != nil {
			c.movedFrom = nil
			c.moved.Add(1)
			c.log.Info("moved", "hub", cn.hub)
			if c.cfg.OnMoved != nil {
				c.cfg.OnMoved(c.movedReg, nil)
			}
		}
	}
}

// home is where a device belongs: enough to connect and to provision again.
type home struct {
	hub, deviceID, key string
	prov               *ProvisionConfig
}

// goBack returns a device that could not reach the hub it moved to within
// MoveTimeout to the hub it came from, so that it is never stranded.
func (c *Client) goBack(attempts int) {
	err := ferry.Errorf(ferry.ETIMEOUT, "move: hub %s unreachable after %d attempts; back to %s", c.Hub(), attempts, c.movedFrom.hub)
	c.log.Warn("move failed; going back", "error", err)
	c.mu.Lock()
	h := c.movedFrom
	c.hub, c.deviceID, c.key, c.prov = h.hub, h.deviceID, h.key, h.prov
	c.mu.Unlock()
	c.movedFrom, c.movedReg = nil, nil
	if c.cfg.OnMoved != nil {
		c.cfg.OnMoved(nil, err)
	}
}

// serve runs one connection until it is lost (true), or must be replaced
// for a SAS renewal or a move, or the client closes (false).
func (c *Client) serve(cn *conn) (lost bool) {
	c.mu.Lock()
	c.cur = cn
	c.next = 0
	c.flying = 0
	c.paused = nil
	close(c.up)
	c.cond.Broadcast()
	c.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.sender(cn) }()
	var renewC <-chan time.Time
	if !cn.expiry.IsZero() {
		renew := time.NewTimer(time.Until(cn.expiry) - c.cfg.TokenTTL/4)
		defer renew.Stop()
		renewC = renew.C
	}
	var mv *Move
	select {
	case <-cn.done:
		c.log.Info("connection lost", "error", cn.err)
		lost = true
	case <-renewC:
		c.renewals.Add(1)
	case m := <-c.moves:
		mv = &m
	case <-c.closing:
	}
	cn.end(nil)
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
	wg.Wait()
	cn.pc.Disconnect(100)
	c.mu.Lock()
	c.cur = nil
	c.up = make(chan struct{})
	c.mu.Unlock()
	if mv != nil {
		c.move(*mv)
	}
	return lost
}

// sender writes queued messages on cn in order, at most InFlight at a time,
// and removes them from the queue as PUBACKs arrive.
func (c *Client) sender(cn *conn) {
	type flight struct {
		e   *entry
		tok paho.Token
	}
	inflight := make(chan flight, c.cfg.InFlight)
	ackerDone := make(chan struct{})
	go func() {
		defer close(ackerDone)
		for f := range inflight {
			select {
			case <-f.tok.Done():
			case <-cn.done:
				return
			}
			if err := f.tok.Error(); err != nil {
				cn.end(fmt.Errorf("publish: %w", err))
				return
			}
			c.acked.Add(1)
			c.mu.Lock()
			f.e.acked = true
			c.flying--
			n := 0
			for n < len(c.queue) && c.queue[n].acked {
				n++
			}
			if n > 0 {
				clear(c.queue[:n])
				c.queue = c.queue[n:]
				c.next = max(0, c.next-n)
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		}
	}()
	defer func() { close(inflight); <-ackerDone }()
	prefix := "devices/" + c.currentDeviceID() + "/messages/events/"
	for {
		c.mu.Lock()
		for !cn.ended() && (c.paused == cn || c.next >= len(c.queue) || c.queue[c.next].acked) {
			if c.paused != cn && c.next < len(c.queue) {
				c.next++ // acked but behind an unacknowledged one
				continue
			}
			c.cond.Wait()
		}
		if cn.ended() {
			c.mu.Unlock()
			return
		}
		e := c.queue[c.next]
		c.next++
		c.flying++
		c.mu.Unlock()
		tok := cn.pc.Publish(prefix+e.topic, 1, false, e.body)
		c.sent.Add(1)
		select {
		case inflight <- flight{e, tok}:
		case <-cn.done:
			return
		}
	}
}

func (c *Client) currentDeviceID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deviceID
}

// backoff returns the delay before reconnect attempt n: exponential with
// full jitter between MinBackoff/2 and min(MaxBackoff, MinBackoff·2ⁿ).
func (c *Client) backoff(n int) time.Duration {
	ceil := c.cfg.MinBackoff << min(n, 20)
	if ceil <= 0 || ceil > c.cfg.MaxBackoff {
		ceil = c.cfg.MaxBackoff
	}
	floor := c.cfg.MinBackoff / 2
	return floor + rand.N(ceil-floor+1)
}

// dispatch routes an incoming PUBLISH.
func (c *Client) dispatch(cn *conn, m paho.Message) {
	topic := m.Topic()
	switch {
	case strings.HasPrefix(topic, "$iothub/methods/POST/"):
		c.method(cn, topic, m.Payload())
	case strings.HasPrefix(topic, "$iothub/twin/res/"):
		r, err := parseResponse(topic, "$iothub/twin/res/")
		if err != nil {
			return
		}
		c.mu.Lock()
		w := c.waiters[r.RID]
		delete(c.waiters, r.RID)
		c.mu.Unlock()
		if w != nil {
			w <- twinResult{res: r, body: m.Payload()}
		}
	case strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/desired/"):
		if c.cfg.OnDesired == nil {
			return
		}
		var patch map[string]any
		if err := json.Unmarshal(m.Payload(), &patch); err != nil {
			c.log.Warn("bad desired patch", "error", err)
			return
		}
		v := version(patch)
		c.cfg.OnDesired(patch, v)
	case strings.Contains(topic, "/messages/devicebound/"):
		if c.cfg.OnC2D == nil {
			return
		}
		_, bag, _ := strings.Cut(topic, "/messages/devicebound/")
		props, err := decodeBag(bag)
		if err != nil {
			c.log.Warn("bad C2D properties", "error", err)
		}
		msg := Message{Body: m.Payload(), Properties: map[string]string{}}
		for k, v := range props {
			switch k {
			case PropMessageID:
				msg.MessageID = v
			case PropCorrelationID:
				msg.CorrelationID = v
			case PropContentType:
				msg.ContentType = v
			case PropContentEncoding:
				msg.ContentEncoding = v
			default:
				msg.Properties[k] = v
			}
		}
		c.cfg.OnC2D(msg)
	}
}

// version removes "$version" from a twin section and returns it.
func version(m map[string]any) int64 {
	v, _ := m["$version"].(float64)
	delete(m, "$version")
	return int64(v)
}

// method answers a direct method; DeviceMove is handled here.
func (c *Client) method(cn *conn, topic string, payload []byte) {
	name, rid, ok := methodTopic(topic)
	if !ok {
		return
	}
	var resp MethodResponse
	var mv *Move
	if name == "DeviceMove" || strings.HasSuffix(name, "*DeviceMove") {
		resp, mv = c.acceptMove(name, payload)
		if mv != nil {
			c.quiesce(cn, c.cfg.dialTimeout())
		}
	} else if c.cfg.OnMethod != nil {
		resp = c.cfg.OnMethod(context.Background(), MethodRequest{Name: name, Payload: json.RawMessage(payload)})
	} else {
		resp = MethodResponse{Status: 404, Payload: map[string]string{"error": "unknown method " + name}}
	}
	var body []byte
	if resp.Payload != nil {
		var err error
		if body, err = json.Marshal(resp.Payload); err != nil {
			resp, body = MethodResponse{Status: 500}, []byte(`{"error":"bad response payload"}`)
		}
	}
	tok := cn.pc.Publish(fmt.Sprintf("$iothub/methods/res/%d/?$rid=%s", resp.Status, rid), 0, false, body)
	if err := wait(context.Background(), tok, c.cfg.dialTimeout()); err != nil {
		c.log.Info("method response lost", "method", name, "error", err)
	}
	if mv != nil {
		select {
		case c.moves <- *mv:
		default: // a move is already pending
		}
	}
}

// quiesce stops new telemetry on cn and waits up to d until every PUBLISH
// on the wire is acknowledged. A device about to disconnect for a move calls
// it before it answers, so that the hub has nothing left to write to it when
// the answer arrives: a hub that writes a PUBACK to a socket the device has
// closed gets a reset and may never read the answer.
func (c *Client) quiesce(cn *conn, d time.Duration) {
	t := time.AfterFunc(d, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer t.Stop()
	deadline := time.Now().Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = cn
	for c.flying > 0 && !cn.ended() && time.Now().Before(deadline) {
		c.cond.Wait()
	}
}

// acceptMove decides whether to move and what to answer.
func (c *Client) acceptMove(name string, payload []byte) (MethodResponse, *Move) {
	var m Move
	if err := json.Unmarshal(payload, &m); err != nil || m.IDScope == "" {
		return MethodResponse{Status: 400, Payload: map[string]any{"result": false, "data": "idScope is required"}}, nil
	}
	m.Method = name
	c.mu.Lock()
	prov := c.prov
	c.mu.Unlock()
	if prov == nil {
		return MethodResponse{Status: 400, Payload: map[string]any{"result": false, "data": "this device cannot re-provision"}}, nil
	}
	if c.cfg.OnMove != nil {
		if err := c.cfg.OnMove(m); err != nil {
			return MethodResponse{Status: 400, Payload: map[string]any{"result": false, "data": err.Error()}}, nil
		}
	}
	return MethodResponse{Status: 200, Payload: map[string]any{"result": true, "data": "Migration received. Disconnecting..."}}, &m
}

// move re-provisions at the new scope and points the client at the assigned
// hub; run completes the move when it connects there, or goes back after
// MoveTimeout. On a refusal or a timeout of the registration the device
// stays with its current hub, so that it is never stranded: an operator can
// command it again or fail it back.
func (c *Client) move(m Move) {
	c.mu.Lock()
	old := *c.prov
	c.mu.Unlock()
	pc := old
	pc.IDScope = m.IDScope
	if m.ProvisioningHost != "" {
		pc.Host = m.ProvisioningHost
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.MoveTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	c.log.Info("moving", "id_scope", m.IDScope, "provisioning_host", pc.Host)
	var reg *Registration
	var err error
	for attempt := 0; ; attempt++ {
		reg, err = Provision(ctx, pc)
		if err == nil || permanent(err) || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(c.backoff(attempt)):
		case <-ctx.Done():
		}
	}
	if err != nil {
		c.log.Warn("move failed; staying with the current hub", "error", err)
		if c.cfg.OnMoved != nil {
			c.cfg.OnMoved(nil, err)
		}
		return
	}
	c.mu.Lock()
	c.movedFrom = &home{hub: c.hub, deviceID: c.deviceID, key: c.key, prov: c.prov}
	c.movedAt, c.movedReg = time.Now(), reg
	c.hub, c.deviceID, c.prov = reg.AssignedHub, reg.DeviceID, &pc
	if reg.Key != "" {
		c.key = reg.Key
	}
	c.mu.Unlock()
	c.log.Info("re-provisioned", "hub", reg.AssignedHub)
}
