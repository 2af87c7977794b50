package worker

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
)

func sa(s string) *command.SocketAddress {
	a, err := command.ParseSocketAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

func dispatch(t *testing.T, st *state.ConfigState, reqs ...*command.Request) {
	t.Helper()
	for _, r := range reqs {
		if err := st.Dispatch(r); err != nil {
			t.Fatalf("%s: %v", command.VerbName(r), err)
		}
	}
}

func httpListener(addr string, mod func(*command.HttpListenerConfig)) *command.Request {
	l := &command.HttpListenerConfig{Address: sa(addr)}
	if mod != nil {
		mod(l)
	}
	return &command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: l}}
}

func cluster(id string, mod func(*command.Cluster)) *command.Request {
	c := &command.Cluster{ClusterId: proto.String(id), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false),
		LoadBalancing: command.LoadBalancingAlgorithms_ROUND_ROBIN.Enum()}
	if mod != nil {
		mod(c)
	}
	return &command.Request{RequestType: &command.Request_AddCluster{AddCluster: c}}
}

func frontend(cluster *string, addr, host, path string, mod func(*command.RequestHttpFrontend)) *command.Request {
	f := &command.RequestHttpFrontend{ClusterId: cluster, Address: sa(addr), Hostname: proto.String(host),
		Path:     &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String(path)},
		Position: command.RulePosition_TREE.Enum()}
	if mod != nil {
		mod(f)
	}
	return &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: f}}
}

func backend(cluster, id, addr string, weight *int32) *command.Request {
	b := &command.AddBackend{ClusterId: proto.String(cluster), BackendId: proto.String(id), Address: sa(addr)}
	if weight != nil {
		b.LoadBalancingParameters = &command.LoadBalancingParams{Weight: weight}
	}
	return &command.Request{RequestType: &command.Request_AddBackend{AddBackend: b}}
}

