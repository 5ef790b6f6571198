// Command loadgen drives Ferry's device plane (or a plain MQTT broker such
// as Mosquitto, with the same topics and payloads) for the benchmarks in
// bench/: it creates device identities, connects devices over MQTT with TLS
// (optionally provisioning them through DPS first), publishes QoS 1
// telemetry, holds idle connections and answers direct methods.
//
// Usage: loadgen [flags] MODE, where MODE is setup, create, connect,
// telemetry, idle or method. Every run prints one JSON result line on
// stdout. With --procs K it re-executes itself as K worker processes (each
// holding at most 15,000 connections and dialing from its own 127.0.0.x
// source address) and prints their aggregate.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-iot/ferry/sas"
)

// maxConnsPerProc keeps every process under the 20,000 open files limit.
const maxConnsPerProc = 15000

type options struct {
	mode        string
	target      string // ferry or mqtt
	mqttAddr    string
	useTLS      bool
	caFile      string
	serverName  string
	httpsURL    string
	hubHost     string
	dpsHost     string
	idScope     string
	dps         bool
	honorRetry  bool
	adminUser   string
	masterKey   string
	prefix      string
	n           int
	offset      int
	concurrency int
	procs       int
	worker      int
	src         string
	curve       string
	reconnect   bool
	duration    time.Duration
	hold        time.Duration
	rate        float64
	payload     int
	calls       int
	keepAlive   int
	timeout     time.Duration
	cpuProfile  string
	serverPID   int
	gcPercent   int
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if o.gcPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(o.gcPercent)
		debug.SetMemoryLimit(2 << 30) // collect harder rather than grow past 2 GiB per process
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.target, "target", "ferry", "ferry (SAS auth, Azure topics) or mqtt (a plain broker: no auth, same topics and payloads)")
	fs.StringVar(&o.mqttAddr, "mqtt", "127.0.0.1:8883", "MQTT address")
	fs.BoolVar(&o.useTLS, "tls", true, "MQTT over TLS")
	fs.StringVar(&o.caFile, "ca", "", "CA certificate (PEM) to trust")
	fs.StringVar(&o.serverName, "server-name", "127.0.0.1", "TLS server name")
	fs.StringVar(&o.httpsURL, "https", "https://127.0.0.1:8443", "Ferry's HTTPS base URL (service APIs)")
	fs.StringVar(&o.hubHost, "hub-host", "127.0.0.1", "hub host name (SAS resource, CONNECT username, service API Host)")
	fs.StringVar(&o.dpsHost, "dps-host", "dps.bench", "provisioning service host name (DPS service API Host)")
	fs.StringVar(&o.idScope, "id-scope", "", "DPS ID scope (connect --dps)")
	fs.BoolVar(&o.dps, "dps", false, "connect: register through DPS before connecting to the hub")
	fs.BoolVar(&o.honorRetry, "honor-retry-after", true, "connect --dps: wait retry-after before polling, as the Azure SDKs do")
	fs.StringVar(&o.adminUser, "admin", "admin", "administrator user (password from FERRY_ADMIN_PASSWORD)")
	fs.StringVar(&o.masterKey, "key", "YmVuY2gtbWFzdGVyLWtleS1mb3ItZmVycnktbG9hZGdlbg==", "group key (base64): device keys are derived from it as DPS derives them")
	fs.StringVar(&o.prefix, "prefix", "dev-", "device ID prefix")
	fs.IntVar(&o.n, "n", 100, "devices")
	fs.IntVar(&o.offset, "offset", 0, "index of the first device")
	fs.IntVar(&o.concurrency, "c", 64, "concurrent connects (or REST calls) per process")
	fs.IntVar(&o.procs, "procs", 1, "worker processes (each at most 15,000 connections)")
	fs.IntVar(&o.worker, "worker", -1, "internal: this process is worker i")
	fs.StringVar(&o.src, "src", "", "source IP address to dial from (workers use 127.0.0.(2+i))")
	fs.StringVar(&o.curve, "curve", "", "TLS key exchange to offer: p256, x25519 or empty for Go's default")
	fs.BoolVar(&o.reconnect, "reconnect", false, "connect: then drop and reconnect every device with TLS session resumption")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "telemetry: how long to publish")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "idle: how long to hold the connections")
	fs.Float64Var(&o.rate, "rate", 0, "telemetry: messages per second per device (0: closed loop, flat out)")
	fs.IntVar(&o.payload, "payload", 256, "telemetry: payload bytes")
	fs.IntVar(&o.calls, "calls", 1000, "method: invocations")
	fs.IntVar(&o.keepAlive, "keepalive", 600, "MQTT keep-alive seconds")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-operation timeout")
	fs.IntVar(&o.serverPID, "server-pid", 0, "connect: report the CPU time process PID (the server, on this machine) spent in each pass")
	fs.IntVar(&o.gcPercent, "gc-percent", 400, "the loader's GOGC (0: the runtime's, or $GOGC): a higher one spends memory to save CPU the server under test shares")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (workers: FILE.wI)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		return nil, errors.New("want one MODE: setup, create, connect, telemetry, idle or method")
	}
	o.mode = fs.Arg(0)
	switch o.mode {
	case "setup", "create", "connect", "telemetry", "idle", "method":
	default:
		return nil, fmt.Errorf("unknown mode %q", o.mode)
	}
	if o.target != "ferry" && o.target != "mqtt" {
		return nil, fmt.Errorf("unknown --target %q", o.target)
	}
	switch o.curve {
	case "", "p256", "x25519":
	default:
		return nil, fmt.Errorf("unknown --curve %q", o.curve)
	}
	if o.n < 0 || o.procs < 1 || o.concurrency < 1 {
		return nil, errors.New("--n, --procs and -c must be positive")
	}
	if o.procs == 1 && o.worker < 0 && o.n > maxConnsPerProc && o.mode != "create" {
		return nil, fmt.Errorf("--n %d is more than %d connections in one process: use --procs", o.n, maxConnsPerProc)
	}
	if o.dps && o.idScope == "" {
		return nil, errors.New("--dps needs --id-scope")
	}
	return o, nil
}

