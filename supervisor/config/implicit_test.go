package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

// TestImplicitListeners: a frontend whose address no [[listeners]] entry
// declares gets a listener with default settings, as upstream does (https
// when the frontend has a certificate), reported as a note, not an error.
func TestImplicitListeners(t *testing.T) {
	toml := `front_timeout = 70
[[listeners]]
protocol = "http"
address = "0.0.0.0:8080"

[clusters.web]
protocol = "http"
frontends = [
  { address = "0.0.0.0:8080", hostname = "declared.test" },
  { address = "0.0.0.0:9080", hostname = "plain.test" },
  { address = "0.0.0.0:9443", hostname = "tls.test", certificate = "testdata/tls/cert.pem", key = "testdata/tls/key.pem" },
  { address = "0.0.0.0:9080", hostname = "again.test" },
]

[clusters.db]
protocol = "tcp"
frontends = [{ address = "127.0.0.1:9432" }]
backends = [{ address = "10.0.0.1:5432" }]
`
	c, err := Parse([]byte(toml), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	wantListeners := []Listener{
		{ProtocolHTTP, netip.MustParseAddrPort("0.0.0.0:8080")},
		{ProtocolTCP, netip.MustParseAddrPort("127.0.0.1:9432")}, // cluster "db" sorts first
		{ProtocolHTTP, netip.MustParseAddrPort("0.0.0.0:9080")},
		{ProtocolHTTPS, netip.MustParseAddrPort("0.0.0.0:9443")},
	}
	if len(c.Listeners) != len(wantListeners) {
		t.Fatalf("listeners %v, want %v", c.Listeners, wantListeners)
	}
	for i, l := range wantListeners {
		if c.Listeners[i] != l {
			t.Errorf("listener %d = %v, want %v", i, c.Listeners[i], l)
		}
	}
	wantNotes := []string{
		"t.toml:17:16: clusters.db.frontends[0].address: no [[listeners]] entry at 127.0.0.1:9432: a tcp listener with default settings is created for it, as upstream does",
		"t.toml:10:5: clusters.web.frontends[1].address: no [[listeners]] entry at 0.0.0.0:9080: an http listener with default settings is created for it, as upstream does",
		"t.toml:11:5: clusters.web.frontends[2].address: no [[listeners]] entry at 0.0.0.0:9443: an https listener with default settings is created for it, as upstream does",
	}
	if len(c.Notes) != len(wantNotes) {
		t.Fatalf("notes %v, want %d", c.Notes, len(wantNotes))
	}
	for i, n := range c.Notes {
		if n.String() != wantNotes[i] {
			t.Errorf("note %d:\n got %s\nwant %s", i, n, wantNotes[i])
		}
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %v", c.Warnings)
	}
	var http, https, tcp, fronts int
	for _, r := range c.Requests() {
		switch x := r.GetContent().GetRequestType().(type) {
		case *command.Request_AddHttpListener:
			http++
			if x.AddHttpListener.GetAddress().Display() == "0.0.0.0:9080" && x.AddHttpListener.GetFrontTimeout() != 70 {
				t.Errorf("implicit listener front_timeout %d, want the global 70", x.AddHttpListener.GetFrontTimeout())
			}
		case *command.Request_AddHttpsListener:
			https++
			if x.AddHttpsListener.Certificate != nil {
				t.Errorf("implicit https listener has a certificate")
			}
		case *command.Request_AddTcpListener:
			tcp++
		case *command.Request_AddHttpFrontend, *command.Request_AddHttpsFrontend, *command.Request_AddTcpFrontend:
			fronts++
		}
	}
	if http != 2 || https != 1 || tcp != 1 || fronts != 5 {
		t.Errorf("%d http, %d https, %d tcp listeners, %d frontends; want 2, 1, 1, 5", http, https, tcp, fronts)
	}
}

// TestHostnameRules: hostnames in upstream's regex syntax are checked by
// the router's own code, naming the key; an internationalized name reaches
// the state as its A-labels, so two spellings of it are one frontend.
func TestHostnameRules(t *testing.T) {
	const listen = "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\n[clusters.a]\nprotocol = \"http\"\n"
	c, err := Parse([]byte(listen+`frontends = [
  { address = "0.0.0.0:80", hostname = "/cdn[0-9]+/.example.com" },
  { address = "0.0.0.0:80", hostname = "Bücher.Example" },
]`), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, r := range c.Requests() {
		if f := r.GetContent().GetAddHttpFrontend(); f != nil {
			hosts = append(hosts, f.GetHostname())
		}
	}
	if strings.Join(hosts, " ") != "/cdn[0-9]+/.example.com xn--bcher-kva.example" {
		t.Errorf("hostnames %q", hosts)
	}

	for _, tc := range []struct{ hosts, want string }{
		{`"/cdn[0-9+/.example.com"`, `t.toml:7:40: clusters.a.frontends[0].hostname: regex segment "cdn[0-9+": error parsing regexp: missing closing ]: ` + "`[0-9+`"},
		{`"/a/b.example.com"`, `t.toml:7:40: clusters.a.frontends[0].hostname: byte 3: a regex segment is a whole label, followed by '.' or the end of the name`},
		{`"bücher.example" }, { address = "0.0.0.0:80", hostname = "xn--bcher-kva.example"`, `t.toml:7:61: clusters.a.frontends[1]: same address, hostname, path and method as clusters.a.frontends[0]`},
	} {
		_, err := Parse([]byte(listen+"frontends = [\n  { address = \"0.0.0.0:80\", hostname = "+tc.hosts+" }]\n"), "t.toml")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.hosts, err, tc.want)
		}
	}
}
