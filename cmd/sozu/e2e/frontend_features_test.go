package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestFrontendFeatures runs sozu with frontends that redirect (301, 302,
// 308, with a template), refuse (401), demand basic authentication,
// rewrite the host, port and path they forward, and edit request and
// response fields, and checks them with curl.
func TestFrontendFeatures(t *testing.T) {
	dir := t.TempDir()
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "origin/1.0")
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		_, auth := r.Header["Authorization"]
		fmt.Fprintf(w, "host=%s uri=%s xfh=%s tenant=%s cookie=%q auth=%v",
			r.Host, r.RequestURI, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Tenant"), r.Header.Get("Cookie"), auth)
	}))
	digest := sha256.Sum256([]byte("s3cret"))
	port := sozutest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %[2]q

[clusters.app]
protocol = "http"
backends = [ { address = %[3]q } ]

[[clusters.app.frontends]]
address = %[2]q
hostname = "*.app.test"
path = "/api/"
rewrite_host = "$HOST[1].internal"
rewrite_path = "/v2/$PATH[1]"
rewrite_port = 8080

[[clusters.app.frontends.headers]]
position = "request"
key = "X-Tenant"
value = "t1"

[[clusters.app.frontends.headers]]
position = "request"
key = "Cookie"
value = ""

[[clusters.app.frontends.headers]]
position = "response"
key = "Server"
value = ""

[[clusters.app.frontends.headers]]
position = "response"
key = "X-Frame-Options"
value = ""

[[clusters.app.frontends.headers]]
position = "response"
key = "X-Frame-Options"
value = "DENY"

[[clusters.app.frontends.headers]]
position = "both"
key = "Content-Length"
value = "0"

[[clusters.app.frontends]]
address = %[2]q
hostname = "old.test"
redirect = "permanent"
redirect_scheme = "use-https"
rewrite_host = "new.test"
rewrite_port = 8443

[[clusters.app.frontends]]
address = %[2]q
hostname = "found.test"
path = "^/u/([a-z]+)$"
path_type = "REGEX"
redirect = "found"
rewrite_path = "/users/$PATH[1]"

[[clusters.app.frontends]]
address = %[2]q
hostname = "moved.test"
redirect = "permanent_redirect"
redirect_template = """HTTP/1.1 308 Permanent Redirect
X-Moved: yes

<a href="%%REDIRECT_LOCATION">moved</a>"""

[[clusters.app.frontends]]
address = %[2]q
hostname = "closed.test"
redirect = "unauthorized"

[[clusters.app.frontends]]
address = %[2]q
hostname = "broken.test"
rewrite_path = "/$PATH[7]"

[[clusters.app.frontends]]
address = %[2]q
hostname = "*"
path = "/"