func run(ctx context.Context, o *options, out io.Writer) error {
	if o.procs > 1 && o.worker < 0 && o.mode != "setup" && o.mode != "create" {
		return runProcs(ctx, o, out)
	}
	if o.cpuProfile != "" {
		path := o.cpuProfile
		if o.worker >= 0 {
			path += ".w" + strconv.Itoa(o.worker)
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var (
		res *result
		err error
	)
	switch o.mode {
	case "setup":
		return setup(ctx, o, out)
	case "create":
		res, err = create(ctx, o)
	case "connect":
		res, err = connectMode(ctx, o, newPhases(o, out))
	case "telemetry":
		res, err = telemetry(ctx, o)
	case "idle":
		res, err = idle(ctx, o, out)
	case "method":
		res, err = method(ctx, o)
	}
	if err != nil {
		return err
	}
	res.finish()
	if o.worker < 0 {
		res.dropHist()
	}
	return json.NewEncoder(out).Encode(res)
}

// runProcs re-executes this program as o.procs workers, each with its share
// of the devices and its own source address, and aggregates their results.
func runProcs(ctx context.Context, o *options, out io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find executable: %w", err)
	}
	if os.Getenv("FERRY_BENCH_TOKEN") == "" && o.target == "ferry" && o.mode == "method" {
		tok, err := token(ctx, o)
		if err != nil {
			return err
		}
		os.Setenv("FERRY_BENCH_TOKEN", tok)
	}
	per := (o.n + o.procs - 1) / o.procs
	if per > maxConnsPerProc {
		return fmt.Errorf("%d devices per process is more than %d: raise --procs", per, maxConnsPerProc)
	}
	var (
		mu      sync.Mutex
		results []*result
		ready   int
		wg      sync.WaitGroup
		cmds    []*exec.Cmd
		coord   = &coordinator{o: o}
	)
	for i := 0; i < o.procs; i++ {
		first := o.offset + i*per
		n := min(per, o.offset+o.n-first)
		if n <= 0 {
			break
		}
		args := append([]string{}, os.Args[1:len(os.Args)-1]...)
		args = append(args, "--worker", strconv.Itoa(i), "--procs", "1", "--n", strconv.Itoa(n),
			"--offset", strconv.Itoa(first), "--src", fmt.Sprintf("127.0.0.%d", 2+i))
		if o.mode == "method" {
			args = append(args, "--calls", strconv.Itoa(o.calls/o.procs))
		}
		args = append(args, o.mode)
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		coord.add(stdin)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start worker %d: %w", i, err)
		}
		cmds = append(cmds, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer coord.left(stdin)
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			for sc.Scan() {
				var r result
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					fmt.Fprintf(os.Stderr, "worker %d: %s\n", i, sc.Text())
					continue
				}
				if r.Type == "sync" {
					coord.arrived()
					continue
				}
				mu.Lock()
				if r.Type == "ready" {
					ready++
					if ready == len(cmds) {
						fmt.Fprintf(out, "{\"type\":\"ready\",\"devices\":%d}\n", o.n)
					}
				} else {
					results = append(results, &r)
				}
				mu.Unlock()
			}
		}()
	}
	coord.start()
	wg.Wait()
	var errs []error
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, err))
		}
	}
	if len(results) == 0 {
		return errors.Join(append(errs, errors.New("no worker reported"))...)
	}
	agg := merge(results)
	agg.Procs = len(cmds)
	agg.finish()
	agg.dropHist()
	if err := json.NewEncoder(out).Encode(agg); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// deviceID names device i.
