package worker

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxy"
)

// TestSnapshotFrontendFeatures checks the wiring: a frontend with a policy
// carries it on its route, a frontend with a setting that cannot be
// honoured is a deny route (it does not fall through to "/"), and a
// cluster's credentials and challenge reach the proxy.
func TestSnapshotFrontendFeatures(t *testing.T) {
	const l = "127.0.0.1:8080"
	st := state.New()
	dispatch(t, st,
		httpListener(l, nil),
		cluster("a", func(c *command.Cluster) {
			c.AuthorizedHashes = []string{"admin:" + strings.Repeat("ab", 32), "broken", "x:y:" + strings.Repeat("0", 64), "u:zz"}
			c.WwwAuthenticate = proto.String("shop")
		}),
		cluster("b", func(c *command.Cluster) { c.WwwAuthenticate = proto.String("Basic realm=\"b\"\r\nX: 1") }),
		frontend(proto.String("a"), l, "a.test", "/", nil),
		frontend(proto.String("a"), l, "a.test", "/auth", func(f *command.RequestHttpFrontend) { f.RequiredAuth = proto.Bool(true) }),
		frontend(proto.String("a"), l, "a.test", "/bad", func(f *command.RequestHttpFrontend) { f.RewritePath = proto.String("$PATH[2]") }),
	)
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	warnings := strings.Join(snap.warnings, "\n")
	for _, want := range []string{
		"cluster a: authorized_hashes[1]: no ':' between the user name and the password hash: it is ignored",
		"cluster a: authorized_hashes[2]: a basic-auth user name has no ':': it is ignored",
		"cluster a: authorized_hashes[3]: the password hash is not 64 hexadecimal digits (the SHA-256 of the password): it is ignored",
		`cluster b: www_authenticate: control character "\r": it is ignored`,
		`frontend 127.0.0.1:8080;a.test;P/bad: rewrite_path: "$PATH[2]": $PATH[2]: path rule "/bad" has captures $PATH[0] to $PATH[1]: it answers 404`,
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	if strings.Contains(warnings, strings.Repeat("ab", 32)) {
		t.Errorf("a password hash is in the warnings:\n%s", warnings)
	}
	pl := snap.http["HTTP "+l]
	lookup := func(path string) (*proxy.Frontend, bool) {
		r := pl.Routes.Lookup([]byte("a.test"), []byte(path), []byte("GET"))
		fe, _ := r.Policy.(*proxy.Frontend)
		return fe, r.Deny
	}
	if fe, deny := lookup("/"); fe != nil || deny {
		t.Errorf("/: %+v %v", fe, deny)
	}
	if fe, deny := lookup("/auth/x"); fe == nil || !fe.RequiredAuth || deny {
		t.Errorf("/auth: %+v %v", fe, deny)
	}
	if fe, deny := lookup("/bad/x"); fe != nil || !deny {
		t.Errorf("/bad: %+v %v, want a deny route", fe, deny)
	}
	a, b := pl.Clusters["a"], pl.Clusters["b"]
	if a.Credentials.Len() != 1 || string(a.WWWAuthenticate) != `Basic realm="shop"` {
		t.Errorf("cluster a: %d accounts, challenge %q", a.Credentials.Len(), a.WWWAuthenticate)
	}
	if b.Credentials != nil || b.WWWAuthenticate != nil {
		t.Errorf("cluster b: %+v %q", b.Credentials, b.WWWAuthenticate)
	}
}

// Frontends the state keeps apart (their hostnames as written differ) but
// the router compares as one: the one not in force is reported.
func TestSnapshotShadowedFrontend(t *testing.T) {
	const l = "127.0.0.1:8080"
	st := state.New()
	dispatch(t, st,
		httpListener(l, nil),
		cluster("a", nil),
		cluster("b", nil),
		frontend(proto.String("a"), l, "shop.test", "/", nil),
		frontend(proto.String("b"), l, "SHOP.test", "/", nil),
		frontend(proto.String("b"), l, "other.test", "/", nil),
	)
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	warnings := strings.Join(snap.warnings, "\n")
	if !strings.Contains(warnings, "is not in force") || strings.Count(warnings, "is not in force") != 1 ||
		!strings.Contains(warnings, "SHOP.test;P/ (cluster b) matches the same requests and is served") {
		t.Fatalf("warnings:\n%s", warnings)
	}
	// The one served is the first in the state's order (its keys sorted:
	// "SHOP" before "shop"), as the warning says.
	if r := snap.http["HTTP "+l].Routes.Lookup([]byte("Shop.Test"), []byte("/"), []byte("GET")); r == nil || r.ClusterID != "b" {
		t.Errorf("served %v, want cluster b", r)
	}
}
