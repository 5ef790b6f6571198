package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// client is a minimal MQTT 3.1.1 client over one net.Conn: CONNECT,
// SUBSCRIBE, PUBLISH at QoS 0 or 1 and the acknowledgements. It runs one
// reader goroutine per connection and no pinger (the load generator keeps
// its own keep-alive), so that tens of thousands of them fit in one
// process next to the server under test.
type client struct {
	conn net.Conn
	br   *bufio.Reader

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  uint16
	pending map[uint16]chan struct{} // PUBACK and SUBACK waiters
	onPub   func(topic string, payload []byte)
	err     error
	done    chan struct{}
}

// errConnack is a refused CONNECT.
type errConnack byte

func (e errConnack) Error() string { return fmt.Sprintf("CONNACK return code %d", byte(e)) }

// mqttConnect sends CONNECT on conn and waits for CONNACK. keepAlive is in
// seconds. It starts the reader, which calls onPub for every PUBLISH.
func mqttConnect(conn net.Conn, clientID, user, pass string, keepAlive uint16, timeout time.Duration, onPub func(string, []byte)) (*client, error) {
	var body []byte
	body = appendString(body, "MQTT")
	flags := byte(0x02) // clean session
	if user != "" {
		flags |= 0x80
	}
	if pass != "" {
		flags |= 0x40
	}
	body = append(body, 4, flags, byte(keepAlive>>8), byte(keepAlive))
	body = appendString(body, clientID)
	if user != "" {
		body = appendString(body, user)
	}
	if pass != "" {
		body = appendString(body, pass)
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(packet(0x10, body)); err != nil {
		return nil, fmt.Errorf("write CONNECT: %w", err)
	}
	br := bufio.NewReaderSize(conn, 512)
	typ, b, err := readPacket(br)
	if err != nil {
		return nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if typ>>4 != 2 || len(b) != 2 {
		return nil, fmt.Errorf("want CONNACK, got packet type %d", typ>>4)
	}
	if b[1] != 0 {
		return nil, errConnack(b[1])
	}
	_ = conn.SetDeadline(time.Time{})
	c := &client{conn: conn, br: br, pending: map[uint16]chan struct{}{}, onPub: onPub, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *client) read() {
	defer close(c.done)
	for {
		typ, b, err := readPacket(c.br)
		if err != nil {
			c.fail(err)
			return
		}
		switch typ >> 4 {
		case 3: // PUBLISH
			if len(b) < 2 {
				c.fail(errors.New("short PUBLISH"))
				return
			}
			n := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+n {
				c.fail(errors.New("short PUBLISH topic"))
				return
			}
			topic := string(b[2 : 2+n])
			rest := b[2+n:]
			if qos := (typ >> 1) & 3; qos > 0 {
				if len(rest) < 2 {
					c.fail(errors.New("short PUBLISH id"))
					return
				}
				id := rest[:2]
				rest = rest[2:]
				_ = c.write(packet(0x40, []byte{id[0], id[1]}))
			}
			if c.onPub != nil {
				c.onPub(topic, rest)
			}
		case 4, 9: // PUBACK, SUBACK
			if len(b) < 2 {
				c.fail(errors.New("short ack"))
				return
			}
			if typ>>4 == 9 && len(b) > 2 && b[2] == 0x80 {
				c.fail(errors.New("subscription refused"))
				return
			}
			id := binary.BigEndian.Uint16(b)
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		case 13: // PINGRESP
		}
	}
}

func (c *client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// Err returns why the reader stopped.
func (c *client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return errors.New("connection closed")
	}
	return c.err
}

func (c *client) write(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(p)
	return err
}

func (c *client) newID() (uint16, chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	ch := make(chan struct{})
	c.pending[c.nextID] = ch
	return c.nextID, ch
}

func (c *client) wait(ch chan struct{}, timeout time.Duration, what string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-c.done:
		return fmt.Errorf("%s: %w", what, c.Err())
	case <-t.C:
		return fmt.Errorf("%s: timed out after %v", what, timeout)
	}
}

// Subscribe subscribes to filter at QoS qos and waits for the SUBACK.
func (c *client) Subscribe(filter string, qos byte, timeout time.Duration) error {
	id, ch := c.newID()
	body := []byte{byte(id >> 8), byte(id)}
	body = appendString(body, filter)
	body = append(body, qos)
	if err := c.write(packet(0x82, body)); err != nil {
		return fmt.Errorf("write SUBSCRIBE: %w", err)
	}
	return c.wait(ch, timeout, "SUBACK")
}

// Publish sends a PUBLISH; at QoS 1 it waits for the PUBACK.
func (c *client) Publish(topic string, qos byte, payload []byte, timeout time.Duration) error {
	body := appendString(nil, topic)
	var ch chan struct{}
	if qos > 0 {
		var id uint16
		id, ch = c.newID()
		body = append(body, byte(id>>8), byte(id))
	}
	body = append(body, payload...)
	if err := c.write(packet(0x30|qos<<1, body)); err != nil {
		return fmt.Errorf("write PUBLISH: %w", err)
	}
	if ch == nil {
		return nil
	}
	return c.wait(ch, timeout, "PUBACK")
}

// Ping sends a PINGREQ without waiting.
func (c *client) Ping() error { return c.write([]byte{0xC0, 0}) }

// Close sends DISCONNECT and closes the connection.
func (c *client) Close() {
	_ = c.write([]byte{0xE0, 0})
	_ = c.conn.Close()
	<-c.done
}

func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func packet(header byte, body []byte) []byte {
	p := []byte{header}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		p = append(p, d)
		if n == 0 {
			break
		}
	}
	return append(p, body...)
}

func readPacket(r *bufio.Reader) (byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mult
		if d&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("bad remaining length")
		}
		mult *= 128
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return h, b, nil
}