func (o *options) deviceID(i int) string { return o.prefix + strconv.Itoa(i) }

// deviceKey derives the device's key from the group key, as DPS does for
// an enrollment group with symmetric keys.
func (o *options) deviceKey(id string) (string, error) { return sas.DeriveDeviceKey(o.masterKey, id) }

func (o *options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: o.serverName, NextProtos: []string{"mqtt"}}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no certificate", o.caFile)
		}
		cfg.RootCAs = pool
	}
	switch o.curve {
	case "p256":
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
	case "x25519":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	return cfg, nil
}

// dialer opens MQTT connections from the configured source address.
type dialer struct {
	o    *options
	tls  *tls.Config
	net  net.Dialer
	fail atomic.Int64
}

func newDialer(o *options) (*dialer, error) {
	d := &dialer{o: o, net: net.Dialer{Timeout: o.timeout}}
	if o.src != "" {
		ip := net.ParseIP(o.src)
		if ip == nil {
			return nil, fmt.Errorf("bad --src %q", o.src)
		}
		d.net.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if o.useTLS {
		cfg, err := o.tlsConfig()
		if err != nil {
			return nil, err
		}
		d.tls = cfg
	}
	return d, nil
}

// deviceTLS returns a TLS configuration with a session cache of its own,
// for a device that resumes its TLS session when it reconnects, as the
// SDKs do. It is nil without TLS.
func (d *dialer) deviceTLS() *tls.Config {
	if d.tls == nil {
		return nil
	}
	cfg := d.tls.Clone()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	return cfg
}

// dial opens one connection, with TLS configuration cfg (nil: the shared
// one, without session resumption).
func (d *dialer) dial(ctx context.Context, cfg *tls.Config) (net.Conn, error) {
	conn, err := d.net.DialContext(ctx, "tcp", d.o.mqttAddr) // d.net.Timeout bounds it
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if d.tls == nil {
		return conn, nil
	}
	if cfg == nil {
		cfg = d.tls
	}
	// A deadline rather than HandshakeContext, which starts a goroutine
	// per handshake to watch the context: the loader's CPU is shared with
	// the server under test. mqttConnect sets its own.
	_ = conn.SetDeadline(time.Now().Add(d.o.timeout))
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// connectHub opens device id's session on the hub (or the plain broker).
func (d *dialer) connectHub(ctx context.Context, id, hubHost string, cfg *tls.Config, onPub func(string, []byte)) (*client, bool, error) {
	conn, err := d.dial(ctx, cfg)
	if err != nil {
		return nil, false, err
	}
	resumed := false
	if tc, ok := conn.(*tls.Conn); ok {
		resumed = tc.ConnectionState().DidResume
	}
	user, pass := "", ""
	if d.o.target == "ferry" {
		key, err := d.o.deviceKey(id)
		if err != nil {
			conn.Close()
			return nil, false, err
		}
		user = hubHost + "/" + id + "/?api-version=2021-04-12"
		pass, err = sas.Sign(hubHost+"/devices/"+id, key, "", time.Now().Add(24*time.Hour))
		if err != nil {
			conn.Close()
			return nil, false, err
		}
	}
	c, err := mqttConnect(conn, id, user, pass, uint16(d.o.keepAlive), d.o.timeout, onPub)
	if err != nil {
		conn.Close()
		return nil, false, err
	}
	return c, resumed, nil
}

// register provisions device id through DPS and returns the assigned hub
// and device ID.
func (d *dialer) register(ctx context.Context, id string) (string, string, error) {
	conn, err := d.dial(ctx, nil)
	if err != nil {
		return "", "", err
	}
	key, err := d.o.deviceKey(id)
	if err != nil {
		conn.Close()
		return "", "", err
	}
	pass, err := sas.Sign(d.o.idScope+"/registrations/"+id, key, "registration", time.Now().Add(time.Hour))
	if err != nil {
		conn.Close()
		return "", "", err
	}
	type reply struct {
		topic string
		body  []byte
	}
	replies := make(chan reply, 4)
	c, err := mqttConnect(conn, id, d.o.idScope+"/registrations/"+id+"/api-version=2019-03-31", pass, uint16(d.o.keepAlive), d.o.timeout,
		func(t string, b []byte) { replies <- reply{t, b} })
	if err != nil {
		conn.Close()
		return "", "", err
	}
	defer c.Close()
	if err := c.Subscribe("$dps/registrations/res/#", 1, d.o.timeout); err != nil {
		return "", "", err
	}
	body, _ := json.Marshal(map[string]string{"registrationId": id})
	topic := "$dps/registrations/PUT/iotdps-register/?$rid=1"
	for rid := 2; ; rid++ {
		if err := c.Publish(topic, 1, body, d.o.timeout); err != nil {
			return "", "", err
		}
		var r reply
		select {
		case r = <-replies:
		case <-c.done:
			return "", "", c.Err()
		case <-time.After(d.o.timeout):
			return "", "", errors.New("DPS: no reply")
		}
		var st struct {
			OperationID       string `json:"operationId"`
			Status            string `json:"status"`
			RegistrationState struct {
				AssignedHub string `json:"assignedHub"`
				DeviceID    string `json:"deviceId"`
			} `json:"registrationState"`
		}
		_ = json.Unmarshal(r.body, &st)
		switch {
		case strings.HasPrefix(r.topic, "$dps/registrations/res/200/"):
			return st.RegistrationState.AssignedHub, st.RegistrationState.DeviceID, nil
		case strings.HasPrefix(r.topic, "$dps/registrations/res/202/"):
			if d.o.honorRetry {
				wait := time.Second
				if i := strings.Index(r.topic, "retry-after="); i >= 0 {
					s, _, _ := strings.Cut(r.topic[i+len("retry-after="):], "&")
					if n, err := strconv.Atoi(s); err == nil {
						wait = time.Duration(n) * time.Second
					}
				}
				time.Sleep(wait)
			}
			topic = "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=" + strconv.Itoa(rid) + "&operationId=" + st.OperationID
			body = nil
		default:
			return "", "", fmt.Errorf("DPS: %s %s", r.topic, r.body)
		}
	}
}

// forEach runs fn(i) for every device index with o.concurrency workers and
// collects errors by message.
func forEach(ctx context.Context, o *options, res *result, fn func(i int) error) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(o.concurrency, max(o.n, 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					res.addError(err)
				}
			}
		}()
	}
	for i := o.offset; i < o.offset+o.n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
}

