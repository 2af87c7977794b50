package peercred

import (
	"fmt"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults for UsersConfig fields left zero.
const (
	DefaultUserCacheSize = 256
	DefaultUserCacheTTL  = 60 * time.Second
	DefaultLookupTimeout = 100 * time.Millisecond
)

// UsersConfig configures Users. Zero fields take the defaults above.
type UsersConfig struct {
	Size    int           // cache entries, and the most lookups in flight at once
	TTL     time.Duration // how long an answer (found or not) is served from cache
	Timeout time.Duration // longest a caller waits for a lookup

	// Lookup maps a uid to a user name. nil: os/user.LookupId (getpwuid_r
	// through cgo when available). Any error, an empty name or a panic is a
	// negative answer, cached like a positive one. Lookup may block; it is
	// called from its own goroutine, at most once at a time per uid.
	Lookup func(uid uint32) (string, error)
	// Now is the clock for TTLs. nil: time.Now. (Timeouts use timers.)
	Now func() time.Time
}

// Users answers uid → user name without ever making its caller wait longer
// than the configured timeout, even when the name service is wedged.
//
// A lookup runs in its own goroutine. A caller that times out gets Unknown
// (counted in Timeouts); the lookup carries on and fills the cache, so later
// callers are served from it. There is never more than one lookup in flight
// per uid, nor more than Size in all (beyond that a caller gets Unknown at
// once, also counted). A Users is safe for concurrent use.
type Users struct {
	lookup  func(uint32) (string, error)
	now     func() time.Time
	timeout time.Duration
	ttl     time.Duration
	max     int

	mu       sync.Mutex
	cache    *simplelru.LRU[uint32, userEntry]
	inflight map[uint32]*userCall

	timeouts atomic.Uint64
}

type userEntry struct {
	name    string
	expires time.Time
}

type userCall struct {
	done chan struct{}
	name string // set before done is closed
}

// NewUsers returns a Users for cfg. It fails, naming the field, when a size
// or duration is negative.
func NewUsers(cfg UsersConfig) (*Users, error) {
	switch {
	case cfg.Size < 0:
		return nil, fmt.Errorf("peercred: user cache size %d is negative", cfg.Size)
	case cfg.TTL < 0:
		return nil, fmt.Errorf("peercred: user cache TTL %v is negative", cfg.TTL)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("peercred: user lookup timeout %v is negative", cfg.Timeout)
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultUserCacheSize
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultUserCacheTTL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultLookupTimeout
	}
	if cfg.Lookup == nil {
		cfg.Lookup = lookupPasswd
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cache, err := simplelru.NewLRU[uint32, userEntry](cfg.Size, nil)
	if err != nil {
		return nil, fmt.Errorf("peercred: user cache: %w", err)
	}
	return &Users{
		lookup:   cfg.Lookup,
		now:      cfg.Now,
		timeout:  cfg.Timeout,
		ttl:      cfg.TTL,
		max:      cfg.Size,
		cache:    cache,
		inflight: map[uint32]*userCall{},
	}, nil
}

func lookupPasswd(uid uint32) (string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// Name returns the user name of uid, or Unknown when it has no entry, the
// lookup failed, or no answer came within the timeout. It blocks at most
// the timeout.
func (u *Users) Name(uid uint32) string {
	u.mu.Lock()
	if e, ok := u.cache.Get(uid); ok {
		if u.now().Before(e.expires) {
			u.mu.Unlock()
			return e.name
		}
		u.cache.Remove(uid)
	}
	c, ok := u.inflight[uid]
	if !ok {
		if len(u.inflight) >= u.max {
			u.mu.Unlock()
			u.timeouts.Add(1)
			return Unknown
		}
		c = &userCall{done: make(chan struct{})}
		u.inflight[uid] = c
		go u.run(uid, c)
	}
	u.mu.Unlock()

	t := time.NewTimer(u.timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.name
	case <-t.C:
		u.timeouts.Add(1)
		return Unknown
	}
}

func (u *Users) run(uid uint32, c *userCall) {
	name := Unknown
	defer func() {
		recover() // a panicking lookup is a negative answer
		c.name = name
		u.mu.Lock()
		u.cache.Add(uid, userEntry{name: name, expires: u.now().Add(u.ttl)})
		delete(u.inflight, uid)
		u.mu.Unlock()
		close(c.done)
	}()
	if n, err := u.lookup(uid); err == nil && n != "" {
		name = n
	}
}

// Timeouts returns how many callers were answered Unknown because no answer
// came in time (or too many lookups were in flight).
func (u *Users) Timeouts() uint64 { return u.timeouts.Load() }
