package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/state"
)

// TestIdentifiersAsTheStateSays: an identifier the state would refuse on
// the command socket is refused by the loader too, with the same reason
// and the position of the offending key or value.
func TestIdentifiersAsTheStateSays(t *testing.T) {
	long := strings.Repeat("x", state.MaxIdentifierBytes+1)
	reason := func(s string) string { return state.CheckIdentifier(s).Error() }
	cases := []struct {
		name, toml, want string
	}{
		{"cluster id with RLO", listen + "[clusters.\"a\\u202Eb\"]\nprotocol = \"http\"\n",
			`t.toml:13:1: clusters."a\u202eb": ` + reason("a\u202eb")},
		// A cluster id is a TOML key: the parser's key limit (the same
		// 256 bytes) refuses it first.
		{"cluster id too long", listen + "[clusters." + long + "]\nprotocol = \"http\"\n",
			`t.toml:13:11: key is 257 bytes long: keys may be at most 256 bytes`},
		{"backend id with LRI", listen + "[clusters.a]\nprotocol = \"http\"\nbackends = [{ address = \"127.0.0.1:1026\", backend_id = \"b\\u2066\" }]\n",
			`t.toml:15:56: clusters.a.backends[0].backend_id: ` + reason("b\u2066")},
		{"sticky id with LF", listen + "[clusters.a]\nprotocol = \"http\"\nbackends = [{ address = \"127.0.0.1:1026\", sticky_id = \"s\\n1\" }]\n",
			`t.toml:15:55: clusters.a.backends[0].sticky_id: ` + reason("s\n1")},
		{"hostname with zero width space", listen + "[clusters.a]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:8080\", hostname = \"a\\u200Bb.test\" }]\n",
			`t.toml:15:53: clusters.a.frontends[0].hostname: ` + reason("a\u200bb.test")},
		{"tag value with ESC", listen + "[clusters.a]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:8080\", hostname = \"a.test\", tags = { env = \"p\\u001B[2J\" } }]\n",
			`t.toml:15:78: clusters.a.frontends[0].tags.env: ` + reason("p\x1b[2J")},
		{"tcp tag key with RLO", listen + "[clusters.db]\nprotocol = \"tcp\"\nfrontends = [{ address = \"0.0.0.0:5432\", tags = { \"k\\u202E\" = \"v\" } }]\n",
			`t.toml:15:51: clusters.db.frontends[0].tags."k\u202e": ` + reason("k\u202e")},
		{"sticky name too long", "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:8080\"\nsticky_name = \"" + long + "\"\n",
			`t.toml:4:15: listeners[0].sticky_name: ` + reason(long)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), "t.toml")
			if err == nil {
				t.Fatal("Parse accepted the configuration")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid")
			}
			if err.Error() != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestPrintableIdentifiersAccepted: what the state accepts, the loader
// accepts, and the state then takes every request the loader built.
func TestPrintableIdentifiersAccepted(t *testing.T) {
	toml := listen + `
[clusters."café"]
protocol = "http"
frontends = [{ address = "0.0.0.0:8080", hostname = "xn--caf-dma.test", tags = { "équipe" = "集群" } }]
backends = [{ address = "127.0.0.1:1026", backend_id = "b-🚀", sticky_id = "s-é" }]
`
	c, err := Parse([]byte(toml), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := state.New()
	for _, r := range c.Requests() {
		if err := s.Dispatch(r.GetContent()); err != nil {
			t.Fatalf("the state refuses what the loader built: %v", err)
		}
	}
}
