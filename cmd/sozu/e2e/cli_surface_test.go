package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestCLISurface drives the verbs that complete upstream's CLI against a
// real proxy, and checks each through the traffic or the state: a
// listener updated in place, a cluster's custom 503 answer read from a
// file, frontends that redirect, rewrite and add response fields, and the
// request counts of `state stats`.
func TestCLISurface(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s uri=%s tenant=%s", r.Host, r.RequestURI, r.Header.Get("X-Tenant"))
	}))
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %q

[clusters.app]
protocol = "http"
backends = [ { address = %q } ]
`, sock, front, origin.addr)
	p := startProxy(t, dir, sock, cfg, front)
	get := func(host, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+front+path, nil)
		req.Host = host
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", host, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// listener http update: the patch changes only what it names.
	p.MustCLI("listener", "http", "update", "--address", front, "--front-timeout", "7", "--sticky-name", "STICKY")
	var listed struct {
		Content struct {
			ListenersList struct {
				HTTPListeners map[string]map[string]any `json:"http_listeners"`
			} `json:"listeners_list"`
		} `json:"content"`
	}
	if err := json.Unmarshal([]byte(p.MustCLI("-j", "listener", "list")), &listed); err != nil {
		t.Fatal(err)
	}
	l := listed.Content.ListenersList.HTTPListeners[front]
	if l["front_timeout"] != float64(7) || l["sticky_name"] != "STICKY" || l["back_timeout"] != float64(30) {
		t.Errorf("listener after update: %v", l)
	}
	if _, errOut, code := p.CLI("listener", "http", "update", "--address", "127.0.0.1:1", "--front-timeout", "7"); code != 1 || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("update of an unknown listener: exit %d, want 1 naming it\n%s", code, errOut)
	}

	// cluster add --answer 503=FILE: served when the cluster has no backend.
	tpl := filepath.Join(dir, "503.http")
	if err := os.WriteFile(tpl, []byte("HTTP/1.1 503 Service Unavailable\nX-Custom: yes\n\nmaintenance of %CLUSTER_ID\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.MustCLI("cluster", "add", "--id", "empty", "--answer", "503="+tpl)
	p.MustCLI("frontend", "http", "add", "--address", front, "--hostname", "empty.test", "--id", "empty")
	if resp, body := get("empty.test", "/"); resp.StatusCode != 503 || resp.Header.Get("X-Custom") != "yes" || !strings.Contains(body, "maintenance of empty") {
		t.Errorf("custom 503: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	bad := filepath.Join(dir, "bad.http")
	os.WriteFile(bad, []byte("HTTP/1.1 503 Busy\nnot a field\n\nx"), 0o600)
	if _, errOut, code := p.CLI("cluster", "add", "--id", "bad", "--answer", "503="+bad); code != 1 || !strings.Contains(errOut, "not a field line") {
		t.Errorf("a template the workers would not use: exit %d, want 1 with the reason\n%s", code, errOut)
	}

	// frontend flags: redirect with a rewritten host, response fields.
	p.MustCLI("frontend", "http", "add", "--address", front, "--hostname", "old.test", "--id", "app",
		"--redirect", "permanent", "--rewrite-host", "new.test", "--rewrite-port", "8080")
	if resp, _ := get("old.test", "/a/b?q=1"); resp.StatusCode != 301 || resp.Header.Get("Location") != "http://new.test:8080/a/b?q=1" {
		t.Errorf("redirect: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	p.MustCLI("frontend", "http", "add", "--address", front, "--hostname", "hdr.test", "--id", "app",
		"--header", "response:X-Frame-Options=DENY", "--header", "request:X-Tenant=t1", "--path-prefix", "/x/", "--rewrite-path", "/v2/$PATH[1]")
	if resp, body := get("hdr.test", "/x/y"); resp.StatusCode != 200 || resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(body, "uri=/v2/y tenant=t1") {
		t.Errorf("header and rewrite: %d %v %q", resp.StatusCode, resp.Header, body)
	}

	// state stats: the accepted requests, by kind, as text and JSON.
	out := p.MustCLI("state", "stats")
	for _, want := range []string{"REQUEST", "AddHttpFrontend", "UpdateHttpListener", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("state stats lacks %q:\n%s", want, out)
		}
	}
	var stats struct {
		Content struct {
			RequestCounts struct {
				Map map[string]int `json:"map"`
			} `json:"request_counts"`
		} `json:"content"`
	}
	if err := json.Unmarshal([]byte(p.MustCLI("state", "stats", "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	if m := stats.Content.RequestCounts.Map; m["AddHttpFrontend"] != 3 || m["UpdateHttpListener"] != 1 {
		t.Errorf("state stats --json: %v", m)
	}
}
