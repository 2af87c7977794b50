package h2

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestFloodReasonsClassified: every reason a calm GOAWAY can carry (the
// literals given to calm and to a header block's tooBig in this package)
// has a flood class, and every class a distinct name, so Stats.Floods
// never lumps a known budget into FloodOther.
func TestFloodReasonsClassified(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`(?:calm\(|tooBig = )"([^"]+)"`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			found++
			if r, ok := calmReasons[m[1]]; !ok || r.class == FloodOther {
				t.Errorf("%s: calm reason %q has no flood class in calmReasons", f, m[1])
			}
		}
	}
	if found < len(calmReasons) {
		t.Errorf("found %d calm reasons in the sources, calmReasons has %d: stale entries?", found, len(calmReasons))
	}
	seen := map[string]bool{}
	for k := KindNone + 1; k < NumViolationKinds; k++ {
		used := false
		for _, r := range calmReasons {
			used = used || r.kind == k
		}
		if n := k.String(); n == "" || seen[n] || !used {
			t.Errorf("kind %d: name %q empty, repeated or given to no reason", k, n)
		}
		seen[k.String()] = true
	}
	for c := FloodClass(0); c < NumFloodClasses; c++ {
		if n := c.String(); n == "" || seen[n] {
			t.Errorf("class %d: name %q empty or repeated", c, n)
		}
		seen[c.String()] = true
	}
}

// TestActiveStreams: Stats.ActiveStreams counts the streams whose handler
// runs, and falls back to zero when they end with the connection.
func TestActiveStreams(t *testing.T) {
	ts := startServer(t, Limits{}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	for id := uint32(1); id <= 5; id += 2 {
		rc.get(id, true)
	}
	waitCond(t, "3 active streams", func() bool { return ts.stats.ActiveStreams.Load() == 3 })
	if n := ts.stats.Streams.Load(); n != 3 {
		t.Errorf("Streams = %d, want 3", n)
	}
	rc.nc.Close()
	waitCond(t, "no active stream", func() bool { return ts.stats.ActiveStreams.Load() == 0 })
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestWindowCounterHalfDecay: as upstream's flood detector, a window starts
// with half the previous one's count. A burst of max passes; max at the
// end of one window and max at the start of the next do not (a fixed
// window let through twice the budget that way); max/2 per window forever
// passes, and a long pause forgets everything.
func TestWindowCounterHalfDecay(t *testing.T) {
	const win, max = time.Second, 10
	t0 := time.Unix(1_700_000_000, 0)
	burst := func(w *windowCounter, at time.Time, n int) bool {
		for range n {
			if w.hit(at, win, max) {
				return true
			}
		}
		return false
	}
	var w windowCounter
	if burst(&w, t0, max) {
		t.Fatal("a burst of max broke the budget")
	}
	if !burst(&w, t0.Add(win+time.Millisecond), max) {
		t.Fatal("max then max across a window boundary passed")
	}
	w = windowCounter{}
	for i := range 20 {
		if burst(&w, t0.Add(time.Duration(i)*win), max/2) {
			t.Fatalf("max/2 per window broke the budget in window %d", i)
		}
	}
	w = windowCounter{}
	broke := false
	for i := range 20 {
		broke = broke || burst(&w, t0.Add(time.Duration(i)*win), max*3/4)
	}
	if !broke {
		t.Fatal("3/4 of max per window, kept up, passed")
	}
	w = windowCounter{}
	burst(&w, t0, max)
	if burst(&w, t0.Add(time.Minute), max) {
		t.Fatal("a burst of max a minute after another broke the budget")
	}
}

// TestGlitchWindow: the glitch budget is a window's, as upstream's
// glitch_window, not the connection's life: a client whose frames race the
// end of its streams now and then is not cut off after MaxGlitchCount of
// them.
func TestGlitchWindow(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := startServer(t, Limits{MaxGlitchCount: 3}, helloHandler, nil, &Options{Now: clock})
	rc := dialRaw(t, ts.addr)
	id := uint32(1)
	for range 4 {
		for range 2 {
			rc.get(id, false)
			rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
			rc.fr.WriteWindowUpdate(id, 1) // on a stream the peer reset: STREAM_CLOSED, a glitch
			rc.expectRST(id, http2.ErrCodeStreamClosed)
			id += 2
		}
		mu.Lock()
		now = now.Add(2 * time.Second)
		mu.Unlock()
	}
	rc.get(id, true)
	rc.waitFor("response", func(f http2.Frame) bool {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %v after 8 glitches two a window", g.ErrCode)
		}
		d, ok := f.(*http2.DataFrame)
		return ok && d.StreamID == id && d.StreamEnded()
	})
}
