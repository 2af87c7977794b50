package health

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/backends"
)

func TestObserveThresholds(t *testing.T) {
	cfg := Config{Healthy: 2, Unhealthy: 3}
	for _, tc := range []struct {
		name    string
		results string // s = success, f = failure
		down    bool   // verdict after the run
		changes int    // verdict changes during the run
	}{
		{"successes keep it up", "ssss", false, 0},
		{"two failures are not enough", "ff", false, 0},
		{"three failures take it down", "fff", true, 1},
		{"a success resets the failure run", "ffsff", false, 0},
		{"one success is not enough to come back", "ffffs", true, 1},
		{"two successes bring it back", "fffss", false, 2},
		{"a failure resets the success run", "fffsfs", true, 1},
		{"flapping", "fffssfffss", false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			changes := 0
			for _, r := range tc.results {
				if s.Observe(r == 's', cfg) {
					changes++
				}
			}
			if s.Down != tc.down || changes != tc.changes {
				t.Fatalf("down %v after %d changes, want %v after %d", s.Down, changes, tc.down, tc.changes)
			}
		})
	}
}

func TestJitterBounds(t *testing.T) {
	const iv = 10 * time.Second
	for _, r := range []float64{0, 1e-9, 0.25, 0.5, 0.999999, 1, -3, 7} {
		if d := nextDelay(iv, r); d < iv*8/10 || d > iv {
			t.Errorf("nextDelay(%v, %v) = %v, want within [8s, 10s]", iv, r, d)
		}
		if d := firstDelay(iv, r); d < 0 || d > iv {
			t.Errorf("firstDelay(%v, %v) = %v, want within [0, 10s]", iv, r, d)
		}
	}
	if nextDelay(iv, 0) == nextDelay(iv, 0.5) {
		t.Error("nextDelay ignores its random input")
	}
}

// fakeClock is an injectable clock: time moves only when the test says.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (e *eventLog) add(ev *command.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := ev.GetKind().String()
	if ev.BackendId != nil {
		s += " " + ev.GetBackendId()
	}
	e.evs = append(e.evs, s)
}

func (e *eventLog) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.evs)
}

// cluster builds a Set of n backends of cluster "c".
func cluster(t *testing.T, n int, ev *eventLog) map[string]*backends.Set {
	t.Helper()
	var specs []backends.Spec
	for i := 0; i < n; i++ {
		specs = append(specs, backends.Spec{ClusterID: "c", ID: fmt.Sprintf("b%d", i),
			Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+i)), Weight: 1})
	}
	var on func(*command.Event)
	if ev != nil {
		on = ev.add
	}
	return backends.NewRegistry(backends.Options{OnEvent: on}).Update(specs, nil)
}

// TestCheckerLeavesAndReturns: with the clock driven by the test, a
// backend whose probes start failing is out of rotation after
// unhealthy_threshold probes, within interval × unhealthy_threshold of the
// first failure, and back after healthy_threshold successes; the events
// come once per change, and Stats counts the probes and changes.
func TestCheckerLeavesAndReturns(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	var failing atomic.Bool
	var probes, failed atomic.Int64
	ev := &eventLog{}
	rnd := 0.0
	c := New(Options{Now: clock.Now, Rand: func() float64 { rnd = 1 - rnd; return rnd * 0.999 },
		Probe: func(ctx context.Context, cfg Config, addr string) error {
			probes.Add(1)
			if failing.Load() && addr == "192.0.2.1:1000" {
				failed.Add(1)
				return fmt.Errorf("503")
			}
			return nil
		}})
	sets := cluster(t, 2, ev)
	cfg := Config{URI: "/health", Interval: 10 * time.Second, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 3}
	c.Update(map[string]Config{"c": cfg}, sets)
	b0 := sets["c"].Backends()[0]
	ctx := context.Background()

	// step runs the schedule until pred holds, returning the clock then.
	step := func(what string, pred func() bool) time.Time {
		t.Helper()
		for i := 0; i < 100; i++ {
			due := c.Tick(ctx)
			c.Drain()
			if pred() {
				return clock.Now()
			}
			clock.Set(due)
		}
		t.Fatalf("%s: not after 100 steps", what)
		return time.Time{}
	}
	step("two rounds of probes", func() bool { return probes.Load() >= 4 })
	if b0.HealthDown() {
		t.Fatal("a healthy backend is down")
	}
	failStart := clock.Now()
	failing.Store(true)
	downAt := step("backend down", b0.HealthDown)
	if d := downAt.Sub(failStart); d > cfg.Interval*time.Duration(cfg.Unhealthy) {
		t.Fatalf("out of rotation %v after its probes started failing, want <= %v", d, cfg.Interval*3)
	}
	failing.Store(false)
	upStart := clock.Now()
	upAt := step("backend up", func() bool { return !b0.HealthDown() })
	if d := upAt.Sub(upStart); d > cfg.Interval*time.Duration(cfg.Healthy) {
		t.Fatalf("back %v after recovery, want <= %v", d, cfg.Interval*2)
	}
	if got, want := ev.String(), "[HEALTH_CHECK_UNHEALTHY b0 BACKEND_DOWN b0 HEALTH_CHECK_HEALTHY b0 BACKEND_UP b0]"; got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	// Upstream's health_check.* counters: every probe result, and the
	// two verdict changes.
	st := &c.Stats
	if ok, ko, up, down := st.Success.Load(), st.Failure.Load(), st.Up.Load(), st.Down.Load(); ok+ko != probes.Load() || ko != failed.Load() || up != 1 || down != 1 {
		t.Fatalf("stats: %d successes, %d failures, %d up, %d down; want %d and %d, 1, 1", ok, ko, up, down, probes.Load()-failed.Load(), failed.Load())
	}

	// Removing the health check puts a backend it holds down back.
	failing.Store(true)
	step("backend down again", b0.HealthDown)
	c.Update(nil, sets)
	if b0.HealthDown() {
		t.Fatal("backend still down after its health check was removed")
	}
}

// TestCheckerConcurrencyCap: with MaxInFlight 3 and ten backends due at
// once, three probes run, the others wait for a slot, and each starts as
// soon as one ends.
func TestCheckerConcurrencyCap(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	release := make(chan struct{})
	var started atomic.Int64
	c := New(Options{MaxInFlight: 3, Now: clock.Now, Rand: func() float64 { return 0 },
		Probe: func(ctx context.Context, cfg Config, addr string) error {
			started.Add(1)
			<-release
			return nil
		}})
	sets := cluster(t, 10, nil)
	c.Update(map[string]Config{"c": {URI: "/", Interval: time.Minute, Timeout: time.Second, Healthy: 1, Unhealthy: 1}}, sets)
	<-c.wake // Update's
	ctx := context.Background()
	c.Tick(ctx)
	if p := c.Peak(); p != 3 {
		t.Fatalf("%d probes in flight, want the cap 3", p)
	}
	for done := 1; done <= 10; done++ {
		release <- struct{}{} // one probe ends…
		<-c.wake              // …and gives its slot back
		c.Tick(ctx)
		c.mu.Lock()
		n := c.inFlight
		c.mu.Unlock()
		if want := min(3, 10-done); n != want {
			t.Fatalf("after %d probes ended: %d in flight, want %d", done, n, want)
		}
	}
	c.Drain()
	if s, p := started.Load(), c.Peak(); s != 10 || p != 3 {
		t.Fatalf("%d probes started, peak %d in flight; want 10 and 3", s, p)
	}
}
