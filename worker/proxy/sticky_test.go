package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
)

func TestStripCookie(t *testing.T) {
	for _, tc := range []struct {
		name, in, out, value string
		hit                  bool
	}{
		{"absent", "a=1; b=2", "", "", false},
		{"alone", "S=x", "", "x", true},
		{"first", "S=x; a=1; b=2", "a=1; b=2", "x", true},
		{"middle", "a=1; S=x; b=2", "a=1; b=2", "x", true},
		{"last", "a=1;S=x", "a=1", "x", true},
		{"spaces", " a=1 ;  S = x ; b=2 ", "a=1; b=2", "x", true},
		{"twice, first wins", "S=x; a=1; S=y", "a=1", "x", true},
		{"empty value", "S=; a=1", "a=1", "", true},
		{"name inside another name", "XS=1; SX=2; a=S", "", "", false},
		{"case matters", "s=x; a=1", "", "", false},
		{"no equals kept", "S; a=1; S=z", "S; a=1", "z", true},
		{"empty segments dropped", ";;S=x;;a=1;", "a=1", "x", true},
		{"hostile value", "S=\"sa\\\"; a=1", "a=1", "\"sa\\\"", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, v, hit := stripCookie([]byte("pre"), []byte(tc.in), []byte("S"))
			if hit != tc.hit || string(v) != tc.value || string(out) != "pre"+tc.out {
				t.Fatalf("stripCookie(%q) = %q, %q, %v; want %q, %q, %v", tc.in, out, v, hit, "pre"+tc.out, tc.value, tc.hit)
			}
		})
	}
}

// FuzzStripCookie: what stripCookie leaves holds no cookie of that name,
// keeps every other non-empty segment in order, and stripping it again
// finds nothing.
func FuzzStripCookie(f *testing.F) {
	for _, s := range []string{"a=1; SOZUBALANCEID=x; b=2", "SOZUBALANCEID=", ";;", "SOZUBALANCEID", " SOZUBALANCEID = y ;"} {
		f.Add(s)
	}
	name := []byte("SOZUBALANCEID")
	f.Fuzz(func(t *testing.T, in string) {
		out, _, hit := stripCookie(nil, []byte(in), name)
		var kept []string
		for _, seg := range strings.Split(in, ";") {
			seg = string(trimOWS([]byte(seg)))
			if seg == "" {
				continue
			}
			if eq := strings.IndexByte(seg, '='); eq >= 0 && string(trimOWS([]byte(seg[:eq]))) == string(name) {
				continue
			}
			kept = append(kept, seg)
		}
		if !hit {
			if len(out) != 0 {
				t.Fatalf("no hit but output %q", out)
			}
			return
		}
		if want := strings.Join(kept, "; "); string(out) != want {
			t.Fatalf("stripCookie(%q) left %q, want %q", in, out, want)
		}
		if _, _, again := stripCookie(nil, out, name); again {
			t.Fatalf("stripCookie(%q) left a sticky cookie in %q", in, out)
		}
	})
}

func TestStickyCookieValue(t *testing.T) {
	for id, want := range map[string]string{
		"b-1": "b-1", "a.b_c~d!#$&'*+/:<=>?@[]^`{|}": "a.b_c~d!#$&'*+/:<=>?@[]^`{|}",
		"web-0-[::1]:8000": "web-0-[::1]:8000", "s;a": "s%3Ba", "s a": "s%20a", "s,a": "s%2Ca", `s"a`: "s%22a",
		`s\a`: "s%5Ca", "s\x7f": "s%7F", "100%": "100%25", "%3B": "%253B", "b-🚀": "b-%F0%9F%9A%80",
	} {
		got := StickyCookieValue(id)
		if got != want {
			t.Errorf("StickyCookieValue(%q) = %q, want %q", id, got, want)
		}
		for i := 0; i < len(got); i++ {
			if !cookieOctet(got[i]) {
				t.Errorf("StickyCookieValue(%q) = %q holds %q", id, got, got[i])
			}
		}
	}
	if StickyCookieValue("s;") == StickyCookieValue("s%3B") {
		t.Error("two ids share a cookie value")
	}
}

// stickyFixture is a proxy whose cluster "c" is sticky, its backends
// named by their ids "a", "b"..., with sticky ids "sa", "sb"...
type stickyFixture struct {
	*fixture
	names []string // backend ids
	addrs []string
}

// nameBackend answers 200 with "<name> cookie=<Cookie fields, joined by |>"
// (stickyGet reads it).
func nameBackend(t *testing.T, name string) *httpBackend {
	return newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+" cookie="+strings.Join(r.Header.Values("Cookie"), "|"))
	})
}

func newStickyFixture(t *testing.T, sticky bool, setup func(*Listener), names ...string) *stickyFixture {
	var addrs []string
	for _, n := range names {
		addrs = append(addrs, nameBackend(t, n).addr)
	}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": addrs}, func(l *Listener) {
		l.Clusters["c"].Sticky = sticky
		if setup != nil {
			setup(l)
		}
	})
	sf := &stickyFixture{fixture: f, names: names, addrs: addrs}
	sf.configure(names...)
	return sf
}

