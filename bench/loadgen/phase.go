package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// phases lines up the worker processes of one run at named points (all
// devices connected, all closed, ...), so that the passes of a run do not
// overlap across workers, and reads the server's CPU time at each point
// (--server-pid), so that every pass gets its own server CPU per session.
//
// A worker prints {"type":"sync","name":NAME} and waits for a line on its
// standard input with the server CPU time in milliseconds (-1: unknown);
// the coordinating process answers once every worker has reached the
// point. Without workers, reach samples the CPU time itself.
type phases struct {
	o   *options
	out io.Writer
	in  *bufio.Reader // a worker's standard input
}

func newPhases(o *options, out io.Writer) *phases {
	p := &phases{o: o, out: out}
	if o.worker >= 0 {
		p.in = bufio.NewReader(os.Stdin)
	}
	return p
}

// reach waits until every worker is at point name and returns the server's
// CPU time then, in milliseconds, or -1.
func (p *phases) reach(name string) (int64, error) {
	if p.in == nil {
		return serverCPU(p.o.serverPID), nil
	}
	if _, err := fmt.Fprintf(p.out, "{\"type\":\"sync\",\"name\":%q}\n", name); err != nil {
		return 0, err
	}
	if f, ok := p.out.(*os.File); ok {
		_ = f.Sync()
	}
	line, err := p.in.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("wait for the other workers at %s: %w", name, err)
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

// coordinator answers the workers' sync lines once all of them sent one.
type coordinator struct {
	o       *options
	mu      sync.Mutex
	ins     []io.Writer // the standard inputs of the workers still running
	started bool        // every worker has been started
	seen    int         // sync lines of the current round
}

// add registers a worker's standard input.
func (c *coordinator) add(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ins = append(c.ins, w)
}

// start is called once every worker has been started.
func (c *coordinator) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
	c.releaseLocked()
}

// arrived records a worker's sync line.
func (c *coordinator) arrived() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen++
	c.releaseLocked()
}

// left drops a worker whose output ended, so that a failed worker does not
// hold the others at the next point.
func (c *coordinator) left(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.ins {
		if x == w {
			c.ins = append(c.ins[:i], c.ins[i+1:]...)
			break
		}
	}
	c.releaseLocked()
}

// releaseLocked answers every worker with the server's CPU time once all
// that still run have reached the point.
func (c *coordinator) releaseLocked() {
	if !c.started || c.seen == 0 || c.seen < len(c.ins) {
		return
	}
	c.seen = 0
	ms := strconv.FormatInt(serverCPU(c.o.serverPID), 10) + "\n"
	for _, w := range c.ins {
		_, _ = io.WriteString(w, ms)
	}
}

// serverCPU returns the user plus system CPU time of process pid in
// milliseconds, or -1 if pid is 0 or unreadable (not Linux).
func serverCPU(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; fields 14 and 15 count
	// from after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (utime + stime) * 1000 / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100
