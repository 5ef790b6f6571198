package provisioning

import (
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
)

// cacheTTL is how long a service and its groups, as read for one session,
// authenticate the next sessions of its ID scope. A fleet connecting at
// once (a migration's wave) then reads them once, not once per device.
// Staleness is harmless: a device no cached group admits is matched
// against the store, and the registration reads the service and the group
// that admitted it again (and checks the key again) before it assigns.
// ServiceChanged drops a service's entry at once.
const cacheTTL = 5 * time.Second

// scopeCache keeps, per ID scope (lower case), the provisioning service
// and its enrollment groups. Only what exists is kept.
type scopeCache struct {
	mu sync.Mutex
	m  map[string]*scopeEntry
}

type scopeEntry struct {
	svc    *ferry.ProvisioningService
	read   time.Time
	groups []*ferry.EnrollmentGroup // nil: not read with svc
}

// get returns the service of scope and its groups (nil if not read), or
// nil when nothing recent is kept. The records are shared: do not change
// them.
func (c *scopeCache) get(scope string) (*ferry.ProvisioningService, []*ferry.EnrollmentGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[strings.ToLower(scope)]
	if e == nil || time.Since(e.read) > cacheTTL {
		return nil, nil
	}
	return e.svc, e.groups
}

// putService keeps a service just read (without its groups).
func (c *scopeCache) putService(scope string, svc *ferry.ProvisioningService) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*scopeEntry{}
	}
	now := time.Now()
	for k, e := range c.m { // few services: sweep while here
		if now.Sub(e.read) > cacheTTL {
			delete(c.m, k)
		}
	}
	c.m[strings.ToLower(scope)] = &scopeEntry{svc: svc, read: now}
}

// putGroups keeps the groups just read for svc, if svc is still the
// service kept for scope.
func (c *scopeCache) putGroups(scope string, svc *ferry.ProvisioningService, groups []*ferry.EnrollmentGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[strings.ToLower(scope)]; e != nil && e.svc.ID == svc.ID {
		if groups == nil {
			groups = []*ferry.EnrollmentGroup{}
		}
		e.groups = groups
	}
}

// drop forgets a service.
func (c *scopeCache) drop(serviceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.svc.ID == serviceID {
			delete(c.m, k)
		}
	}
}

// hubCache keeps the hubs registrations assign devices to, by ID, for
// cacheTTL: a hub's record (its access policies) costs more to decode than
// the rest of an assignment's reads. Only its ID and host name are used,
// and a hub deleted meanwhile still fails the identity's creation.
type hubCache struct {
	mu sync.Mutex
	m  map[string]hubEntry
}

type hubEntry struct {
	hub  *ferry.Hub
	read time.Time
}

// get returns a hub read less than cacheTTL ago, or nil. It is shared: do
// not change it.
func (c *hubCache) get(id string) *ferry.Hub {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || time.Since(e.read) > cacheTTL {
		return nil
	}
	return e.hub
}

func (c *hubCache) put(h *ferry.Hub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]hubEntry{}
	}
	now := time.Now()
	for k, e := range c.m {
		if now.Sub(e.read) > cacheTTL {
			delete(c.m, k)
		}
	}
	c.m[h.ID] = hubEntry{hub: h, read: now}
}
