package device

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferry-iot/ferry"
)

// connection waits until the client is connected and returns the connection.
func (c *Client) connection(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, up, closed := c.cur, c.up, c.closed
		c.mu.Unlock()
		if closed {
			return nil, ferry.Errorf(ferry.EPRECONDITION, "the client is closed")
		}
		if cn != nil && !cn.ended() {
			return cn, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		}
	}
}

// twinRequest publishes a twin request and waits for its response.
func (c *Client) twinRequest(ctx context.Context, op, topic string, body []byte) (twinResult, error) {
	cn, err := c.connection(ctx)
	if err != nil {
		return twinResult{}, fmt.Errorf("%s: %w", op, err)
	}
	cn.twinMu.Lock()
	if !cn.twinSub {
		if err := wait(ctx, cn.pc.Subscribe("$iothub/twin/res/#", 0, nil), c.cfg.dialTimeout()); err != nil {
			cn.twinMu.Unlock()
			return twinResult{}, fmt.Errorf("%s: subscribe: %w", op, err)
		}
		cn.twinSub = true
	}
	cn.twinMu.Unlock()
	rid := newRID()
	ch := make(chan twinResult, 1)
	c.mu.Lock()
	c.waiters[rid] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, rid)
		c.mu.Unlock()
	}()
	if err := wait(ctx, cn.pc.Publish(topic+rid, 0, false, body), c.cfg.dialTimeout()); err != nil {
		return twinResult{}, fmt.Errorf("%s: %w", op, err)
	}
	select {
	case r := <-ch:
		if r.res.Status >= 300 {
			return r, statusError(op, r.res.Status, r.body)
		}
		return r, nil
	case <-cn.done:
		return twinResult{}, ferry.Errorf(ferry.EINTERNAL, "%s: the connection was lost", op)
	case <-ctx.Done():
		return twinResult{}, fmt.Errorf("%s: %w", op, ctxErr(ctx))
	}
}

// GetTwin fetches the device's twin, waiting for a connection if needed.
func (c *Client) GetTwin(ctx context.Context) (*Twin, error) {
	r, err := c.twinRequest(ctx, "get twin", "$iothub/twin/GET/?$rid=", []byte(" "))
	if err != nil {
		return nil, err
	}
	var doc struct {
		Desired  map[string]any `json:"desired"`
		Reported map[string]any `json:"reported"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		return nil, ferry.Errorf(ferry.EINTERNAL, "get twin: bad answer: %v", err)
	}
	t := &Twin{Desired: doc.Desired, Reported: doc.Reported}
	if t.Desired == nil {
		t.Desired = map[string]any{}
	}
	if t.Reported == nil {
		t.Reported = map[string]any{}
	}
	t.DesiredVersion, t.ReportedVersion = version(t.Desired), version(t.Reported)
	return t, nil
}

// UpdateReported merges patch into the twin's reported properties (a nil
// member removes the key) and returns the new reported version.
func (c *Client) UpdateReported(ctx context.Context, patch map[string]any) (int64, error) {
	body, err := json.Marshal(patch)
	if err != nil {
		return 0, ferry.Errorf(ferry.EINVALID, "update reported: %v", err)
	}
	r, err := c.twinRequest(ctx, "update reported", "$iothub/twin/PATCH/properties/reported/?$rid=", body)
	if err != nil {
		return 0, err
	}
	return r.res.Version, nil
}
