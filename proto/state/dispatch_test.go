package state

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

type dispatchCase struct {
	name    string
	setup   []*command.Request
	req     *command.Request
	kind    ErrorKind // 0: accepted
	text    string
	check   func(t *testing.T, s *ConfigState) // after an accepted request
	noCount bool                               // accepted but the test does not look at counts
}

func runDispatchCases(t *testing.T, cases []dispatchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustDispatch(t, s, tc.setup...)
			before := s.GenerateRequests()
			countsBefore := s.RequestCounts()
			err := s.Dispatch(tc.req)
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if verb := command.VerbName(tc.req); s.RequestCounts()[verb] != countsBefore[verb]+1 {
					t.Errorf("count of %s = %d, want %d", verb, s.RequestCounts()[verb], countsBefore[verb]+1)
				}
				if tc.check != nil {
					tc.check(t, s)
				}
				requireRoundTrip(t, s)
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if se.Kind != tc.kind || se.Error() != tc.text {
				t.Errorf("got %v %q\nwant %v %q", se.Kind, se.Error(), tc.kind, tc.text)
			}
			if !sameRequests(before, s.GenerateRequests()) {
				t.Error("a refused request changed the state")
			}
			if len(s.RequestCounts()) != len(countsBefore) {
				t.Error("a refused request was counted")
			}
		})
	}
}

func TestDispatchGeneral(t *testing.T) {
	runDispatchCases(t, []dispatchCase{
		{name: "empty request", req: &command.Request{}, kind: Empty, text: "Request came in empty"},
		{name: "nil request", req: nil, kind: Empty, text: "Request came in empty"},
		{name: "query is not a state verb",
			req:  &command.Request{RequestType: &command.Request_QueryClustersHashes{QueryClustersHashes: &command.QueryClustersHashes{}}},
			kind: NotStateVerb, text: "State can not handle this request: QueryClustersHashes"},
		{name: "soft stop is not a state verb",
			req:  &command.Request{RequestType: &command.Request_SoftStop{SoftStop: &command.SoftStop{}}},
			kind: NotStateVerb, text: "State can not handle this request: SoftStop"},
		{name: "logging accepted", req: &command.Request{RequestType: &command.Request_Logging{Logging: "debug"}}},
		{name: "configure_metrics accepted",
			req: &command.Request{RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: command.MetricsConfiguration_DISABLED}}},
		{name: "set_max_connections_per_ip accepted",
			req: &command.Request{RequestType: &command.Request_SetMaxConnectionsPerIp{SetMaxConnectionsPerIp: 10}}},
		{name: "query_max_connections_per_ip accepted",
			req: &command.Request{RequestType: &command.Request_QueryMaxConnectionsPerIp{QueryMaxConnectionsPerIp: &command.QueryMaxConnectionsPerIp{}}}},
	})
}

