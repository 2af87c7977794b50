package supervisor_test

import (
	"regexp"
	"testing"
	"time"
)

// TestWorkerThreads: worker_threads is each worker's GOMAXPROCS, 1 when
// unset (one event loop per worker, as upstream; scale with worker_count).
// The worker reports the value it runs with in its "worker confined" line.
func TestWorkerThreads(t *testing.T) {
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"default", "", "threads=1"},
		{"two", "worker_threads = 2\n", "threads=2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, sock, _ := writeConfig(t, dir, 1, tt.extra)
			p := startProxy(t, dir, cfg, sock)
			line := regexp.MustCompile(`msg="worker confined".*`)
			var got string
			waitFor(t, 20*time.Second, "the worker's \"worker confined\" line", func() bool {
				got = line.FindString(p.Out.String())
				return got != ""
			})
			if !regexp.MustCompile(`\b` + tt.want + `\b`).MatchString(got) {
				t.Errorf("log line %q: want %q (worker_threads as the worker's GOMAXPROCS)", got, tt.want)
			}
		})
	}
}
