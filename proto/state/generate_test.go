package state

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

var update = flag.Bool("update", false, "rewrite testdata/generate.golden and the FuzzDispatch seed corpus")

// sampleRequests is a non-trivial configuration, deliberately inserted out
// of order. The certificates are fresh each run, so the golden rendering
// shows their names, not their fingerprints, and each address holds one.
func sampleRequests(t testing.TB) []*command.Request {
	shopPEM, _ := testCert(t, "shop", "shop.example.com", "www.shop.example.com")
	apiPEM, _ := testCert(t, "api.example.com")
	shop := cluster("shop")
	shop.HealthCheck = healthCheck("/health")
	activeHTTP := httpListener("0.0.0.0:80")
	activeHTTP.Active = proto.Bool(true)
	return []*command.Request{
		addUDPListener("0.0.0.0:53"),
		addTCPListener("0.0.0.0:5432"),
		activateListener("0.0.0.0:5432", command.ListenerType_TCP),
		addHTTPListener(httpListener("[::]:80")),
		addHTTPListener(httpListener("10.0.0.1:8080")),
		addHTTPListener(activeHTTP),
		addHTTPSListener(httpsListener("[::]:443")),
		addHTTPSListener(httpsListener("0.0.0.0:443")),
		activateListener("0.0.0.0:443", command.ListenerType_HTTPS),
		addCluster(shop),
		addCluster(cluster("api")),
		addCluster(cluster("gone")),
		addCluster(cluster("db")),
		addCluster(cluster("dns")),
		addHTTP(front("shop", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_PREFIX, "/")),
		addHTTP(front("shop", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_EQUALS, "/exact")),
		addHTTP(withMethod(front("api", "0.0.0.0:80", "api.example.com", command.PathRuleKind_REGEX, "^/v[0-9]+/"), "GET")),
		addHTTP(front("", "0.0.0.0:80", "blocked.example.com", command.PathRuleKind_PREFIX, "/")),
		addCert("[::]:443", apiPEM),
		addCert("0.0.0.0:443", shopPEM),
		addHTTPS(front("shop", "0.0.0.0:443", "shop.example.com", command.PathRuleKind_PREFIX, "/")),
		addHTTPS(front("api", "[::]:443", "*.api.example.com", command.PathRuleKind_PREFIX, "/")),
		addTCP(tcpFront("db", "0.0.0.0:5432", map[string]string{"env": "prod"})),
		addTCP(tcpFront("db", "0.0.0.0:5432", nil)),
		addUDP(udpFront("dns", "0.0.0.0:53", nil)),
		addBackend(backend("shop", "shop-1", "10.0.0.11:8000")),
		addBackend(weighted(backend("shop", "shop-0", "10.0.0.10:8000"), 100)),
		addBackend(backend("shop", "shop-0", "[2001:db8::10]:8000")),
		addBackend(backend("api", "api-1", "10.0.1.1:80")),
		addBackend(backend("api", "api-0", "10.0.1.0:80")),
		addBackend(backend("gone", "gone-0", "10.0.9.0:80")),
		addBackend(backend("db", "db-0", "10.0.2.0:5432")),
		removeCluster("gone"),
	}
}

func buildSample(t testing.TB) *ConfigState {
	s := New()
	mustDispatch(t, s, sampleRequests(t)...)
	return s
}

// renderRecords renders one line per record: id, state key, main key.
func renderRecords(recs []*command.WorkerRequest) string {
	var b strings.Builder
	for _, wr := range recs {
		fmt.Fprintf(&b, "%s %s %s\n", wr.GetId(), command.StateKey(wr.GetContent()), mainKey(wr.GetContent()))
	}
	return b.String()
}

