package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestStickySessions: with sticky_session, a client's first answer sets a
// cookie naming its backend; presenting it, 50 requests on new
// connections (spread over both workers) all reach that backend, which
// never sees the cookie; once the backend is removed with `sozu backend
// remove`, the same cookie lands on the other backend and the answer
// sets a new cookie, which then sticks.
func TestStickySessions(t *testing.T) {
	origin := func(name string) *httpOrigin {
		return startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.Header.Get("Cookie"), "SOZUBALANCEID") {
				http.Error(w, "the sticky cookie reached the backend", http.StatusBadRequest)
				return
			}
			io.WriteString(w, name+" "+r.Header.Get("Cookie"))
		}))
	}
	a, b := origin("a"), origin("b")
	addrOf := map[string]string{"a": a.addr, "b": b.addr}

	dir := t.TempDir()
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %[2]q

[clusters.web]
protocol = "http"
sticky_session = true
frontends = [ { address = %[2]q, hostname = "web.test" } ]
backends = [ { address = %[3]q, backend_id = "a", sticky_id = "sa" }, { address = %[4]q, backend_id = "b" } ]
`, sock, front, a.addr, b.addr)
	p := startProxy(t, dir, sock, cfg, front)

	// get sends one request on a new connection, with cookie unless empty,
	// and returns the answering backend and the Set-Cookie fields.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(cookie string) (string, []string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+front+"/", nil)
		req.Host = "web.test"
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		return strings.SplitN(string(body), " ", 2)[0], resp.Header.Values("Set-Cookie")
	}
	cookieOf := func(setCookie []string) string {
		t.Helper()
		if len(setCookie) != 1 {
			t.Fatalf("Set-Cookie %q, want one", setCookie)
		}
		pair, attrs, _ := strings.Cut(setCookie[0], ";")
		if attrs != " Path=/; HttpOnly; SameSite=Lax" {
			t.Fatalf("Set-Cookie %q: attributes %q", setCookie[0], attrs)
		}
		return pair
	}
	stickyID := map[string]string{"a": "sa", "b": "b"} // b: its backend id

	first, sc := get("")
	cookie := cookieOf(sc)
	if cookie != "SOZUBALANCEID="+stickyID[first] {
		t.Fatalf("backend %s set %q", first, cookie)
	}
	for i := 0; i < 50; i++ {
		got, sc := get("theme=dark; " + cookie)
		if got != first || len(sc) != 0 {
			t.Fatalf("request %d with %q: answered by %s (want %s), Set-Cookie %q", i, cookie, got, first, sc)
		}
	}

	other := map[string]string{"a": "b", "b": "a"}[first]
	p.MustCLI("backend", "remove", "--id", "web", "--backend-id", first, "--address", addrOf[first])
	got, sc := get(cookie)
	if got != other {
		t.Fatalf("after removing %s, its cookie landed on %s", first, got)
	}
	moved := cookieOf(sc)
	if moved != "SOZUBALANCEID="+stickyID[other] {
		t.Fatalf("after the move, Set-Cookie %q, want the sticky id of %s", moved, other)
	}
	for i := 0; i < 10; i++ {
		if got, sc := get(moved); got != other || len(sc) != 0 {
			t.Fatalf("request %d with the new cookie: %s, Set-Cookie %q", i, got, sc)
		}
	}
}
