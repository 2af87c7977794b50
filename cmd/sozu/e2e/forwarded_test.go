package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestForwardingFieldsFromClients: a backend behind the proxy never sees a
// client's X-Real-IP, X-Forwarded-Host or the other fields only the proxy
// may assert; it sees the proxy's X-Forwarded-For (ending with the
// client's address), X-Forwarded-Proto, X-Real-IP when the listener sends
// it, and X-Forwarded-Host when the frontend rewrites the host.
func TestForwardingFieldsFromClients(t *testing.T) {
	dir := t.TempDir()
	echoed := []string{"X-Real-Ip", "X-Forwarded-Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Server",
		"X-Client-Ip", "True-Client-Ip", "Front-End-Https"}
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := map[string][]string{}
		for _, n := range echoed {
			if v := r.Header.Values(n); len(v) > 0 {
				got[n] = v
			}
		}
		got["Host"] = []string{r.Host}
		json.NewEncoder(w).Encode(got)
	}))
	sendPort := sozutest.FreePort(t)
	cfgPath, sock, httpPort := sozutest.WriteConfig(t, dir, 1, "activate_listeners = true")
	extra := fmt.Sprintf(`
[[listeners]]
protocol = "http"
address = "127.0.0.1:%[1]d"
send_x_real_ip = true

[clusters.c]
protocol = "http"
frontends = [
  { address = "127.0.0.1:%[2]d", hostname = "fw.test" },
  { address = "127.0.0.1:%[2]d", hostname = "rw.test", rewrite_host = "inner.test" },
  { address = "127.0.0.1:%[1]d", hostname = "fw.test" },
]
backends = [ { address = %[3]q } ]
`, sendPort, httpPort, origin.addr)
	appendFile(t, cfgPath, extra)
	sozutest.Start(t, dir, cfgPath, sock)

	spoof := []string{"-H", "X-Real-IP: 6.6.6.6", "-H", "X-Forwarded-Host: evil.test", "-H", "X-Forwarded-For: 10.1.1.1",
		"-H", "X-Forwarded-Proto: https", "-H", "X-Forwarded-Server: evil", "-H", "X-Client-IP: 6.6.6.7",
		"-H", "True-Client-IP: 6.6.6.8", "-H", "Front-End-Https: on"}
	get := func(t *testing.T, host string, port int) map[string][]string {
		t.Helper()
		var out map[string][]string
		sozutest.WaitFor(t, 20*time.Second, "the proxy routes "+host, func() bool {
			cmd := exec.Command("/usr/bin/curl", append([]string{"-sS", "--max-time", "5", "-f", "-H", "Host: " + host},
				append(spoof, fmt.Sprintf("http://127.0.0.1:%d/", port))...)...)
			b, err := cmd.Output()
			return err == nil && json.Unmarshal(b, &out) == nil
		})
		return out
	}
	check := func(t *testing.T, got map[string][]string, want map[string]string) {
		t.Helper()
		for _, n := range append(echoed, "Host") {
			if g, w := strings.Join(got[n], " | "), want[n]; g != w {
				t.Errorf("backend saw %s %q, want %q (all: %v)", n, g, w, got)
			}
		}
	}
	t.Run("defaults", func(t *testing.T) {
		check(t, get(t, "fw.test", httpPort), map[string]string{"Host": "fw.test",
			"X-Forwarded-For": "10.1.1.1, 127.0.0.1", "X-Forwarded-Proto": "http"})
	})
	t.Run("send_x_real_ip", func(t *testing.T) {
		check(t, get(t, "fw.test", sendPort), map[string]string{"Host": "fw.test", "X-Real-Ip": "127.0.0.1",
			"X-Forwarded-For": "10.1.1.1, 127.0.0.1", "X-Forwarded-Proto": "http"})
	})
	t.Run("host rewrite", func(t *testing.T) {
		check(t, get(t, "rw.test", httpPort), map[string]string{"Host": "inner.test", "X-Forwarded-Host": "rw.test",
			"X-Forwarded-For": "10.1.1.1, 127.0.0.1", "X-Forwarded-Proto": "http"})
	})
}

// appendFile appends text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
