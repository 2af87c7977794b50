package peercred

import (
	"errors"
	"os/user"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is an injected clock for TTLs.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingLookup answers from names (missing: "no such user") and counts calls.
type countingLookup struct {
	names map[uint32]string
	calls atomic.Int32
}

func (l *countingLookup) lookup(uid uint32) (string, error) {
	l.calls.Add(1)
	if n, ok := l.names[uid]; ok {
		return n, nil
	}
	return "", user.UnknownUserIdError(int(uid))
}

func newUsers(t *testing.T, cfg UsersConfig) *Users {
	t.Helper()
	u, err := NewUsers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsersTTL(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := &countingLookup{names: map[uint32]string{1000: "alice"}}
	u := newUsers(t, UsersConfig{TTL: time.Minute, Lookup: l.lookup, Now: clk.Now})
	steps := []struct {
		advance time.Duration
		uid     uint32
		want    string
		calls   int32
	}{
		{0, 1000, "alice", 1},
		{59 * time.Second, 1000, "alice", 1},              // cached
		{time.Second, 1000, "alice", 2},                   // exactly TTL: expired, looked up again
		{time.Minute - time.Nanosecond, 1000, "alice", 2}, // just before the new expiry
		{0, 4242, Unknown, 3},                             // no such user
		{30 * time.Second, 4242, Unknown, 3},              // negative answer cached
		{30 * time.Second, 4242, Unknown, 4},              // and it expires too
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if got := u.Name(s.uid); got != s.want {
			t.Fatalf("step %d: Name(%d) = %q, want %q", i, s.uid, got, s.want)
		}
		if n := l.calls.Load(); n != s.calls {
			t.Fatalf("step %d: %d lookups, want %d", i, n, s.calls)
		}
	}
	if u.Timeouts() != 0 {
		t.Fatalf("Timeouts = %d, want 0", u.Timeouts())
	}
}

func TestUsersNegativeAnswers(t *testing.T) {
	tests := []struct {
		name   string
		lookup func(uint32) (string, error)
	}{
		{"no such user", func(uid uint32) (string, error) { return "", user.UnknownUserIdError(int(uid)) }},
		{"name service error", func(uint32) (string, error) { return "", errors.New("nss: connection refused") }},
		{"empty name", func(uint32) (string, error) { return "", nil }},
		{"panic", func(uint32) (string, error) { panic("nss module crashed") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			u := newUsers(t, UsersConfig{Lookup: func(uid uint32) (string, error) { calls.Add(1); return tt.lookup(uid) }})
			for range 3 {
				if got := u.Name(7); got != Unknown {
					t.Fatalf("Name = %q, want %q", got, Unknown)
				}
			}
			if calls.Load() != 1 {
				t.Fatalf("%d lookups, want 1 (negative answer cached)", calls.Load())
			}
		})
	}
}

func TestUsersLRUEviction(t *testing.T) {
	l := &countingLookup{names: map[uint32]string{1: "a", 2: "b", 3: "c"}}
	u := newUsers(t, UsersConfig{Size: 2, Lookup: l.lookup})
	for _, uid := range []uint32{1, 2, 1, 3} { // 2 is now the least recently used
		u.Name(uid)
	}
	if l.calls.Load() != 3 {
		t.Fatalf("%d lookups, want 3", l.calls.Load())
	}
	u.Name(1)
	u.Name(3)
	if l.calls.Load() != 3 {
		t.Fatalf("1 and 3 not cached: %d lookups", l.calls.Load())
	}
	u.Name(2)
	if l.calls.Load() != 4 {
		t.Fatalf("2 not evicted: %d lookups, want 4", l.calls.Load())
	}
}

// blockingLookup blocks every lookup until release is closed.
type blockingLookup struct {
	release chan struct{}
	calls   atomic.Int32
}

func (b *blockingLookup) lookup(uid uint32) (string, error) {
	b.calls.Add(1)
	<-b.release
	return "alice", nil
}

// TestUsersTimeoutWallClock measures, on the real clock, that a lookup
// blocking forever delays its caller by the timeout and no more, and that
// once the lookup answers, callers are served from the cache.
func TestUsersTimeoutWallClock(t *testing.T) {
	const timeout = 100 * time.Millisecond
	b := &blockingLookup{release: make(chan struct{})}
	u := newUsers(t, UsersConfig{Timeout: timeout, Lookup: b.lookup})

	var wg sync.WaitGroup
	elapsed := make([]time.Duration, 4)
	for i := range elapsed {
		wg.Go(func() {
			start := time.Now()
			if got := u.Name(1000); got != Unknown {
				t.Errorf("Name = %q while the lookup blocks, want %q", got, Unknown)
			}
			elapsed[i] = time.Since(start)
		})
	}
	wg.Wait()
	for _, d := range elapsed {
		// The bound leaves room for a loaded, race-instrumented machine.
		if d < timeout || d > timeout+400*time.Millisecond {
			t.Errorf("caller waited %v, want %v (plus scheduling)", d, timeout)
		}
	}
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("%d lookups in flight for one uid, want 1", n)
	}
	if n := u.Timeouts(); n != 4 {
		t.Fatalf("Timeouts = %d, want 4", n)
	}

	close(b.release) // the name service recovers; the lookup fills the cache
	deadline := time.Now().Add(5 * time.Second)
	for {
		start := time.Now()
		got := u.Name(1000)
		d := time.Since(start)
		if got == "alice" {
			if b.calls.Load() != 1 {
				t.Fatalf("%d lookups, want the first one's answer from cache", b.calls.Load())
			}
			if d > timeout/2 {
				t.Fatalf("cached answer took %v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background lookup never filled the cache")
		}
	}
}

// TestUsersTimeoutExact checks the same on a fake clock: exactly the
// timeout, and a wedged lookup that never answers.
func TestUsersTimeoutExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blockingLookup{release: make(chan struct{})}
		u := newUsers(t, UsersConfig{Timeout: 250 * time.Millisecond, Lookup: b.lookup})
		for i := range 3 {
			start := time.Now()
			if got := u.Name(1); got != Unknown {
				t.Fatalf("call %d: Name = %q", i, got)
			}
			if d := time.Since(start); d != 250*time.Millisecond {
				t.Fatalf("call %d waited %v, want exactly 250ms", i, d)
			}
		}
		if b.calls.Load() != 1 || u.Timeouts() != 3 {
			t.Fatalf("lookups %d, timeouts %d; want 1 and 3", b.calls.Load(), u.Timeouts())
		}
		close(b.release)
		synctest.Wait()
		start := time.Now()
		if got := u.Name(1); got != "alice" || time.Since(start) != 0 {
			t.Fatalf("after the lookup answered: Name = %q after %v", got, time.Since(start))
		}
	})
}