[clusters.secure]
protocol = "http"
authorized_hashes = [ "bob:%[4]s" ]
www_authenticate = 'Basic realm="secure"'
backends = [ { address = %[3]q } ]
frontends = [ { address = %[2]q, hostname = "secure.test", required_auth = true } ]
`, sock, addr, origin.addr, hex.EncodeToString(digest[:]))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, cfgPath, sock)
	url := func(path string) string { return fmt.Sprintf("http://%s%s", addr, path) }
	sozutest.WaitFor(t, 20*time.Second, "the HTTP listener serves", func() bool {
		cmd := exec.Command("/usr/bin/curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-H", "Host: any.test", url("/"))
		return sozutest.RunWithTimeout(cmd, 10*time.Second) == nil
	})

	// head returns the response head (CRLF lines) and the body of a request.
	head := func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		out := curl(t, append([]string{"-D", "-"}, args...)...)
		h, body, _ := strings.Cut(out, "\r\n\r\n")
		return h + "\r\n", body
	}
	field := func(head, name string) []string {
		var v []string
		for _, line := range strings.Split(head, "\r\n") {
			if k, val, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
				v = append(v, strings.TrimSpace(val))
			}
		}
		return v
	}

	t.Run("rewrites and header edits", func(t *testing.T) {
		h, body := head(t, "-H", "Host: Shop.App.Test", "-H", "Cookie: session=1", "-H", "X-Forwarded-Host: spoofed", url("/api/users/7?full=1"))
		if !strings.HasPrefix(h, "HTTP/1.1 200") {
			t.Fatalf("%s%s", h, body)
		}
		const want = `host=shop.internal:8080 uri=/v2/users/7?full=1 xfh=Shop.App.Test tenant=t1 cookie="" auth=false`
		if body != want {
			t.Errorf("the backend saw\n%s\nwant\n%s", body, want)
		}
		if v := field(h, "Server"); len(v) != 0 {
			t.Errorf("Server %q not deleted", v)
		}
		if v := field(h, "X-Frame-Options"); strings.Join(v, ",") != "DENY" {
			t.Errorf("X-Frame-Options %q, want DENY", v)
		}
		if v := field(h, "Content-Length"); strings.Join(v, ",") != fmt.Sprint(len(body)) {
			t.Errorf("Content-Length %q: the refused edit changed the framing", v)
		}
	})

	t.Run("refused header edits are reported", func(t *testing.T) {
		sozutest.WaitFor(t, 20*time.Second, "the warning about the Content-Length edit", func() bool {
			return strings.Contains(p.Out.String(), "request header edit Content-Length is ignored: the proxy frames messages itself")
		})
	})

	t.Run("other frontends see no edits", func(t *testing.T) {
		h, body := head(t, "-H", "Host: other.test", "-H", "Cookie: c=1", url("/api/users/7"))
		if !strings.HasPrefix(h, "HTTP/1.1 200") || body != `host=other.test uri=/api/users/7 xfh= tenant= cookie="c=1" auth=false` ||
			field(h, "Server")[0] != "origin/1.0" {
			t.Fatalf("%s%s", h, body)
		}
	})

	for _, tt := range []struct {
		name, host, path, status, location string
	}{
		{"permanent to https, rewritten host and port", "old.test:1234", "/a/b?c=d", "301", "https://new.test:8443/a/b?c=d"},
		{"found with a regex capture", "found.test", "/u/bob", "302", "http://found.test/users/bob"},
		{"permanent_redirect with the frontend's template", "moved.test", "/x?y='z'&w=1", "308", "http://moved.test/x?y='z'&w=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, body := head(t, "-H", "Host: "+tt.host, "-X", "POST", "-d", "x=1", url(tt.path))
			if !strings.HasPrefix(h, "HTTP/1.1 "+tt.status+" ") {
				t.Fatalf("%s%s", h, body)
			}
			if v := field(h, "Location"); len(v) != 1 || v[0] != tt.location {
				t.Fatalf("Location %q, want %s", v, tt.location)
			}
			if tt.status == "308" && (field(h, "X-Moved")[0] != "yes" || body != `<a href="http://moved.test/x?y=&#39;z&#39;&amp;w=1">moved</a>`) {
				t.Fatalf("not the frontend's template:\n%s%s", h, body)
			}
		})
	}

	t.Run("a regex capture that does not match falls through", func(t *testing.T) {
		_, body := head(t, "-H", "Host: found.test", url("/u/Bob"))
		if !strings.HasPrefix(body, "host=found.test uri=/u/Bob") {
			t.Fatalf("%s", body)
		}
	})

	t.Run("unauthorized", func(t *testing.T) {
		h, _ := head(t, "-H", "Host: closed.test", "-u", "bob:s3cret", url("/"))
		if !strings.HasPrefix(h, "HTTP/1.1 401 ") || len(field(h, "WWW-Authenticate")) != 0 {
			t.Fatalf("%s", h)
		}
	})

	t.Run("a malformed rewrite template denies its frontend", func(t *testing.T) {
		h, body := head(t, "-H", "Host: broken.test", url("/x"))
		if !strings.HasPrefix(h, "HTTP/1.1 404 ") {
			t.Fatalf("%s%s", h, body)
		}
		sozutest.WaitFor(t, 20*time.Second, "the warning about broken.test", func() bool {
			out := p.Out.String()
			return strings.Contains(out, "broken.test;P: rewrite_path") && strings.Contains(out, "$PATH[7]: path rule")
		})
	})

	for _, tt := range []struct {
		name   string
		args   []string
		status string
	}{
		{"no credentials", nil, "401"},
		{"wrong password", []string{"-u", "bob:secret"}, "401"},
		{"unknown user", []string{"-u", "alice:s3cret"}, "401"},
		{"good credentials", []string{"-u", "bob:s3cret"}, "200"},
	} {
		t.Run("basic auth: "+tt.name, func(t *testing.T) {
			h, body := head(t, append(append([]string{"-H", "Host: secure.test"}, tt.args...), url("/private"))...)
			if !strings.HasPrefix(h, "HTTP/1.1 "+tt.status+" ") {
				t.Fatalf("%s%s", h, body)
			}
			if tt.status == "401" {
				if v := field(h, "WWW-Authenticate"); len(v) != 1 || v[0] != `Basic realm="secure"` {
					t.Fatalf("WWW-Authenticate %q", v)
				}
				return
			}
			if body != `host=secure.test uri=/private xfh= tenant= cookie="" auth=false` {
				t.Fatalf("the backend saw %s", body)
			}
		})
	}
	if strings.Contains(p.Out.String(), "s3cret") || strings.Contains(p.Out.String(), "Ym9iOnMzY3JldA") {
		t.Errorf("credentials in the logs")
	}
}
