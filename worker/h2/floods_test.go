package h2

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
			if c, ok := floodOf[m[1]]; !ok || c == FloodOther {
				t.Errorf("%s: calm reason %q has no flood class in floodOf", f, m[1])
			}
		}
	}
	if found < len(floodOf) {
		t.Errorf("found %d calm reasons in the sources, floodOf has %d: stale entries?", found, len(floodOf))
	}
	seen := map[string]bool{}
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