// result is what a run (or a worker) reports, as one JSON line.
type result struct {
	Type      string         `json:"type"` // "result", or "ready" for idle
	Mode      string         `json:"mode"`
	Target    string         `json:"target"`
	Procs     int            `json:"procs,omitempty"`
	Devices   int            `json:"devices"`
	OK        int64          `json:"ok"`
	Failed    int64          `json:"failed"`
	Errors    map[string]int `json:"errors,omitempty"`
	StartNS   int64          `json:"start_ns"`
	EndNS     int64          `json:"end_ns"`
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"`
	Resumed   int64          `json:"resumed,omitempty"`
	P50ms     float64        `json:"p50_ms"`
	P90ms     float64        `json:"p90_ms"`
	P99ms     float64        `json:"p99_ms"`
	Maxms     float64        `json:"max_ms"`
	ServerCPU int64          `json:"server_cpu_ms,omitempty"` // --server-pid: the server's CPU time over the pass
	Hist      []uint64       `json:"hist,omitempty"`          // latency histogram, see bucket
	Second    *result        `json:"reconnect,omitempty"`

	mu sync.Mutex
}

func newResult(o *options) *result {
	return &result{Type: "result", Mode: o.mode, Target: o.target, Devices: o.n, Errors: map[string]int{}, Hist: make([]uint64, nBuckets)}
}

