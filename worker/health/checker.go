package health

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
)

// DefaultMaxInFlight is the default cap on probes in flight in one worker.
// A probe due while the cap is reached waits for a free slot.
const DefaultMaxInFlight = 64

// maxWait bounds how long Run sleeps between two looks at the schedule.
const maxWait = time.Second

// Options tune a Checker; zero fields take defaults.
type Options struct {
	MaxInFlight int                                                      // probes in flight at once; DefaultMaxInFlight when <= 0
	Now         func() time.Time                                         // clock; time.Now when nil
	Rand        func() float64                                           // jitter source in [0, 1); rand.Float64 when nil
	Probe       func(ctx context.Context, cfg Config, addr string) error // one probe; Probe with a net.Dialer when nil
	// Log receives one line per verdict change and per failed probe of a
	// backend in rotation. May be nil.
	Log func(format string, args ...any)
}

// Checker schedules the probes of a worker's backends and applies their
// verdicts to the backends' Sets. Update is called by the worker's control
// goroutine, Run by one goroutine; Tick and Drain exist for tests. Safe for
// concurrent use.
type Checker struct {
	opt Options

	// Probes counts the probes' results and the verdicts they changed
	// (upstream's health_check.* metrics). Safe for concurrent use.
	Stats Stats

	mu       sync.Mutex
	targets  map[*backends.Backend]*target
	inFlight int
	peak     int // highest inFlight seen (tests)
	wake     chan struct{}
	wg       sync.WaitGroup
}

// target is one backend under a health check.
type target struct {
	b       *backends.Backend
	set     *backends.Set
	cfg     Config
	st      State
	next    time.Time // when its next probe is due
	running bool
	gone    bool // dropped by Update while its probe ran
}

// Stats counts what the probes of a Checker found: upstream's
// health_check.success and .failure (probe results) and health_check.up
// and .down (verdicts changed: a backend back in rotation after Healthy
// successes, out of it after Unhealthy failures). A probe cut short by
// the checker's stop, or whose backend was dropped meanwhile, counts in
// none.
type Stats struct {
	Success, Failure, Up, Down atomic.Int64
}

// New returns a Checker with no health check.
func New(opt Options) *Checker {
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = DefaultMaxInFlight
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Float64
	}
	if opt.Probe == nil {
		var d net.Dialer
		opt.Probe = func(ctx context.Context, cfg Config, addr string) error { return Probe(ctx, d.DialContext, cfg, addr) }
	}
	return &Checker{opt: opt, targets: map[*backends.Backend]*target{}, wake: make(chan struct{}, 1)}
}

// Update makes configs (by cluster id) the health checks run, over the
// backends of sets (by cluster id, as backends.Registry.Update returns
// them). A backend already checked keeps its state and schedule; a new one
// gets its first probe within one interval. A backend no longer checked
// (its cluster lost its health check, or it was removed) is put back in
// rotation if the check held it down.
func (c *Checker) Update(configs map[string]Config, sets map[string]*backends.Set) {
	now := c.opt.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[*backends.Backend]*target, len(c.targets))
	for id, cfg := range configs {
		set := sets[id]
		for _, b := range set.Backends() {
			t := c.targets[b]
			if t == nil || t.cfg.Interval != cfg.Interval {
				first := now.Add(firstDelay(cfg.Interval, c.opt.Rand()))
				if t == nil {
					t = &target{b: b, next: first}
				} else if t.next.After(first) {
					t.next = first
				}
			}
			t.set, t.cfg = set, cfg
			next[b] = t
		}
	}
	for b, t := range c.targets {
		if next[b] == nil {
			t.gone = true
			if t.st.Down {
				t.set.SetHealth(t.b, true)
			}
		}
	}
	c.targets = next
	c.poke()
}

func (c *Checker) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run probes on schedule until ctx is done, then waits for the probes in
// flight to end.
func (c *Checker) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Drain()
			return
		case <-timer.C:
		case <-c.wake:
		}
		due := c.Tick(ctx)
		wait := min(max(due.Sub(c.opt.Now()), 0), maxWait)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// Tick starts the probes that are due, as many as the in-flight cap
// allows, and returns when the next one is due (now when a due probe waits
// for a slot: the end of a probe pokes Run).
func (c *Checker) Tick(ctx context.Context) time.Time {
	now := c.opt.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	due := now.Add(maxWait)
	for _, t := range c.targets {
		if t.running {
			continue
		}
		if t.next.After(now) {
			if t.next.Before(due) {
				due = t.next
			}
			continue
		}
		if c.inFlight >= c.opt.MaxInFlight {
			continue
		}
		t.running = true
		t.next = now.Add(nextDelay(t.cfg.Interval, c.opt.Rand()))
		c.inFlight++
		c.peak = max(c.peak, c.inFlight)
		c.wg.Add(1)
		go c.probe(ctx, t, t.cfg)
	}
	return due
}

// probe runs one probe of t and applies its result.
func (c *Checker) probe(ctx context.Context, t *target, cfg Config) {
	defer c.wg.Done()
	err := c.opt.Probe(ctx, cfg, t.b.AddrString())
	c.mu.Lock()
	t.running = false
	c.inFlight--
	changed := false
	if !t.gone && ctx.Err() == nil {
		changed = t.st.Observe(err == nil, t.cfg)
		if err == nil {
			c.Stats.Success.Add(1)
		} else {
			c.Stats.Failure.Add(1)
		}
	}
	down := t.st.Down
	if changed {
		if down {
			c.Stats.Down.Add(1)
		} else {
			c.Stats.Up.Add(1)
		}
		// Under c.mu, so that Update cannot release the backend between
		// the verdict and its application.
		t.set.SetHealth(t.b, !down)
	}
	c.mu.Unlock()
	c.poke()
	if err != nil && !down && c.opt.Log != nil {
		c.opt.Log("cluster %s backend %s: %v", t.b.ClusterID, t.b.ID, err)
	}
	if changed && c.opt.Log != nil {
		verdict := "healthy: back in rotation"
		if down {
			verdict = "unhealthy: out of rotation"
		}
		c.opt.Log("cluster %s backend %s (%s) is %s", t.b.ClusterID, t.b.ID, t.b.AddrString(), verdict)
	}
}

// Drain waits for the probes in flight to end.
func (c *Checker) Drain() { c.wg.Wait() }

// Peak returns the highest number of probes that were in flight at once.
func (c *Checker) Peak() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

// Down reports whether the health check holds b down.
func (c *Checker) Down(b *backends.Backend) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.targets[b]
	return t != nil && t.st.Down
}