func TestDispatchClusters(t *testing.T) {
	withHC := cluster("shop")
	withHC.HealthCheck = healthCheck("/health")
	badHC := cluster("shop")
	badHC.HealthCheck = healthCheck("health")
	zeroInterval := cluster("shop")
	zeroInterval.HealthCheck = healthCheck("/h")
	zeroInterval.HealthCheck.Interval = proto.Uint32(0)
	crlf := healthCheck("/h\r\nX-Injected: 1")
	redirect := cluster("shop")
	redirect.HttpsRedirect = proto.Bool(true)
	badLB := cluster("shop")
	badLB.LoadBalancing = command.LoadBalancingAlgorithms(9).Enum()

	runDispatchCases(t, []dispatchCase{
		{name: "undeclared load_balancing", req: addCluster(badLB), kind: WrongFieldValue,
			text: "Wrong field value: unknown LoadBalancingAlgorithms value 9 for field 'add_cluster.load_balancing'"},
		{name: "add cluster", req: addCluster(withHC), check: func(t *testing.T, s *ConfigState) {
			c := s.Cluster("shop").GetConfiguration()
			if c.GetHealthCheck().GetInterval() != 10 || c.HealthCheck.Interval == nil {
				t.Errorf("health check defaults not materialised: %v", c.GetHealthCheck())
			}
			if c.LoadBalancing == nil {
				t.Error("required load_balancing not materialised")
			}
		}},
		{name: "add cluster upserts", setup: []*command.Request{addCluster(withHC)}, req: addCluster(redirect),
			check: func(t *testing.T, s *ConfigState) {
				c := s.Cluster("shop").GetConfiguration()
				if !c.GetHttpsRedirect() || c.HealthCheck != nil {
					t.Errorf("cluster not replaced whole: %v", c)
				}
			}},
		{name: "add cluster empty id", req: addCluster(cluster("")), kind: InvalidValue,
			text: "Invalid value for field 'cluster_id': must not be empty"},
		{name: "add cluster bad health check uri", req: addCluster(badHC), kind: InvalidValue,
			text: "Invalid value for field 'health_check': uri must start with '/'"},
		{name: "add cluster zero interval", req: addCluster(zeroInterval), kind: InvalidValue,
			text: "Invalid value for field 'health_check': interval must be >= 1"},
		{name: "remove unknown cluster", req: removeCluster("shop"), kind: NotFound,
			text: "Did not find Cluster with address or id 'shop'"},
		{name: "remove cluster keeps frontends and backends",
			setup: []*command.Request{addCluster(cluster("shop")),
				addHTTP(front("shop", "0.0.0.0:80", "shop.example.com", command.PathRuleKind_PREFIX, "/")),
				addTCP(tcpFront("shop", "0.0.0.0:5432", nil)),
				addBackend(backend("shop", "shop-0", "10.0.0.10:8000"))},
			req: removeCluster("shop"),
			check: func(t *testing.T, s *ConfigState) {
				if s.Cluster("shop") != nil {
					t.Error("cluster still there")
				}
				got := s.GenerateRequests()
				if len(got) != 3 {
					t.Fatalf("generated %d records, want the 3 orphans: %v", len(got), got)
				}
			}},
		{name: "set health check", setup: []*command.Request{addCluster(cluster("shop"))},
			req: setHealthCheck("shop", healthCheck("/up")),
			check: func(t *testing.T, s *ConfigState) {
				if got := s.HealthChecks(nil).GetMap()["shop"].GetUri(); got != "/up" {
					t.Errorf("health check uri = %q", got)
				}
			}},
		{name: "set health check unknown cluster", req: setHealthCheck("shop", healthCheck("/up")), kind: NotFound,
			text: "Did not find Cluster with address or id 'shop'"},
		{name: "set health check CRLF", setup: []*command.Request{addCluster(cluster("shop"))},
			req: setHealthCheck("shop", crlf), kind: InvalidValue,
			text: "Invalid value for field 'health_check': uri must not contain control characters"},
		{name: "remove health check", setup: []*command.Request{addCluster(withHC)}, req: removeHealthCheck("shop"),
			check: func(t *testing.T, s *ConfigState) {
				if len(s.HealthChecks(nil).GetMap()) != 0 {
					t.Error("health check still listed")
				}
			}},
		{name: "remove health check unknown cluster", req: removeHealthCheck("shop"), kind: NotFound,
			text: "Did not find Cluster with address or id 'shop'"},
	})
}

func TestDispatchBackends(t *testing.T) {
	runDispatchCases(t, []dispatchCase{
		{name: "add backend without cluster", req: addBackend(backend("shop", "shop-0", "10.0.0.10:8000"))},
		{name: "add backend upserts on id and address",
			setup: []*command.Request{addBackend(backend("shop", "shop-0", "10.0.0.10:8000"))},
			req:   addBackend(weighted(backend("shop", "shop-0", "10.0.0.10:8000"), 50)),
			check: func(t *testing.T, s *ConfigState) {
				got := s.GenerateRequests()
				if len(got) != 1 || got[0].GetContent().GetAddBackend().GetLoadBalancingParameters().GetWeight() != 50 {
					t.Errorf("backend not replaced: %v", got)
				}
			}},
		{name: "same id other address is another backend",
			setup: []*command.Request{addBackend(backend("shop", "shop-0", "10.0.0.10:8000"))},
			req:   addBackend(backend("shop", "shop-0", "10.0.0.11:8000")),
			check: func(t *testing.T, s *ConfigState) {
				if n := len(s.GenerateRequests()); n != 2 {
					t.Errorf("%d backends, want 2", n)
				}
			}},
		{name: "add backend port out of range", req: addBackend(&command.AddBackend{
			ClusterId: proto.String("shop"), BackendId: proto.String("b"), Address: badPort("10.0.0.1", 70000)}),
			kind: InvalidValue, text: "Invalid value for field 'address': port 70000 out of range 0-65535"},
		{name: "add backend without address", req: addBackend(&command.AddBackend{
			ClusterId: proto.String("shop"), BackendId: proto.String("b")}),
			kind: InvalidValue, text: "Invalid value for field 'address': is required"},
		{name: "remove backend", setup: []*command.Request{addBackend(backend("shop", "shop-0", "10.0.0.10:8000"))},
			req: removeBackend("shop", "shop-0", "10.0.0.10:8000")},
		{name: "remove backend of cluster without backends", req: removeBackend("shop", "shop-0", "10.0.0.10:8000"),
			kind: NotFound, text: "Did not find Backend with address or id 'shop-0'"},
		{name: "remove backend address must match",
			setup: []*command.Request{addBackend(backend("shop", "shop-0", "10.0.0.10:8000"))},
			req:   removeBackend("shop", "shop-0", "10.0.0.10:8001"),
			kind:  NoChange, text: "dispatching this request did not bring any change to the state"},
		{name: "remove last backend then again is NotFound",
			setup: []*command.Request{addBackend(backend("shop", "shop-0", "10.0.0.10:8000")),
				removeBackend("shop", "shop-0", "10.0.0.10:8000")},
			req:  removeBackend("shop", "shop-0", "10.0.0.10:8000"),
			kind: NotFound, text: "Did not find Backend with address or id 'shop-0'"},
	})
}