// nBuckets log-scale latency buckets of 1/16 of a power of two of
// microseconds (about 4.4% wide), up to about 2^32 µs.
const nBuckets = 32 * 16

func bucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		return 0
	}
	return min(int(math.Log2(us)*16)+1, nBuckets-1)
}

func bucketMS(i int) float64 {
	if i == 0 {
		return 0
	}
	return math.Exp2(float64(i)/16) / 1000 // upper edge
}

func (r *result) observe(d time.Duration) {
	r.mu.Lock()
	r.Hist[bucket(d)]++
	r.OK++
	r.mu.Unlock()
}

func (r *result) addError(err error) {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	r.mu.Lock()
	r.Failed++
	if len(r.Errors) < 20 {
		r.Errors[msg]++
	} else if _, ok := r.Errors[msg]; ok {
		r.Errors[msg]++
	}
	r.mu.Unlock()
}

func (r *result) begin() { r.StartNS = time.Now().UnixNano() }
func (r *result) end()   { r.EndNS = time.Now().UnixNano() }

// finish fills the derived figures.
func (r *result) finish() {
	if r.Second != nil {
		r.Second.finish()
	}
	r.Seconds = float64(r.EndNS-r.StartNS) / 1e9
	if r.Seconds > 0 {
		r.PerSecond = math.Round(float64(r.OK)/r.Seconds*10) / 10
	}
	var total uint64
	for _, c := range r.Hist {
		total += c
	}
	if total == 0 {
		return
	}
	pct := func(p float64) float64 {
		want := uint64(math.Ceil(p * float64(total)))
		var acc uint64
		for i, c := range r.Hist {
			acc += c
			if acc >= want {
				return math.Round(bucketMS(i)*1000) / 1000
			}
		}
		return 0
	}
	r.P50ms, r.P90ms, r.P99ms, r.Maxms = pct(0.5), pct(0.9), pct(0.99), pct(1)
}

// dropHist leaves the histogram out of a final report; workers keep it
// for merging.
func (r *result) dropHist() {
	r.Hist = nil
	if r.Second != nil {
		r.Second.Hist = nil
	}
}

// merge aggregates the workers' results: counts add up, the span runs from
// the first start to the last end.
func merge(rs []*result) *result {
	agg := &result{Type: "result", Mode: rs[0].Mode, Target: rs[0].Target, Errors: map[string]int{}, Hist: make([]uint64, nBuckets),
		ServerCPU: rs[0].ServerCPU} // the same figure in every worker
	var seconds []*result
	for _, r := range rs {
		agg.Devices += r.Devices
		agg.OK += r.OK
		agg.Failed += r.Failed
		agg.Resumed += r.Resumed
		for k, v := range r.Errors {
			agg.Errors[k] += v
		}
		if agg.StartNS == 0 || (r.StartNS != 0 && r.StartNS < agg.StartNS) {
			agg.StartNS = r.StartNS
		}
		agg.EndNS = max(agg.EndNS, r.EndNS)
		for i, c := range r.Hist {
			agg.Hist[i] += c
		}
		if r.Second != nil {
			seconds = append(seconds, r.Second)
		}
	}
	if len(seconds) > 0 {
		agg.Second = merge(seconds)
	}
	return agg
}

// closeAll closes clients in parallel.
func closeAll(cs []*client) {
	var wg sync.WaitGroup
	ch := make(chan *client)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				c.Close()
			}
		}()
	}
	for _, c := range cs {
		if c != nil {
			ch <- c
		}
	}
	close(ch)
	wg.Wait()
}
