package e2e

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// TestHostnameRules: hostnames in upstream's regex syntax and
// internationalized ones route through the real binary, from the
// configuration file and from verbs; a hostname regex that does not
// compile is refused by the verb, naming the field.
func TestHostnameRules(t *testing.T) {
	dir := t.TempDir()
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin saw %s", r.Host)
	}))
	cfg, sock, port := sozutest.WriteConfig(t, dir, 1, "activate_listeners = true")
	extra := fmt.Sprintf(`
[clusters.web]
protocol = "http"
frontends = [
  { address = "127.0.0.1:%d", hostname = "/app[0-9]+/.example.com" },
  { address = "127.0.0.1:%d", hostname = "bücher.example" },
]
backends = [{ address = %q }]
`, port, port, origin.addr)
	appendFile(t, cfg, extra)
	p := sozutest.Start(t, dir, cfg, sock)
	c := sozutest.Dial(t, sock)

	get := func(host string) string {
		return curl(t, "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: "+host, fmt.Sprintf("http://127.0.0.1:%d/", port))
	}
	for _, tt := range []struct{ host, want string }{
		{"app7.example.com", "200"},
		{"APP42.example.com:8080", "200"},
		{"app7x.example.com", "404"},
		{"app7.example.com.evil.test", "404"},
		{"xn--bcher-kva.example", "200"},
	} {
		if got := get(tt.host); got != tt.want {
			t.Errorf("Host %s: %s, want %s", tt.host, got, tt.want)
		}
	}

	listener := command.NewSocketAddress(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)))
	front := func(host string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
			ClusterId: proto.String("web"), Address: listener, Hostname: proto.String(host),
			Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("/")}}}}
	}
	_, resp := c.Do(t, front("/cdn[0-9+/.example.com"))
	if resp.GetStatus() != command.ResponseStatus_FAILURE || !strings.Contains(resp.GetMessage(), "hostname") ||
		!strings.Contains(resp.GetMessage(), `regex segment "cdn[0-9+"`) {
		t.Errorf("a hostname regex that does not compile: %v %q", resp.GetStatus(), resp.GetMessage())
	}
	c.MustOK(t, front("/cdn[0-9]+/.example.com"))
	c.MustOK(t, front("münchen.example"))
	for _, tt := range []struct{ host, want string }{
		{"cdn3.example.com", "200"},
		{"xn--mnchen-3ya.example", "200"},
		{"cdnx.example.com", "404"},
	} {
		if got := get(tt.host); got != tt.want {
			t.Errorf("Host %s after the verbs: %s, want %s", tt.host, got, tt.want)
		}
	}
	if !p.Alive() {
		t.Fatal("sozu exited")
	}
}
