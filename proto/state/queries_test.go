package state

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

func TestClusterInformation(t *testing.T) {
	s := buildSample(t)
	if s.Cluster("gone") != nil || s.Cluster("nope") != nil {
		t.Error("information for a cluster that does not exist")
	}
	info := s.Cluster("shop")
	if info.GetConfiguration().GetClusterId() != "shop" {
		t.Fatalf("configuration = %v", info.GetConfiguration())
	}
	if len(info.GetHttpFrontends()) != 2 || len(info.GetHttpsFrontends()) != 1 || len(info.GetBackends()) != 3 {
		t.Errorf("shop: %d http, %d https, %d backends", len(info.GetHttpFrontends()), len(info.GetHttpsFrontends()), len(info.GetBackends()))
	}
	db := s.Cluster("db")
	if len(db.GetTcpFrontends()) != 2 || len(db.GetBackends()) != 1 {
		t.Errorf("db: %v", db)
	}
	if len(s.Cluster("dns").GetUdpFrontends()) != 1 {
		t.Errorf("dns: %v", s.Cluster("dns"))
	}
}

func TestClustersByDomain(t *testing.T) {
	s := New()
	mustDispatch(t, s,
		addCluster(cluster("shop")), addCluster(cluster("wild")), addCluster(cluster("re")), addCluster(cluster("exact")),
		addHTTP(front("shop", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_PREFIX, "/api")),
		addHTTPS(front("wild", "0.0.0.0:443", "*.example.com", command.PathRuleKind_PREFIX, "/")),
		addHTTP(front("re", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_REGEX, "^/v[0-9]+$")),
		addHTTP(front("exact", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_EQUALS, "/login")),
		addHTTP(front("", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_PREFIX, "/")),       // deny: no cluster
		addHTTP(front("ghost", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_PREFIX, "/g")), // cluster unknown
	)
	ids := func(host string, path *string) []string {
		var out []string
		for _, c := range s.ClustersByDomain(host, path) {
			out = append(out, c.GetConfiguration().GetClusterId())
		}
		return out
	}
	p := proto.String
	tests := []struct {
		host string
		path *string
		want []string
	}{
		{"shop.example.com", nil, []string{"exact", "re", "shop", "wild"}},
		{"SHOP.example.com", nil, []string{"exact", "re", "shop", "wild"}},
		{"other.example.com", nil, []string{"wild"}},
		{"a.b.example.com", nil, nil},
		{"example.com", nil, nil},
		{"shop.example.com", p("/api/v1"), []string{"shop", "wild"}},
		{"shop.example.com", p("/v2"), []string{"re", "wild"}},
		{"shop.example.com", p("^/v[0-9]+$"), []string{"re"}},
		{"shop.example.com", p("/login"), []string{"exact", "wild"}},
		{"shop.example.com", p("/login/x"), []string{"wild"}},
	}
	for _, tt := range tests {
		if got := ids(tt.host, tt.path); !slices.Equal(got, tt.want) {
			path := "<nil>"
			if tt.path != nil {
				path = *tt.path
			}
			t.Errorf("ClustersByDomain(%q, %q) = %v, want %v", tt.host, path, got, tt.want)
		}
	}
}

func TestListFrontends(t *testing.T) {
	s := buildSample(t)
	count := func(l *command.ListedFrontends) [4]int {
		return [4]int{len(l.GetHttpFrontends()), len(l.GetHttpsFrontends()), len(l.GetTcpFrontends()), len(l.GetUdpFrontends())}
	}
	dom := proto.String("shop")
	tests := []struct {
		name string
		f    *command.FrontendFilters
		want [4]int
	}{
		{"nil filter lists all", nil, [4]int{4, 2, 2, 1}},
		{"no flag lists all", &command.FrontendFilters{}, [4]int{4, 2, 2, 1}},
		{"http only", &command.FrontendFilters{Http: proto.Bool(true)}, [4]int{4, 0, 0, 0}},
		{"https only", &command.FrontendFilters{Https: proto.Bool(true)}, [4]int{0, 2, 0, 0}},
		{"tcp brings udp", &command.FrontendFilters{Tcp: proto.Bool(true)}, [4]int{0, 0, 2, 1}},
		{"domain substring excludes l4", &command.FrontendFilters{Domain: dom}, [4]int{2, 1, 0, 0}},
		{"domain with tcp flag", &command.FrontendFilters{Tcp: proto.Bool(true), Domain: dom}, [4]int{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		if got := count(s.ListFrontends(tt.f)); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	http := s.ListFrontends(nil).GetHttpFrontends()
	var keys []string
	for _, f := range http {
		k, _ := FrontendKey(f)
		keys = append(keys, k)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("http frontends not in key order: %v", keys)
	}
}

func TestListListeners(t *testing.T) {
	l := buildSample(t).ListListeners()
	got := [][]string{sortedKeys(l.GetHttpListeners()), sortedKeys(l.GetHttpsListeners()),
		sortedKeys(l.GetTcpListeners()), sortedKeys(l.GetUdpListeners())}
	want := [][]string{{"0.0.0.0:80", "10.0.0.1:8080", "[::]:80"}, {"0.0.0.0:443", "[::]:443"}, {"0.0.0.0:5432"}, {"0.0.0.0:53"}}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("listeners[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if !l.GetHttpListeners()["0.0.0.0:80"].GetActive() || l.GetHttpListeners()["[::]:80"].GetActive() {
		t.Error("active flags wrong")
	}
}

func TestHealthChecksQuery(t *testing.T) {
	s := buildSample(t)
	mustDispatch(t, s, setHealthCheck("api", healthCheck("/ping")))
	if got := sortedKeys(s.HealthChecks(nil).GetMap()); !slices.Equal(got, []string{"api", "shop"}) {
		t.Errorf("all health checks: %v", got)
	}
	if got := sortedKeys(s.HealthChecks(proto.String("api")).GetMap()); !slices.Equal(got, []string{"api"}) {
		t.Errorf("api health checks: %v", got)
	}
	if got := s.HealthChecks(proto.String("db")).GetMap(); len(got) != 0 {
		t.Errorf("db health checks: %v", got)
	}
}

func TestListenerLookup(t *testing.T) {
	s := buildSample(t)
	if s.HTTPListener(sa("0.0.0.0:80")) == nil || s.HTTPListener(sa("0.0.0.0:81")) != nil ||
		s.HTTPListener(nil) != nil || s.HTTPListener(badPort("0.0.0.0", 1<<17)) != nil {
		t.Error("HTTPListener lookup")
	}
	if s.HTTPSListener(sa("[::]:443")) == nil || s.TCPListener(sa("0.0.0.0:5432")) == nil || s.UDPListener(sa("0.0.0.0:53")) == nil {
		t.Error("listener lookup")
	}
}