func mainKey(r *command.Request) string {
	switch v := r.GetRequestType().(type) {
	case *command.Request_AddHttpListener:
		return v.AddHttpListener.GetAddress().Display()
	case *command.Request_AddHttpsListener:
		return v.AddHttpsListener.GetAddress().Display()
	case *command.Request_AddTcpListener:
		return v.AddTcpListener.GetAddress().Display()
	case *command.Request_AddUdpListener:
		return v.AddUdpListener.GetAddress().Display()
	case *command.Request_ActivateListener:
		return v.ActivateListener.GetAddress().Display() + " " + v.ActivateListener.GetProxy().String()
	case *command.Request_AddCluster:
		return v.AddCluster.GetClusterId()
	case *command.Request_AddHttpFrontend:
		return httpMainKey(v.AddHttpFrontend)
	case *command.Request_AddHttpsFrontend:
		return httpMainKey(v.AddHttpsFrontend)
	case *command.Request_AddCertificate:
		return v.AddCertificate.GetAddress().Display() + " " + strings.Join(v.AddCertificate.GetCertificate().GetNames(), ",")
	case *command.Request_AddTcpFrontend:
		return l4MainKey(v.AddTcpFrontend)
	case *command.Request_AddUdpFrontend:
		return l4MainKey(v.AddUdpFrontend)
	case *command.Request_AddBackend:
		b := v.AddBackend
		weight := "-"
		if b.LoadBalancingParameters != nil {
			weight = fmt.Sprint(b.GetLoadBalancingParameters().GetWeight())
		}
		return fmt.Sprintf("%s;%s;%s weight=%s", b.GetClusterId(), b.GetBackendId(), b.GetAddress().Display(), weight)
	}
	return "?"
}

func httpMainKey(f *command.RequestHttpFrontend) string {
	k, _ := FrontendKey(f)
	if f.ClusterId == nil {
		return k + " -> (deny)"
	}
	return k + " -> " + f.GetClusterId()
}

func l4MainKey(f l4Front) string {
	var tags []string
	for _, k := range sortedKeys(f.GetTags()) {
		tags = append(tags, k+"="+f.GetTags()[k])
	}
	return fmt.Sprintf("%s;%s tags={%s}", f.GetClusterId(), f.GetAddress().Display(), strings.Join(tags, ","))
}

func TestGenerateGolden(t *testing.T) {
	got := renderRecords(buildSample(t).GenerateRequests())
	path := filepath.Join("testdata", "generate.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("GenerateRequests order changed (go test -update to accept):\n--- got\n%s--- want\n%s", got, want)
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	s := buildSample(t)
	requireRoundTrip(t, s)

	// Every record's content is a copy.
	gen := s.GenerateRequests()
	gen[len(gen)-1].GetContent().GetAddBackend().BackendId = proto.String("mutated")
	if !sameRequests(s.GenerateRequests()[:len(gen)-1], gen[:len(gen)-1]) ||
		s.GenerateRequests()[len(gen)-1].GetContent().GetAddBackend().GetBackendId() == "mutated" {
		t.Error("GenerateRequests returned the state's own messages")
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := buildSample(t), New()
	// The same content in reverse order of everything that commutes.
	reqs := a.GenerateRequests()
	for i := len(reqs) - 1; i >= 0; i-- {
		r := reqs[i].GetContent()
		if r.GetActivateListener() != nil {
			continue
		}
		mustDispatch(t, b, r)
	}
	if !sameRequests(a.GenerateRequests(), b.GenerateRequests()) {
		t.Errorf("different insertion order, different records:\n%s\n%s",
			renderRecords(a.GenerateRequests()), renderRecords(b.GenerateRequests()))
	}
}

func TestGenerateIPv4MappedAddressKeepsItsKey(t *testing.T) {
	certPEM, _ := testCert(t, "m.example.com")
	s := New()
	req := addCert("0.0.0.0:0", certPEM)
	req.GetAddCertificate().Address = socketAddress(netip.MustParseAddrPort("[::ffff:10.0.0.1]:443"))
	mustDispatch(t, s, req)
	got := s.GenerateRequests()[0].GetContent().GetAddCertificate().GetAddress().Display()
	if got != "[::ffff:10.0.0.1]:443" {
		t.Errorf("certificate address regenerated as %s", got)
	}
	requireRoundTrip(t, s)
}
