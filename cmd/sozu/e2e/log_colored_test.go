package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestLogColoredInForce: log_colored = true with log_target stdout colours
// the main log (upstream's rule), the supervisor's lines and its workers'
// alike, whether stdout is a terminal or not (here a pipe, as under
// journald). The key was accepted, listed as in force, and did nothing:
// the supervisor's formatter coloured only a terminal, which its log
// target never is, and the workers were not told.
func TestLogColoredInForce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, "log_colored = true")
	p := sozutest.Start(t, dir, cfgPath, sock)
	line := func(msg string) string {
		for _, l := range strings.Split(p.Out.String(), "\n") {
			if strings.Contains(l, msg) {
				return l
			}
		}
		return ""
	}
	sozutest.WaitFor(t, 10*time.Second, "the worker's and the supervisor's lines", func() bool {
		return line("worker confined") != "" && line("command socket ready") != ""
	})
	for _, msg := range []string{"command socket ready", "worker confined"} {
		if l := line(msg); !strings.Contains(l, "\x1b[") {
			t.Errorf("%q line without colours: %q", msg, l)
		}
	}
}