// TestUsersInflightCap: with every lookup wedged, at most Size are in
// flight; further uids are answered Unknown at once.
func TestUsersInflightCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blockingLookup{release: make(chan struct{})}
		u := newUsers(t, UsersConfig{Size: 2, Timeout: time.Second, Lookup: b.lookup})
		u.Name(1)
		u.Name(2)
		start := time.Now()
		if got := u.Name(3); got != Unknown || time.Since(start) != 0 {
			t.Fatalf("third uid: %q after %v, want %q at once", got, time.Since(start), Unknown)
		}
		if b.calls.Load() != 2 || u.Timeouts() != 3 {
			t.Fatalf("lookups %d, timeouts %d; want 2 and 3", b.calls.Load(), u.Timeouts())
		}
		close(b.release)
		synctest.Wait()
	})
}

func TestUsersRealLookup(t *testing.T) {
	u := newUsers(t, UsersConfig{Timeout: 5 * time.Second})
	if got := u.Name(0); got != "root" {
		t.Errorf("Name(0) = %q, want root", got)
	}
	if _, err := user.LookupId("65534"); err == nil {
		want, _ := user.LookupId("65534")
		if got := u.Name(65534); got != want.Username {
			t.Errorf("Name(65534) = %q, want %q", got, want.Username)
		}
	}
	if got := u.Name(3_999_999_999); got != Unknown {
		t.Errorf("Name of a uid nobody has = %q, want %q", got, Unknown)
	}
}

func TestNewUsersConfig(t *testing.T) {
	u := newUsers(t, UsersConfig{})
	if u.max != DefaultUserCacheSize || u.ttl != DefaultUserCacheTTL || u.timeout != DefaultLookupTimeout {
		t.Errorf("defaults = %d, %v, %v", u.max, u.ttl, u.timeout)
	}
	bad := []struct {
		cfg  UsersConfig
		want string
	}{
		{UsersConfig{Size: -1}, "peercred: user cache size -1 is negative"},
		{UsersConfig{TTL: -time.Second}, "peercred: user cache TTL -1s is negative"},
		{UsersConfig{Timeout: -time.Millisecond}, "peercred: user lookup timeout -1ms is negative"},
	}
	for _, tt := range bad {
		if _, err := NewUsers(tt.cfg); err == nil || err.Error() != tt.want {
			t.Errorf("NewUsers(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
