package supervisor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
)

func sa(s string) *command.SocketAddress { return command.NewSocketAddress(netip.MustParseAddrPort(s)) }

func httpListener(addr string, front uint32) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: &command.HttpListenerConfig{
		Address: sa(addr), FrontTimeout: proto.Uint32(front),
	}}}
}

func cluster(id string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: proto.String(id)}}}
}

func backend(cluster, id, addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddBackend{AddBackend: &command.AddBackend{
		ClusterId: proto.String(cluster), BackendId: proto.String(id), Address: sa(addr),
	}}}
}

func front(addr, host, cluster string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
		Address: sa(addr), Hostname: proto.String(host), ClusterId: proto.String(cluster),
		Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("")},
	}}}
}

// selfSigned returns a certificate PEM for name and its key PEM.
func selfSigned(t *testing.T, name string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func cert(addr, certPEM, keyPEM string, names ...string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
		Address: sa(addr), Certificate: &command.CertificateAndKey{Certificate: proto.String(certPEM), Key: proto.String(keyPEM), Names: names},
	}}}
}

func httpsListener(addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{Address: sa(addr)}}}
}

func httpsFront(addr, host, cluster string) *command.Request {
	r := front(addr, host, cluster)
	return &command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: r.GetAddHttpFrontend()}}
}

func udpListener(addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddUdpListener{AddUdpListener: &command.UdpListenerConfig{Address: sa(addr)}}}
}

func udpFront(addr, cluster, tag string) *command.Request {
	f := &command.RequestUdpFrontend{ClusterId: proto.String(cluster), Address: sa(addr)}
	if tag != "" {
		f.Tags = map[string]string{"t": tag}
	}
	return &command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: f}}
}

func stateOf(t *testing.T, reqs ...*command.Request) *state.ConfigState {
	t.Helper()
	s := state.New()
	for _, r := range reqs {
		if err := s.Dispatch(r); err != nil {
			t.Fatalf("%s: %v", command.VerbName(r), err)
		}
	}
	return s
}

