package hub

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
)

// Defaults of the read caches.
const (
	DefaultCacheTTL          = 10 * time.Second
	DefaultIdentityCacheSize = 100_000
)

// cache keeps the hubs and device identities a CONNECT needs, so that a
// connection does not read them from the store each time. HubChanged and
// IdentityChanged drop entries at once; entries also expire after a TTL,
// which bounds how stale they get when a change is made through another
// Ferry process, which tells only its own Service.
//
// Only what the store found is cached: a hub or identity created after a
// miss is seen by the next connection. Cached values are shared and never
// modified.
type cache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu     sync.Mutex
	epoch  uint64 // bumped by every invalidation; a read that began before one is not stored
	byHost map[string]cached[*ferry.Hub]
	ids    map[key]cached[*ferry.DeviceIdentity]
}

type cached[T any] struct {
	v       T
	expires time.Time
}

func newCache(ttl time.Duration, size int, now func() time.Time) *cache {
	return &cache{ttl: ttl, size: size, now: now,
		byHost: map[string]cached[*ferry.Hub]{}, ids: map[key]cached[*ferry.DeviceIdentity]{}}
}

// begin returns the epoch to pass to a put after a store read.
func (c *cache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

func (c *cache) hubByHost(host string) *ferry.Hub {
	if c.ttl < 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHost[strings.ToLower(host)]
	if !ok || c.now().After(e.expires) {
		return nil
	}
	return e.v
}

func (c *cache) putHub(epoch uint64, host string, h *ferry.Hub) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if len(c.byHost) >= 4096 {
		clear(c.byHost) // hosts are few; this only guards against a flood of names
	}
	c.byHost[strings.ToLower(host)] = cached[*ferry.Hub]{v: h, expires: c.now().Add(c.ttl)}
}

func (c *cache) identity(hubID, deviceID string) *ferry.DeviceIdentity {
	if c.ttl < 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.ids[key{hubID, deviceID}]
	if !ok || c.now().After(e.expires) {
		return nil
	}
	return e.v
}

func (c *cache) putIdentity(epoch uint64, hubID, deviceID string, d *ferry.DeviceIdentity) {
	if c.ttl < 0 || c.size <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	k := key{hubID, deviceID}
	if _, ok := c.ids[k]; !ok && len(c.ids) >= c.size {
		// Full: drop expired entries, else an arbitrary tenth.
		now, n := c.now(), 0
		for k, e := range c.ids {
			if now.After(e.expires) {
				delete(c.ids, k)
			}
		}
		for k := range c.ids {
			if len(c.ids) < c.size || n >= c.size/10 {
				break
			}
			delete(c.ids, k)
			n++
		}
	}
	c.ids[k] = cached[*ferry.DeviceIdentity]{v: d, expires: c.now().Add(c.ttl)}
}

// sweep drops expired entries, so that identities of devices that stay
// connected (or went away) are not held beyond the TTL.
func (c *cache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, e := range c.ids {
		if now.After(e.expires) {
			delete(c.ids, k)
		}
	}
	for k, e := range c.byHost {
		if now.After(e.expires) {
			delete(c.byHost, k)
		}
	}
}

// dropIdentity forgets one identity.
func (c *cache) dropIdentity(hubID, deviceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.ids, key{hubID, deviceID})
}

// dropHub forgets every hub and the identities of one hub.
func (c *cache) dropHub(hubID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.byHost)
	for k := range c.ids {
		if k.hubID == hubID {
			delete(c.ids, k)
		}
	}
}

// hubByHost returns the hub with a host name, from the cache or the store.
func (s *Service) hubByHost(ctx context.Context, host string) (*ferry.Hub, error) {
	if h := s.cache.hubByHost(host); h != nil {
		return h, nil
	}
	epoch := s.cache.begin()
	h, err := s.cfg.Store.GetHubByHost(ctx, host)
	if err != nil {
		return nil, err
	}
	h = s.shareHub(h)
	s.cache.putHub(epoch, host, h)
	return h, nil
}

// identity returns a device identity, from the cache or the store.
func (s *Service) identity(ctx context.Context, hubID, deviceID string) (*ferry.DeviceIdentity, error) {
	if d := s.cache.identity(hubID, deviceID); d != nil {
		return d, nil
	}
	epoch := s.cache.begin()
	d, err := s.cfg.Store.GetDeviceIdentity(ctx, hubID, deviceID)
	if err != nil {
		return nil, err
	}
	s.cache.putIdentity(epoch, hubID, deviceID, d)
	return d, nil
}