func TestBuildSnapshot(t *testing.T) {
	st := state.New()
	const l1, l2 = "127.0.0.1:8080", "[::1]:8081"
	dispatch(t, st,
		httpListener(l1, func(l *command.HttpListenerConfig) {
			l.BackTimeout = proto.Uint32(7)
			l.SozuIdHeader = proto.String("X-Trace")
			l.Answers = map[string]string{"404": "HTTP/1.1 404 Gone\n\ngone"}
			l.HttpAnswers = &command.CustomHttpAnswers{Answer_404: proto.String("legacy"), Answer_503: proto.String("legacy 503")}
		}),
		httpListener(l2, func(l *command.HttpListenerConfig) { l.SozuIdHeader = proto.String("Bad Header") }),
		cluster("shop", func(c *command.Cluster) {
			c.LoadBalancing = command.LoadBalancingAlgorithms_RANDOM.Enum()
			c.Answer_503 = proto.String("legacy cluster 503")
			c.Answers = map[string]string{"502": "HTTP/1.1 5 broken\n\n"}
		}),
		cluster("secure", func(c *command.Cluster) { c.HttpsRedirect = proto.Bool(true) }),
		frontend(proto.String("shop"), l1, "shop.example.com", "/", nil),
		frontend(nil, l1, "shop.example.com", "/admin", nil),
		frontend(proto.String("shop"), l1, "auth.example.com", "/", func(f *command.RequestHttpFrontend) { f.RequiredAuth = proto.Bool(true) }),
		frontend(proto.String("shop"), l1, "moved.example.com", "/", func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
		}),
		frontend(proto.String("secure"), l1, "secure.example.com", "/", nil),
		frontend(proto.String("shop"), l1, "re.example.com", "(", func(f *command.RequestHttpFrontend) { f.Path.Kind = command.PathRuleKind_REGEX.Enum() }),
		frontend(proto.String("orphan"), l2, "*", "/", nil),
		backend("shop", "s1", "127.0.0.1:9001", proto.Int32(3)),
		backend("shop", "s2", "127.0.0.1:9002", nil),
		backend("orphan", "o1", "127.0.0.1:9003", nil),
	)
	reg := backends.NewRegistry(backends.Options{})
	snap := buildSnapshot(st, reg, false)

	warnings := strings.Join(snap.warnings, "\n")
	for _, want := range []string{
		`sozu_id_header "Bad Header" is not a field name`,
		"cluster shop: answers.502: answer 502",
		"required_auth: cluster shop has no authorized_hashes: every request answers 401",
		"path regex",
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}

	a := snap.http["HTTP "+l1]
	b := snap.http["HTTP "+l2]
	if a == nil || b == nil || len(snap.http) != 2 {
		t.Fatalf("listeners %v", snap.http)
	}
	if a.BackTimeout.Seconds() != 7 || a.FrontTimeout.Seconds() != 60 || a.ConnectTimeout.Seconds() != 3 || a.RequestTimeout.Seconds() != 10 {
		t.Errorf("timeouts %v %v %v %v", a.FrontTimeout, a.BackTimeout, a.ConnectTimeout, a.RequestTimeout)
	}
	if a.IDHeader != "X-Trace" || b.IDHeader != "" {
		t.Errorf("id headers %q %q", a.IDHeader, b.IDHeader)
	}
	if tmpl := a.Answers.Lookup(404); tmpl == nil || tmpl.Status() != 404 {
		t.Errorf("the answers map does not win over http_answers")
	} else if a.Answers.Lookup(503) == nil {
		t.Errorf("legacy http_answers 503 lost")
	}

	route := func(l string, host, path string) string {
		r := snap.http["HTTP "+l].Routes.Lookup([]byte(host), []byte(path), []byte("GET"))
		switch {
		case r == nil:
			return "none"
		case r.Deny:
			return "deny"
		}
		return r.ClusterID
	}
	for _, tt := range [][4]string{
		{l1, "shop.example.com", "/", "shop"},
		{l1, "shop.example.com", "/admin/x", "deny"},
		{l1, "auth.example.com", "/", "shop"},     // with its policy: see TestFrontendPolicy
		{l1, "moved.example.com", "/", "shop"},    // likewise
		{l1, "secure.example.com", "/", "secure"}, // https_redirect: the proxy answers 301
		{l1, "re.example.com", "/", "none"},
		{l1, "other", "/", "none"},
		{l2, "anything", "/", "orphan"},
	} {
		if got := route(tt[0], tt[1], tt[2]); got != tt[3] {
			t.Errorf("%s %s%s routes to %s, want %s", tt[0], tt[1], tt[2], got, tt[3])
		}
	}

	shop := a.Clusters["shop"]
	if shop == nil || shop.Backends.Len() != 2 || shop.Backends.Policy.Algorithm != backends.Random {
		t.Fatalf("cluster shop: %+v", shop)
	}
	if shop.Answers.Lookup(503) == nil || shop.Answers.Lookup(502) != nil {
		t.Errorf("cluster answers: 503 %v, 502 %v", shop.Answers.Lookup(503), shop.Answers.Lookup(502))
	}
	if o := b.Clusters["orphan"]; o == nil || o.Backends.Len() != 1 {
		t.Errorf("backends of a cluster without configuration are lost: %+v", o)
	}
	if a.Clusters["secure"] == nil || a.Clusters["secure"].Backends.Len() != 0 || !a.Clusters["secure"].HTTPSRedirect {
		t.Errorf("cluster without backends: %+v", a.Clusters["secure"])
	}

	// A rebuild keeps the backends that did not change.
	before := shop.Backends.Backends()
	dispatch(t, st, backend("shop", "s3", "127.0.0.1:9004", nil))
	after := buildSnapshot(st, reg, false).http["HTTP "+l1].Clusters["shop"].Backends.Backends()
	if len(after) != 3 || after[0] != before[0] || after[1] != before[1] {
		t.Errorf("rebuild replaced kept backends")
	}
}