func fp16(t *testing.T, certPEM string) string {
	t.Helper()
	fp, err := state.Fingerprint(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return fp[:16]
}

// TestPlanReload: each plan lists its steps in the documented order (adds
// before frontends, removals after, listeners last), reports what it adds,
// changes and removes, and, applied to the running state, yields the
// file's state exactly.
func TestPlanReload(t *testing.T) {
	const l80, l81 = "127.0.0.1:80", "127.0.0.1:81"
	activate := func(addr string) *command.Request { return activateRequest(command.ListenerType_HTTP, sa(addr)) }
	const l443 = "127.0.0.1:443"
	oldCert, oldKey := selfSigned(t, "old.test")
	newCert, newKey := selfSigned(t, "new.test")
	tls := []*command.Request{httpsListener(l443), cluster("app"), cert(l443, oldCert, oldKey, "old.test"), httpsFront(l443, "old.test", "app")}
	base := []*command.Request{httpListener(l80, 60), activate(l80), cluster("app"), backend("app", "app-0", "10.0.0.1:80"),
		front(l80, "app.test", "app"), front(l80, "old.test", "app")}
	for _, tc := range []struct {
		name                    string
		cur, next               []*command.Request
		verbs                   []string
		added, changed, removed []string
		restart                 bool
	}{
		{name: "same", cur: base, next: base},
		{
			name: "add cluster, backend, frontend; move a backend; remove a frontend",
			cur:  base,
			next: []*command.Request{httpListener(l80, 60), activate(l80), cluster("app"), backend("app", "app-0", "10.0.0.2:80"),
				backend("app", "app-1", "10.0.0.3:80"), front(l80, "app.test", "app"),
				cluster("api"), backend("api", "api-0", "10.0.0.9:80"), front(l80, "api.test", "api")},
			verbs: []string{"AddCluster", "AddBackend", "AddBackend", "AddBackend", "AddHttpFrontend", "RemoveHttpFrontend", "RemoveBackend"},
			added: []string{"cluster api", "backend api/api-0 10.0.0.9:80", "backend app/app-1 10.0.0.3:80",
				"frontend http 127.0.0.1:80;api.test;P → api"},
			changed: []string{"backend app/app-0 10.0.0.1:80 → 10.0.0.2:80"},
			removed: []string{"frontend http 127.0.0.1:80;old.test;P → app"},
		},
		{
			name:    "remove a cluster with its frontends and backends",
			cur:     base,
			next:    []*command.Request{httpListener(l80, 60), activate(l80)},
			verbs:   []string{"RemoveHttpFrontend", "RemoveHttpFrontend", "RemoveBackend", "RemoveCluster"},
			removed: []string{"frontend http 127.0.0.1:80;app.test;P → app", "frontend http 127.0.0.1:80;old.test;P → app", "backend app/app-0 10.0.0.1:80", "cluster app"},
		},
		{
			name:    "a frontend to another cluster is replaced in place",
			cur:     base,
			next:    []*command.Request{httpListener(l80, 60), activate(l80), cluster("app"), backend("app", "app-0", "10.0.0.1:80"), cluster("b"), front(l80, "app.test", "b"), front(l80, "old.test", "app")},
			verbs:   []string{"AddCluster", "RemoveHttpFrontend", "AddHttpFrontend"},
			added:   []string{"cluster b"},
			changed: []string{"frontend http 127.0.0.1:80;app.test;P → b"},
		},
		{
			name:    "a new listener is added and activated; a changed one updated; a removed one deactivated and removed",
			cur:     []*command.Request{httpListener(l80, 60), activate(l80), httpListener("127.0.0.1:82", 60), activate("127.0.0.1:82")},
			next:    []*command.Request{httpListener(l80, 30), activate(l80), httpListener(l81, 60), activate(l81)},
			verbs:   []string{"UpdateHttpListener", "AddHttpListener", "ActivateListener", "DeactivateListener", "RemoveListener"},
			added:   []string{"listener http 127.0.0.1:81"},
			changed: []string{"listener http 127.0.0.1:80"},
			removed: []string{"listener http 127.0.0.1:82"},
		},
		{
			name:    "a certificate and its frontend added before, the old ones removed after",
			cur:     tls,
			next:    []*command.Request{httpsListener(l443), cluster("app"), cert(l443, newCert, newKey, "new.test"), httpsFront(l443, "new.test", "app")},
			verbs:   []string{"AddCertificate", "AddHttpsFrontend", "RemoveHttpsFrontend", "RemoveCertificate"},
			added:   []string{"certificate " + l443 + " " + fp16(t, newCert) + " (new.test)", "frontend https 127.0.0.1:443;new.test;P → app"},
			removed: []string{"frontend https 127.0.0.1:443;old.test;P → app", "certificate " + l443 + " " + fp16(t, oldCert) + " (old.test)"},
		},
		{
			name:    "a certificate served for other names is replaced in place",
			cur:     tls,
			next:    []*command.Request{httpsListener(l443), cluster("app"), cert(l443, oldCert, oldKey, "old.test", "www.old.test"), httpsFront(l443, "old.test", "app")},
			verbs:   []string{"ReplaceCertificate"},
			changed: []string{"certificate " + l443 + " " + fp16(t, oldCert) + " (old.test, www.old.test)"},
		},
		{
			name: "UDP: a listener and a frontend added, then the frontend's tags changed",
			cur: []*command.Request{udpListener("127.0.0.1:53"), activateRequest(command.ListenerType_UDP, sa("127.0.0.1:53")), cluster("dns"),
				udpFront("127.0.0.1:53", "dns", "a")},
			next: []*command.Request{udpListener("127.0.0.1:53"), activateRequest(command.ListenerType_UDP, sa("127.0.0.1:53")), cluster("dns"),
				udpFront("127.0.0.1:53", "dns", "b"), udpListener("127.0.0.1:54"), activateRequest(command.ListenerType_UDP, sa("127.0.0.1:54")),
				udpFront("127.0.0.1:54", "dns", "")},
			verbs:   []string{"AddUdpListener", "ActivateListener", "RemoveUdpFrontend", "AddUdpFrontend", "AddUdpFrontend"},
			added:   []string{"listener udp 127.0.0.1:54", "frontend udp dns 127.0.0.1:54"},
			changed: []string{"frontend udp dns 127.0.0.1:53"},
		},
		{
			name:  "a kept listener is never deactivated",
			cur:   []*command.Request{httpListener(l80, 60), activate(l80)},
			next:  []*command.Request{httpListener(l80, 60)},
			verbs: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, next := stateOf(t, tc.cur...), stateOf(t, tc.next...)
			p := planReload(cur, next)
			var verbs []string
			for _, st := range p.steps {
				verbs = append(verbs, command.VerbName(st.req))
			}
			if !slices.Equal(verbs, tc.verbs) {
				t.Errorf("steps %v, want %v", verbs, tc.verbs)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"added", p.added, tc.added}, {"changed", p.changed, tc.changed}, {"removed", p.removed, tc.removed}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s:\n  %s\nwant\n  %s", c.what, strings.Join(c.got, "\n  "), strings.Join(c.want, "\n  "))
				}
			}
			if len(p.restart) > 0 != tc.restart {
				t.Errorf("restart %q", p.restart)
			}
			// Applied to cur, the plan yields next (but for activation,
			// which a reload only ever adds).
			for i, st := range p.steps {
				if err := cur.Dispatch(st.req); err != nil {
					t.Fatalf("step %d (%s, %s) refused: %v", i+1, command.VerbName(st.req), st.what, err)
				}
			}
			if tc.name == "a kept listener is never deactivated" {
				return
			}
			got, want := cur.GenerateRequests(), next.GenerateRequests()
			if !slices.EqualFunc(got, want, func(a, b *command.WorkerRequest) bool { return proto.Equal(a, b) }) {
				t.Errorf("the plan applied gives\n%v\nwant\n%v", got, want)
			}
		})
	}
}
