package h2

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestNghttp2Clients drives the server with nghttp2's h2load and nghttp
// (package nghttp2-client) when installed.
func TestNghttp2Clients(t *testing.T) {
	h2load, err1 := exec.LookPath("h2load")
	nghttp, err2 := exec.LookPath("nghttp")
	if err1 != nil || err2 != nil {
		t.Skip("h2load/nghttp not installed (apt-get install nghttp2-client)")
	}
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	url := "http://" + ts.addr + "/"

	out, err := exec.Command(h2load, "-n", "10000", "-c", "10", "-m", "10", url).CombinedOutput()
	if err != nil || !regexp.MustCompile(`10000 succeeded, 0 failed, 0 errored`).Match(out) {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "finished in") || strings.HasPrefix(l, "requests:") {
			t.Log("h2load: " + l)
		}
	}

	out, err = exec.Command(nghttp, "-v", "-d", "/dev/null", "-H", "content-type: text/plain", url).CombinedOutput()
	s := string(out)
	if err != nil || !strings.Contains(s, ":status: 200") || !strings.Contains(s, "recv DATA frame") || !strings.Contains(s, "send GOAWAY frame") {
		t.Fatalf("nghttp -v: %v\n%s", err, s)
	}
}