func TestDispatchHTTPFrontends(t *testing.T) {
	api := func() *command.RequestHttpFrontend {
		return front("shop", "0.0.0.0:8080", "example.com", command.PathRuleKind_PREFIX, "/api")
	}
	badPosition := api()
	badPosition.Position = command.RulePosition(9).Enum()
	badKind := api()
	badKind.Path.Kind = command.PathRuleKind(7).Enum()
	// Undeclared enum values Go's decoder keeps in the field (found by
	// FuzzDispatch: save_state could not write the record).
	badScheme := api()
	badScheme.RedirectScheme = command.RedirectScheme(48).Enum()
	badHeader := api()
	badHeader.Headers = []*command.Header{{Position: command.HeaderPosition(5).Enum(), Key: proto.String("X"), Val: proto.String("v")}}
	noAddress := api()
	noAddress.Address = nil
	deny := api()
	deny.ClusterId = nil
	portOutOfRange := api()
	portOutOfRange.Address = badPort("0.0.0.0", 65536)

	runDispatchCases(t, []dispatchCase{
		{name: "add http frontend without cluster", req: addHTTP(api())},
		{name: "add deny frontend", req: addHTTP(deny)},
		{name: "add http frontend twice", setup: []*command.Request{addHTTP(api())}, req: addHTTP(api()),
			kind: Exists, text: "HttpFrontend '0.0.0.0:8080;example.com;P/api' already exists"},
		{name: "other cluster same key is a duplicate", setup: []*command.Request{addHTTP(api())},
			req:  addHTTP(front("other", "0.0.0.0:8080", "example.com", command.PathRuleKind_PREFIX, "/api")),
			kind: Exists, text: "HttpFrontend '0.0.0.0:8080;example.com;P/api' already exists"},
		{name: "method is part of the key", setup: []*command.Request{addHTTP(api())}, req: addHTTP(withMethod(api(), "GET"))},
		{name: "method key text", setup: []*command.Request{addHTTP(withMethod(api(), "GET"))}, req: addHTTP(withMethod(api(), "GET")),
			kind: Exists, text: "HttpFrontend '0.0.0.0:8080;example.com;P/api;GET' already exists"},
		{name: "regex and equals keys",
			setup: []*command.Request{addHTTP(front("shop", "[::1]:80", "h", command.PathRuleKind_REGEX, "^/r"))},
			req:   addHTTP(front("shop", "[::1]:80", "h", command.PathRuleKind_REGEX, "^/r")),
			kind:  Exists, text: "HttpFrontend '[::1]:80;h;R^/r' already exists"},
		{name: "equals key",
			setup: []*command.Request{addHTTP(front("shop", "0.0.0.0:80", "h", command.PathRuleKind_EQUALS, "/x"))},
			req:   addHTTP(front("shop", "0.0.0.0:80", "h", command.PathRuleKind_EQUALS, "/x")),
			kind:  Exists, text: "HttpFrontend '0.0.0.0:80;h;=/x' already exists"},
		{name: "http and https are separate", setup: []*command.Request{addHTTP(api())}, req: addHTTPS(api())},
		{name: "add https frontend twice", setup: []*command.Request{addHTTPS(api())}, req: addHTTPS(api()),
			kind: Exists, text: "HttpsFrontend '0.0.0.0:8080;example.com;P/api' already exists"},
		{name: "bad position", req: addHTTP(badPosition), kind: Frontend,
			text: "Could not convert the frontend to an insertable one. Frontend: 0.0.0.0:8080;example.com;P/api error: invalid value 9 for field 'position'"},
		{name: "undeclared redirect_scheme", req: addHTTP(badScheme), kind: WrongFieldValue,
			text: "Wrong field value: unknown RedirectScheme value 48 for field 'add_http_frontend.redirect_scheme'"},
		{name: "undeclared header position", req: addHTTPS(badHeader), kind: WrongFieldValue,
			text: "Wrong field value: unknown HeaderPosition value 5 for field 'add_https_frontend.headers.position'"},
		{name: "bad path kind", req: addHTTP(badKind), kind: Frontend,
			text: "Could not convert the frontend to an insertable one. Frontend: 0.0.0.0:8080;example.com error: invalid value 7 for field 'path.kind'"},
		{name: "no address", req: addHTTP(noAddress), kind: InvalidValue,
			text: "Invalid value for field 'address': is required"},
		{name: "port out of range", req: addHTTPS(portOutOfRange),
			kind: InvalidValue, text: "Invalid value for field 'address': port 65536 out of range 0-65535"},
		{name: "remove http frontend", setup: []*command.Request{addHTTP(api())}, req: removeHTTP(api())},
		{name: "remove unknown http frontend", req: removeHTTP(api()), kind: NotFound,
			text: "Did not find HttpFrontend with address or id '0.0.0.0:8080;example.com;P/api'"},
		{name: "remove http frontend keyed without method", setup: []*command.Request{addHTTP(withMethod(api(), "GET"))},
			req: removeHTTP(api()), kind: NotFound,
			text: "Did not find HttpFrontend with address or id '0.0.0.0:8080;example.com;P/api'"},
		{name: "remove https frontend", setup: []*command.Request{addHTTPS(api())}, req: removeHTTPS(api())},
		{name: "remove unknown https frontend", setup: []*command.Request{addHTTP(api())}, req: removeHTTPS(api()), kind: NotFound,
			text: "Did not find HttpsFrontend with address or id '0.0.0.0:8080;example.com;P/api'"},
	})
}

