package provisioning

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestCommitterBatchWithAFailure: requests that queue while a transaction
// runs are written together; one that fails rolls its batch back, is
// answered with its own error, and costs the others nothing.
func TestCommitterBatchWithAFailure(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		svc := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: "dps-" + ferry.NewUUID()[:8], IDScope: NewIDScope(), CreatedAt: time.Now()}
		if err := s.CreateProvisioningService(ctx, svc); err != nil {
			t.Fatal(err)
		}
		c := &committer{st: s}
		put := func(id string) func(tx ferry.Tx) error {
			return func(tx ferry.Tx) error {
				return tx.PutRegistration(ctx, &ferry.RegistrationRecord{ServiceID: svc.ID, RegistrationID: id, Status: ferry.RegistrationAssigned})
			}
		}
		// The first request holds its transaction until the others queued.
		hold, held := make(chan struct{}), make(chan struct{})
		first := make(chan error, 1)
		go func() {
			first <- c.do(func(tx ferry.Tx) error {
				close(held)
				<-hold
				return put("first")(tx)
			})
		}()
		<-held
		boom := errors.New("boom")
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				fn := put("dev-" + strconv.Itoa(i))
				if i == 7 {
					fn = func(tx ferry.Tx) error {
						if err := put("dev-7")(tx); err != nil {
							return err
						}
						return boom
					}
				}
				errs[i] = c.do(fn)
			})
		}
		for {
			c.mu.Lock()
			queued := len(c.queue)
			c.mu.Unlock()
			if queued == n {
				break
			}
			time.Sleep(time.Millisecond)
		}
		close(hold)
		wg.Wait()
		if err := <-first; err != nil {
			t.Fatalf("first: %v", err)
		}
		for i, err := range errs {
			_, gerr := s.GetRegistration(ctx, svc.ID, "dev-"+strconv.Itoa(i))
			if i == 7 {
				if !errors.Is(err, boom) || !ferry.IsCode(gerr, ferry.ENOTFOUND) {
					t.Errorf("failed request: %v, record %v", err, gerr)
				}
				continue
			}
			if err != nil || gerr != nil {
				t.Errorf("request %d: %v, record %v", i, err, gerr)
			}
		}
	})
}
