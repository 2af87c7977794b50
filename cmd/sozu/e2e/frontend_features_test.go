package e2e

import (
	"bytes"
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

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/statefile"
)

// TestFrontendFeatures runs sozu with frontends that redirect (301, 302,
// 308, with a template), refuse (401), demand basic authentication,
// rewrite the host, port and path they forward, and edit request and
// response fields, and checks them with curl. Settings workers cannot
// honour are refused by the supervisor, and served fail-closed when a
// state file brings them.
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

	// Settings workers cannot honour as written: the supervisor refuses
	// them; a state file record that has them (written before these
	// checks) is taken, and the workers fail closed.
	sa, err := command.ParseSocketAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	broken := &command.RequestHttpFrontend{ClusterId: proto.String("app"), Address: sa, Hostname: proto.String("broken.test"),
		Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("")}, Position: command.RulePosition_TREE.Enum(),
		RewritePath: proto.String("/$PATH[7]")}
	legacy := &command.RequestHttpFrontend{ClusterId: proto.String("app"), Address: sa, Hostname: proto.String("legacy.test"),
		Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("")}, Position: command.RulePosition_TREE.Enum(),
		Headers: []*command.Header{
			{Position: command.HeaderPosition_BOTH.Enum(), Key: proto.String("Content-Length"), Val: proto.String("0")},
			{Position: command.HeaderPosition_RESPONSE.Enum(), Key: proto.String("X-Legacy"), Val: proto.String("yes")},
		}}
	t.Run("the supervisor refuses settings workers cannot honour", func(t *testing.T) {
		c := sozutest.Dial(t, sock)
		for f, want := range map[*command.RequestHttpFrontend]string{
			broken: `rewrite_path: "/$PATH[7]": $PATH[7]: path rule "" has captures $PATH[0] to $PATH[1]`,
			legacy: "headers[0].key: Content-Length cannot be edited in requests: the proxy frames messages itself; " +
				"headers[0].key: Content-Length cannot be edited in responses: the proxy frames messages itself",
		} {
			_, resp := c.Do(t, &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: f}})
			if resp.GetStatus() != command.ResponseStatus_FAILURE || !strings.HasSuffix(resp.GetMessage(), want) {
				t.Errorf("%s: %v %q, want a failure ending with %q", f.GetHostname(), resp.GetStatus(), resp.GetMessage(), want)
			}
		}
	})

	t.Run("a state file record workers cannot honour is served fail-closed", func(t *testing.T) {
		var b bytes.Buffer
		enc := statefile.NewEncoder(&b)
		for i, f := range []*command.RequestHttpFrontend{broken, legacy} {
			if err := enc.Encode(&command.WorkerRequest{Id: proto.String(fmt.Sprintf("SAVE-%d", i)),
				Content: &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: f}}}); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, "old.state")
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		sozutest.Dial(t, sock).MustOK(t, &command.Request{RequestType: &command.Request_LoadState{LoadState: path}})

		// A malformed rewrite template denies its frontend: 404, not the
		// "*" frontend it would fall through to if it were left out.
		h, body := head(t, "-H", "Host: broken.test", url("/x"))
		if !strings.HasPrefix(h, "HTTP/1.1 404 ") {
			t.Fatalf("%s%s", h, body)
		}
		// An edit of a field the proxy keeps control of is dropped, the
		// others are made.
		h, body = head(t, "-H", "Host: legacy.test", url("/x"))
		if !strings.HasPrefix(h, "HTTP/1.1 200") || strings.Join(field(h, "X-Legacy"), ",") != "yes" {
			t.Fatalf("%s%s", h, body)
		}
		if v := field(h, "Content-Length"); strings.Join(v, ",") != fmt.Sprint(len(body)) {
			t.Errorf("Content-Length %q: the refused edit changed the framing", v)
		}
		sozutest.WaitFor(t, 20*time.Second, "the workers' warnings", func() bool {
			out := p.Out.String()
			return strings.Contains(out, `broken.test;P: rewrite_path: \"/$PATH[7]\": $PATH[7]: path rule \"\" has captures $PATH[0] to $PATH[1]: it answers 404`) &&
				strings.Contains(out, "legacy.test;P: headers[0].key: Content-Length cannot be edited in requests: the proxy frames messages itself: it is ignored")
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
