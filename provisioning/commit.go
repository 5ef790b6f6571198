package provisioning

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
)

// maxBatch bounds the registrations written in one transaction.
const maxBatch = 256

// linger is how long a batch waits for more registrations while
// registrations keep coming (the previous batch was written less than
// linger ago): at a migration's few hundred registrations a second, each
// transaction then carries several. An idle committer writes at once.
const linger = 10 * time.Millisecond

// committer writes the records of concurrent registrations together: a
// registration's writes (its identity and twin, its registration record)
// join those that queued while the previous transaction ran, and one
// transaction commits them all. A fleet registering at once (a migration's
// wave) then pays one commit, and on SQLite one write of each touched page
// to the WAL, per batch instead of two commits per device. A lone
// registration is written at once; see linger for a steady stream.
type committer struct {
	st ferry.Store

	mu      sync.Mutex
	queue   []*commitReq
	running bool      // a goroutine is draining queue
	wrote   time.Time // when the last batch was written
}

type commitReq struct {
	fn   func(tx ferry.Tx) error
	done chan error
}

// batchErr is the error of one request of a batch, which rolled the batch
// back.
type batchErr struct {
	i   int
	err error
}

func (e *batchErr) Error() string { return e.err.Error() }

// do runs fn in a transaction shared with other registrations and returns
// its error once the transaction is committed (or rolled back). fn may run
// twice, the first time in a batch that another request's error rolled
// back, so it must only write what it is given; reads in it see the
// transaction.
func (c *committer) do(fn func(tx ferry.Tx) error) error {
	req := &commitReq{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, req)
	if !c.running {
		c.running = true
		go c.drain()
	}
	c.mu.Unlock()
	return <-req.done
}

// drain writes the queued requests batch by batch until none are left.
func (c *committer) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) < maxBatch && time.Since(c.wrote) < linger {
			c.mu.Unlock()
			time.Sleep(linger)
			c.mu.Lock()
		}
		n := min(len(c.queue), maxBatch)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		if len(c.queue) == 0 {
			c.queue = nil
		}
		c.mu.Unlock()
		c.write(batch)
		c.mu.Lock()
		c.wrote = time.Now()
		c.mu.Unlock()
	}
}

// write commits a batch. When one request fails, the transaction is rolled
// back and every request is written again on its own, so that one bad
// registration costs the others nothing but time.
func (c *committer) write(batch []*commitReq) {
	ctx, cancel := context.WithTimeout(context.Background(), assignTimeout)
	defer cancel()
	err := c.st.WithTx(ctx, func(tx ferry.Tx) error {
		for i, r := range batch {
			if err := r.fn(tx); err != nil {
				return &batchErr{i: i, err: err}
			}
		}
		return nil
	})
	var be *batchErr
	switch {
	case err == nil:
		for _, r := range batch {
			r.done <- nil
		}
		return
	case len(batch) == 1 && errors.As(err, &be):
		batch[0].done <- be.err
		return
	case len(batch) == 1:
		batch[0].done <- err
		return
	}
	for _, r := range batch {
		r.done <- c.st.WithTx(ctx, r.fn)
	}
}