func TestDispatchL4Frontends(t *testing.T) {
	prod := map[string]string{"env": "prod"}
	runDispatchCases(t, []dispatchCase{
		{name: "add tcp frontend", req: addTCP(tcpFront("db", "0.0.0.0:5432", prod))},
		{name: "add tcp frontend twice", setup: []*command.Request{addTCP(tcpFront("db", "0.0.0.0:5432", prod))},
			req: addTCP(tcpFront("db", "0.0.0.0:5432", prod)), kind: Exists,
			text: `TcpFrontend 'TcpFrontend { cluster_id: "db", address: 0.0.0.0:5432, tags: {"env": "prod"} }' already exists`},
		{name: "same address other tags", setup: []*command.Request{addTCP(tcpFront("db", "0.0.0.0:5432", prod))},
			req: addTCP(tcpFront("db", "0.0.0.0:5432", nil))},
		{name: "remove tcp frontend of cluster without any", req: removeTCP(tcpFront("db", "0.0.0.0:5432", nil)),
			kind: NotFound,
			text: `Did not find TcpFrontend with address or id 'RequestTcpFrontend { cluster_id: "db", address: 0.0.0.0:5432, tags: {} }'`},
		{name: "remove tcp frontend unknown address", setup: []*command.Request{addTCP(tcpFront("db", "0.0.0.0:5432", prod))},
			req: removeTCP(tcpFront("db", "0.0.0.0:5433", nil)), kind: NoChange,
			text: "dispatching this request did not bring any change to the state"},
		{name: "remove tcp frontend ignores tags",
			setup: []*command.Request{addTCP(tcpFront("db", "0.0.0.0:5432", prod)), addTCP(tcpFront("db", "0.0.0.0:5432", nil))},
			req:   removeTCP(tcpFront("db", "0.0.0.0:5432", nil)),
			check: func(t *testing.T, s *ConfigState) {
				if n := len(s.ListFrontends(nil).GetTcpFrontends()); n != 0 {
					t.Errorf("%d tcp frontends left", n)
				}
			}},
		{name: "add udp frontend", req: addUDP(udpFront("dns", "0.0.0.0:53", nil))},
		{name: "add udp frontend twice", setup: []*command.Request{addUDP(udpFront("dns", "0.0.0.0:53", nil))},
			req: addUDP(udpFront("dns", "0.0.0.0:53", nil)), kind: Exists,
			text: `UdpFrontend 'UdpFrontend { cluster_id: "dns", address: 0.0.0.0:53, tags: {} }' already exists`},
		{name: "remove udp frontend", setup: []*command.Request{addUDP(udpFront("dns", "0.0.0.0:53", nil))},
			req: removeUDP(udpFront("dns", "0.0.0.0:53", nil))},
		{name: "remove udp frontend of cluster without any", req: removeUDP(udpFront("dns", "0.0.0.0:53", nil)),
			kind: NotFound,
			text: `Did not find UdpFrontend with address or id 'RequestUdpFrontend { cluster_id: "dns", address: 0.0.0.0:53, tags: {} }'`},
		{name: "remove udp frontend unknown address", setup: []*command.Request{addUDP(udpFront("dns", "0.0.0.0:53", nil))},
			req: removeUDP(udpFront("dns", "0.0.0.0:54", nil)), kind: NoChange,
			text: "dispatching this request did not bring any change to the state"},
	})
}