// configure makes the named backends (of those the fixture started) the
// cluster's, with their sticky ids, as a new configuration would.
func (f *stickyFixture) configure(keep ...string) {
	var specs []backends.Spec
	for i, n := range f.names {
		for _, k := range keep {
			if k == n {
				specs = append(specs, backends.Spec{ClusterID: "c", ID: n, Addr: mustAddrPort(f.addrs[i]), Weight: 100, StickyID: "s" + n})
			}
		}
	}
	sets := f.reg.Update(specs, nil)
	old := f.srv.Config()
	next := *old
	cl := *old.Clusters["c"]
	cl.Backends = sets["c"]
	next.Clusters = map[string]*Cluster{"c": &cl}
	f.srv.Swap(&next)
}

// get sends one GET with the given Cookie field (none when empty) on c and
// returns the response's body and Set-Cookie fields.
func stickyGet(t *testing.T, c net.Conn, br *bufio.Reader, cookie string) (body string, setCookie []string) {
	t.Helper()
	req := "GET / HTTP/1.1\r\nHost: x\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), resp.Header.Values("Set-Cookie")
}

func dialProxy(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// TestStickySessions: a client without the cookie gets one naming the
// backend that served it; with it, every request goes to that backend,
// which never sees the cookie (the client's other cookies pass); a value
// naming no configured backend, or one removed, is balanced anew and
// replaced.
func TestStickySessions(t *testing.T) {
	f := newStickyFixture(t, true, nil, "a", "b")
	c, br := dialProxy(t, f.addr)

	body, sc := stickyGet(t, c, br, "")
	backend := strings.Fields(body)[0]
	if want := "SOZUBALANCEID=s" + backend + "; Path=/; HttpOnly; SameSite=Lax"; len(sc) != 1 || sc[0] != want {
		t.Fatalf("first answer from %s sets %q, want %q", backend, sc, want)
	}
	for i := 0; i < 50; i++ {
		body, sc := stickyGet(t, c, br, "theme=dark; SOZUBALANCEID=sb; lang=fr")
		if body != "b cookie=theme=dark; lang=fr" || len(sc) != 0 {
			t.Fatalf("request %d with the cookie of b: %q, Set-Cookie %q", i, body, sc)
		}
	}
	if body, sc := stickyGet(t, c, br, "SOZUBALANCEID=sa"); body != "a cookie=" || len(sc) != 0 {
		t.Fatalf("only the sticky cookie of a: %q, Set-Cookie %q (the Cookie field must go)", body, sc)
	}

	for _, hostile := range []string{"zz", "a", "sb\\", "\"sb\"", strings.Repeat("x", 4000), "sb%00"} {
		body, sc := stickyGet(t, c, br, "SOZUBALANCEID="+hostile)
		backend := strings.Fields(body)[0]
		if len(sc) != 1 || sc[0] != "SOZUBALANCEID=s"+backend+"; Path=/; HttpOnly; SameSite=Lax" {
			t.Fatalf("cookie %.20q: answered by %s with Set-Cookie %q", hostile, backend, sc)
		}
		if strings.Contains(body, "SOZUBALANCEID") {
			t.Fatalf("cookie %.20q reached the backend: %q", hostile, body)
		}
	}

	f.configure("a") // b removed
	for i := 0; i < 3; i++ {
		body, sc := stickyGet(t, c, br, "SOZUBALANCEID=sb")
		if !strings.HasPrefix(body, "a ") || len(sc) != 1 || !strings.HasPrefix(sc[0], "SOZUBALANCEID=sa;") {
			t.Fatalf("cookie of removed b: %q, Set-Cookie %q", body, sc)
		}
	}
}

// TestStickyName: the listener's sticky name is the cookie's; a cookie of
// the default name is then an ordinary cookie.
func TestStickyName(t *testing.T) {
	f := newStickyFixture(t, true, func(l *Listener) { l.StickyName = "route" }, "a", "b")
	c, br := dialProxy(t, f.addr)
	body, sc := stickyGet(t, c, br, "SOZUBALANCEID=sa; route=sb")
	if body != "b cookie=SOZUBALANCEID=sa" || len(sc) != 0 {
		t.Fatalf("got %q, Set-Cookie %q", body, sc)
	}
}

// TestStickyOff: a cluster without sticky sessions forwards the cookie
// untouched and sets none.
func TestStickyOff(t *testing.T) {
	f := newStickyFixture(t, false, nil, "a", "b")
	c, br := dialProxy(t, f.addr)
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		body, sc := stickyGet(t, c, br, "SOZUBALANCEID=sb")
		if !strings.HasSuffix(body, " cookie=SOZUBALANCEID=sb") || len(sc) != 0 {
			t.Fatalf("not sticky: %q, Set-Cookie %q", body, sc)
		}
		seen[strings.Fields(body)[0]] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("not sticky, yet only %v answered", seen)
	}
}

// TestStickySecureOverHTTPS: over HTTPS the cookie is Secure.
func TestStickySecureOverHTTPS(t *testing.T) {
	f := newStickyFixture(t, true, func(l *Listener) { l.TLS = testTLSConfig(t, "x") }, "a")
	out := tlsExchange(t, f.addr, "", "x", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if want := "Set-Cookie: SOZUBALANCEID=sa; Path=/; HttpOnly; SameSite=Lax; Secure\r\n"; !strings.Contains(out, want) {
		t.Fatalf("HTTPS answer lacks %q:\n%s", want, out)
	}
}