func TestDispatchListeners(t *testing.T) {
	active := httpListener("0.0.0.0:80")
	active.Active = proto.Bool(true)
	badPublic := httpListener("0.0.0.0:80")
	badPublic.PublicAddress = badPort("1.2.3.4", 1<<20)
	badProxy := removeListener("0.0.0.0:80", command.ListenerType(9))
	// A proxy value the Go decoder parks among unknown fields.
	wire, err := proto.MarshalOptions{AllowPartial: true}.Marshal(&command.RemoveListener{Address: sa("0.0.0.0:80")})
	if err != nil {
		t.Fatal(err)
	}
	wire = protowire.AppendVarint(protowire.AppendTag(wire, 2, protowire.VarintType), 7)
	decoded := &command.RemoveListener{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(wire, decoded); err != nil {
		t.Fatal(err)
	}
	unknownProxy := &command.Request{RequestType: &command.Request_RemoveListener{RemoveListener: decoded}}

	runDispatchCases(t, []dispatchCase{
		{name: "add http listener", req: addHTTPListener(httpListener("0.0.0.0:80"))},
		{name: "add active http listener", req: addHTTPListener(active), check: func(t *testing.T, s *ConfigState) {
			got := s.GenerateRequests()
			if len(got) != 2 || got[1].GetContent().GetActivateListener() == nil {
				t.Errorf("active listener not followed by ACTIVATE_LISTENER: %v", got)
			}
		}},
		{name: "add http listener twice", setup: []*command.Request{addHTTPListener(httpListener("0.0.0.0:80"))},
			req: addHTTPListener(httpListener("0.0.0.0:80")), kind: Exists, text: "HttpListener '0.0.0.0:80' already exists"},
		{name: "add https listener twice", setup: []*command.Request{addHTTPSListener(httpsListener("[::]:443"))},
			req: addHTTPSListener(httpsListener("[::]:443")), kind: Exists, text: "HttpsListener '[::]:443' already exists"},
		{name: "add tcp listener twice", setup: []*command.Request{addTCPListener("0.0.0.0:5432")},
			req: addTCPListener("0.0.0.0:5432"), kind: Exists, text: "TcpListener '0.0.0.0:5432' already exists"},
		{name: "add udp listener twice", setup: []*command.Request{addUDPListener("0.0.0.0:53")},
			req: addUDPListener("0.0.0.0:53"), kind: Exists, text: "UdpListener '0.0.0.0:53' already exists"},
		{name: "same address other protocol", setup: []*command.Request{addHTTPListener(httpListener("0.0.0.0:80"))},
			req: addTCPListener("0.0.0.0:80")},
		{name: "listener public address port", req: addHTTPListener(badPublic), kind: InvalidValue,
			text: "Invalid value for field 'public_address': port 1048576 out of range 0-65535"},
		{name: "remove listener", setup: []*command.Request{addUDPListener("0.0.0.0:53")},
			req: removeListener("0.0.0.0:53", command.ListenerType_UDP)},
		{name: "remove unknown listener", setup: []*command.Request{addHTTPListener(httpListener("0.0.0.0:80"))},
			req: removeListener("0.0.0.0:80", command.ListenerType_HTTPS), kind: NoChange,
			text: "dispatching this request did not bring any change to the state"},
		{name: "remove listener bad proxy", setup: []*command.Request{addHTTPListener(httpListener("0.0.0.0:80"))},
			req: badProxy, kind: WrongFieldValue, text: "Wrong field value: unknown ListenerType value 9"},
		{name: "remove listener decoded unknown proxy", setup: []*command.Request{addHTTPListener(httpListener("0.0.0.0:80"))},
			req: unknownProxy, kind: WrongFieldValue, text: "Wrong field value: unknown ListenerType value 7"},
		{name: "activate listener", setup: []*command.Request{addHTTPSListener(httpsListener("0.0.0.0:443"))},
			req: activateListener("0.0.0.0:443", command.ListenerType_HTTPS),
			check: func(t *testing.T, s *ConfigState) {
				if !s.HTTPSListener(sa("0.0.0.0:443")).GetActive() {
					t.Error("listener not active")
				}
			}},
		{name: "activate unknown listener", req: activateListener("0.0.0.0:443", command.ListenerType_HTTPS),
			kind: NotFound, text: "Did not find HttpsListener with address or id '0.0.0.0:443'"},
		{name: "activate listener of other protocol", setup: []*command.Request{addTCPListener("0.0.0.0:443")},
			req:  activateListener("0.0.0.0:443", command.ListenerType_UDP),
			kind: NotFound, text: "Did not find UdpListener with address or id '0.0.0.0:443'"},
		{name: "deactivate listener", setup: []*command.Request{addHTTPListener(active)},
			req: deactivateListener("0.0.0.0:80", command.ListenerType_HTTP),
			check: func(t *testing.T, s *ConfigState) {
				if s.HTTPListener(sa("0.0.0.0:80")).GetActive() {
					t.Error("listener still active")
				}
			}},
		{name: "deactivate unknown listener", req: deactivateListener("0.0.0.0:5432", command.ListenerType_TCP),
			kind: NotFound, text: "Did not find TcpListener with address or id '0.0.0.0:5432'"},
	})
}

func TestDispatchUpdateListeners(t *testing.T) {
	httpAt := func(addr string) *command.UpdateHttpListenerConfig {
		return &command.UpdateHttpListenerConfig{Address: sa(addr)}
	}
	httpsAt := func() *command.UpdateHttpsListenerConfig {
		return &command.UpdateHttpsListenerConfig{Address: sa("0.0.0.0:443")}
	}
	hasHTTP := []*command.Request{addHTTPListener(httpListener("0.0.0.0:80"))}
	hasHTTPS := []*command.Request{addHTTPSListener(httpsListener("0.0.0.0:443"))}

	with := func(f func(u *command.UpdateHttpListenerConfig)) *command.Request {
		u := httpAt("0.0.0.0:80")
		f(u)
		return updateHTTP(u)
	}
	withS := func(f func(u *command.UpdateHttpsListenerConfig)) *command.Request {
		u := httpsAt()
		f(u)
		return updateHTTPS(u)
	}

	runDispatchCases(t, []dispatchCase{
		{name: "update unknown http listener", req: updateHTTP(httpAt("0.0.0.0:80")), kind: NotFound,
			text: "Did not find HttpListener with address or id '0.0.0.0:80'"},
		{name: "update unknown https listener", req: updateHTTPS(httpsAt()), kind: NotFound,
			text: "Did not find HttpsListener with address or id '0.0.0.0:443'"},
		{name: "update unknown tcp listener", req: updateTCP(&command.UpdateTcpListenerConfig{Address: sa("0.0.0.0:1")}),
			kind: NotFound, text: "Did not find TcpListener with address or id '0.0.0.0:1'"},
		{name: "update unknown udp listener", req: updateUDP(&command.UpdateUdpListenerConfig{Address: sa("0.0.0.0:1")}),
			kind: NotFound, text: "Did not find UdpListener with address or id '0.0.0.0:1'"},
		{name: "h2 knob zero", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.H2MaxPingPerWindow = proto.Uint32(0)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_max_ping_per_window': must be >= 1"},
		{name: "h2 lifetime zero", setup: hasHTTPS, req: withS(func(u *command.UpdateHttpsListenerConfig) {
			u.H2MaxRstStreamLifetime = proto.Uint64(0)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_max_rst_stream_lifetime': must be >= 1"},
		{name: "h2 idle timeout zero", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.H2StreamIdleTimeoutSeconds = proto.Uint32(0)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_stream_idle_timeout_seconds': must be >= 1"},
		{name: "concurrent streams above upstream's clamp", setup: hasHTTPS, req: withS(func(u *command.UpdateHttpsListenerConfig) {
			u.H2MaxConcurrentStreams = proto.Uint32(10001)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_max_concurrent_streams': must be <= 10000"},
		{name: "concurrent streams zero", setup: hasHTTPS, req: withS(func(u *command.UpdateHttpsListenerConfig) {
			u.H2MaxConcurrentStreams = proto.Uint32(0)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_max_concurrent_streams': must be >= 1"},
		// The configuration refuses these windows; an update took them and
		// the worker clamped them without a word.
		{name: "connection window below RFC 9113's initial one", setup: hasHTTPS, req: withS(func(u *command.UpdateHttpsListenerConfig) {
			u.H2InitialConnectionWindow = proto.Uint32(1000)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_initial_connection_window': must be between 65535 and 2147483647"},
		{name: "connection window above 2^31-1", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.H2InitialConnectionWindow = proto.Uint32(1 << 31)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_initial_connection_window': must be between 65535 and 2147483647"},
		{name: "shrink ratio one", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.H2StreamShrinkRatio = proto.Uint32(1)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_stream_shrink_ratio': must be >= 2"},
		{name: "knobs validated before lookup", req: with(func(u *command.UpdateHttpListenerConfig) {
			u.H2MaxHeaderFields = proto.Uint32(0)
		}), kind: InvalidValue, text: "Invalid value for field 'h2_max_header_fields': must be >= 1"},
		{name: "graceful deadline zero allowed", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.H2GracefulShutdownDeadlineSeconds = proto.Uint32(0)
		}), check: func(t *testing.T, s *ConfigState) {
			l := s.HTTPListener(sa("0.0.0.0:80"))
			if l.H2GracefulShutdownDeadlineSeconds == nil || l.GetH2GracefulShutdownDeadlineSeconds() != 0 {
				t.Errorf("deadline not set to 0: %v", l)
			}
		}},
		{name: "empty sozu_id_header", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.SozuIdHeader = proto.String("")
		}), kind: InvalidValue, text: "Invalid value for field 'sozu_id_header': must not be empty"},
		{name: "sozu_id_header with a space", setup: hasHTTPS, req: withS(func(u *command.UpdateHttpsListenerConfig) {
			u.SozuIdHeader = proto.String("X Id")
		}), kind: InvalidValue, text: "Invalid value for field 'sozu_id_header': must be a valid HTTP header name (RFC 9110 token)"},
		{name: "bad alpn", setup: hasHTTPS, req: withS(func(u *command.UpdateHttpsListenerConfig) {
			u.AlpnProtocols = &command.AlpnProtocols{Values: []string{"h2", "h3"}}
		}), kind: InvalidValue, text: `Invalid value for field 'alpn_protocols': each value must be "h2" or "http/1.1"`},
		{name: "bad public address", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.PublicAddress = badPort("1.2.3.4", 99999)
		}), kind: InvalidValue, text: "Invalid value for field 'public_address': port 99999 out of range 0-65535"},
		{name: "patch is all or nothing", setup: hasHTTP, req: with(func(u *command.UpdateHttpListenerConfig) {
			u.FrontTimeout = proto.Uint32(5)
			u.SozuIdHeader = proto.String("bad:header")
		}), kind: InvalidValue, text: "Invalid value for field 'sozu_id_header': must be a valid HTTP header name (RFC 9110 token)"},
		{name: "tcp patch", setup: []*command.Request{addTCPListener("0.0.0.0:5432")},
			req: updateTCP(&command.UpdateTcpListenerConfig{Address: sa("0.0.0.0:5432"), ExpectProxy: proto.Bool(true), ConnectTimeout: proto.Uint32(7)}),
			check: func(t *testing.T, s *ConfigState) {
				l := s.TCPListener(sa("0.0.0.0:5432"))
				if !l.GetExpectProxy() || l.GetConnectTimeout() != 7 || l.GetFrontTimeout() != 60 {
					t.Errorf("patched listener = %v", l)
				}
			}},
		{name: "udp patch", setup: []*command.Request{addUDPListener("0.0.0.0:53")},
			req: updateUDP(&command.UpdateUdpListenerConfig{Address: sa("0.0.0.0:53"), MaxFlows: proto.Uint32(9)}),
			check: func(t *testing.T, s *ConfigState) {
				if l := s.UDPListener(sa("0.0.0.0:53")); l.GetMaxFlows() != 9 || l.GetMaxRxDatagramSize() != 1500 {
					t.Errorf("patched listener = %v", l)
				}
			}},
	})
}

func TestUpdatePatchSemantics(t *testing.T) {
	s := New()
	l := httpsListener("0.0.0.0:443")
	l.StickyName = proto.String("SOZUBALANCEID")
	l.AlpnProtocols = []string{"http/1.1"}
	l.Answers = map[string]string{"404": "old 404", "503": "old 503"}
	l.HttpAnswers = &command.CustomHttpAnswers{Answer_404: proto.String("legacy 404"), Answer_502: proto.String("legacy 502")}
	l.Hsts = &command.HstsConfig{Enabled: proto.Bool(true), Preload: proto.Bool(true)}
	mustDispatch(t, s, addHTTPSListener(l))

	mustDispatch(t, s, updateHTTPS(&command.UpdateHttpsListenerConfig{
		Address:            sa("0.0.0.0:443"),
		FrontTimeout:       proto.Uint32(11),
		H2MaxPingPerWindow: proto.Uint32(3),
		SozuIdHeader:       proto.String("X-Request-Id"),
		Answers:            map[string]string{"404": "", "503": "new 503", "429": "new 429"},
		HttpAnswers:        &command.CustomHttpAnswers{Answer_502: proto.String("patched 502")},
		Hsts:               &command.HstsConfig{Enabled: proto.Bool(false)},
		AlpnProtocols:      &command.AlpnProtocols{Values: []string{"h2"}},
		StrictSniBinding:   proto.Bool(true),
	}))
	got := s.HTTPSListener(sa("0.0.0.0:443"))
	want := &command.HttpsListenerConfig{
		Address:            sa("0.0.0.0:443"),
		StickyName:         proto.String("SOZUBALANCEID"),
		FrontTimeout:       proto.Uint32(11),
		H2MaxPingPerWindow: proto.Uint32(3),
		SozuIdHeader:       proto.String("X-Request-Id"),
		AlpnProtocols:      []string{"h2"},
		Answers:            map[string]string{"404": "old 404", "503": "new 503", "429": "new 429"},
		HttpAnswers:        &command.CustomHttpAnswers{Answer_404: proto.String("legacy 404"), Answer_502: proto.String("patched 502")},
		Hsts:               &command.HstsConfig{Enabled: proto.Bool(false)},
		StrictSniBinding:   proto.Bool(true),
	}
	fillRequired(want.ProtoReflect())
	if !proto.Equal(got, want) {
		t.Errorf("patched listener:\n got %v\nwant %v", got, want)
	}

	// Present but empty ALPN stores an empty list (runtime default).
	mustDispatch(t, s, updateHTTPS(&command.UpdateHttpsListenerConfig{Address: sa("0.0.0.0:443"), AlpnProtocols: &command.AlpnProtocols{}}))
	if got := s.HTTPSListener(sa("0.0.0.0:443")).GetAlpnProtocols(); len(got) != 0 {
		t.Errorf("alpn after reset = %v", got)
	}
	requireRoundTrip(t, s)
}

// TestPatchFieldsExist guards applyPatch: every field of an update message
// other than address must exist in the listener configuration with the
// same kind, or be one of the merged fields.
func TestPatchFieldsExist(t *testing.T) {
	pairs := []struct{ patch, target proto.Message }{
		{&command.UpdateHttpListenerConfig{}, &command.HttpListenerConfig{}},
		{&command.UpdateHttpsListenerConfig{}, &command.HttpsListenerConfig{}},
		{&command.UpdateTcpListenerConfig{}, &command.TcpListenerConfig{}},
		{&command.UpdateUdpListenerConfig{}, &command.UdpListenerConfig{}},
	}
	for _, p := range pairs {
		pf := p.patch.ProtoReflect().Descriptor().Fields()
		tf := p.target.ProtoReflect().Descriptor().Fields()
		for i := 0; i < pf.Len(); i++ {
			fd := pf.Get(i)
			dst := tf.ByName(fd.Name())
			if dst == nil {
				t.Errorf("%s.%s has no counterpart in %s", pf.Get(i).Parent().Name(), fd.Name(), p.target.ProtoReflect().Descriptor().Name())
				continue
			}
			switch fd.Name() {
			case "alpn_protocols", "answers", "http_answers", "address":
				continue
			}
			if fd.Kind() != dst.Kind() || fd.IsList() != dst.IsList() || fd.IsMap() != dst.IsMap() {
				t.Errorf("%s: kind %v in patch, %v in listener", fd.FullName(), fd.Kind(), dst.Kind())
			}
		}
	}
}

func TestRequestCounts(t *testing.T) {
	s := New()
	mustDispatch(t, s, addCluster(cluster("a")), addCluster(cluster("b")), removeCluster("a"),
		&command.Request{RequestType: &command.Request_Logging{Logging: "info"}})
	_ = s.Dispatch(removeCluster("a")) // refused: not counted
	_ = s.Dispatch(&command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	got := s.RequestCounts()
	want := map[string]int32{"AddCluster": 2, "RemoveCluster": 1, "Logging": 1}
	if len(got) != len(want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("counts[%s] = %d, want %d", k, got[k], v)
		}
	}
	got["AddCluster"] = 99
	if s.RequestCounts()["AddCluster"] != 2 {
		t.Error("RequestCounts returned the state's own map")
	}
}

func TestVerbClasses(t *testing.T) {
	tests := []struct {
		req             *command.Request
		state, mutating bool
	}{
		{addCluster(cluster("a")), true, true},
		{removeListener("0.0.0.0:80", command.ListenerType_HTTP), true, true},
		{&command.Request{RequestType: &command.Request_Logging{Logging: "x"}}, true, false},
		{&command.Request{RequestType: &command.Request_SetMaxConnectionsPerIp{SetMaxConnectionsPerIp: 1}}, true, false},
		{&command.Request{RequestType: &command.Request_QueryClusterById{QueryClusterById: "a"}}, false, false},
		{&command.Request{RequestType: &command.Request_SaveState{SaveState: "/tmp/x"}}, false, false},
		{&command.Request{RequestType: &command.Request_SetMetricDetail{SetMetricDetail: &command.SetMetricDetail{}}}, false, false},
		{&command.Request{}, false, false},
		{nil, false, false},
	}
	for _, tt := range tests {
		if IsStateVerb(tt.req) != tt.state || Mutates(tt.req) != tt.mutating {
			t.Errorf("%q: IsStateVerb=%v Mutates=%v, want %v %v", command.VerbName(tt.req),
				IsStateVerb(tt.req), Mutates(tt.req), tt.state, tt.mutating)
		}
	}
}

func TestDispatchDoesNotRetainRequest(t *testing.T) {
	s := New()
	c := cluster("shop")
	mustDispatch(t, s, addCluster(c))
	c.HttpsRedirect = proto.Bool(true)
	if s.Cluster("shop").GetConfiguration().GetHttpsRedirect() {
		t.Error("state aliases the dispatched message")
	}
	info := s.Cluster("shop")
	info.Configuration.HttpsRedirect = proto.Bool(true)
	if s.Cluster("shop").GetConfiguration().GetHttpsRedirect() {
		t.Error("Cluster returned the state's own message")
	}
	cc := s.ClusterConfig("shop")
	cc.HttpsRedirect = proto.Bool(true)
	if s.ClusterConfig("shop").GetHttpsRedirect() {
		t.Error("ClusterConfig returned the state's own message")
	}
	if !proto.Equal(s.ClusterConfig("shop"), s.Cluster("shop").GetConfiguration()) || s.ClusterConfig("nope") != nil {
		t.Error("ClusterConfig disagrees with Cluster")
	}
	if c.LoadBalancing != nil {
		t.Error("Dispatch modified the caller's message")
	}
}

func TestClone(t *testing.T) {
	s := buildSample(t)
	c := s.Clone()
	if !sameRequests(s.GenerateRequests(), c.GenerateRequests()) {
		t.Fatal("clone differs")
	}
	mustDispatch(t, c, removeCluster("shop"), addBackend(backend("api", "api-9", "10.0.1.9:80")))
	if s.Cluster("shop") == nil || len(s.Cluster("api").GetBackends()) != 2 {
		t.Error("changing the clone changed the original")
	}
	if c.RequestCounts()["RemoveCluster"] != s.RequestCounts()["RemoveCluster"]+1 {
		t.Error("counts not cloned")
	}
}
