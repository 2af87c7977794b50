package state

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// Builders for test requests. They panic on bad literals: a typo in a test
// is a bug in the test.

func sa(s string) *command.SocketAddress {
	a, err := command.ParseSocketAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

func badPort(ip string, port uint32) *command.SocketAddress {
	a := sa(ip + ":0")
	a.Port = proto.Uint32(port)
	return a
}

func cluster(id string) *command.Cluster {
	return &command.Cluster{ClusterId: proto.String(id), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false)}
}

func addCluster(c *command.Cluster) *command.Request {
	return &command.Request{RequestType: &command.Request_AddCluster{AddCluster: c}}
}

func removeCluster(id string) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: id}}
}

func healthCheck(uri string) *command.HealthCheckConfig {
	return &command.HealthCheckConfig{Uri: proto.String(uri)}
}

func setHealthCheck(id string, hc *command.HealthCheckConfig) *command.Request {
	return &command.Request{RequestType: &command.Request_SetHealthCheck{SetHealthCheck: &command.SetHealthCheck{ClusterId: proto.String(id), Config: hc}}}
}

func removeHealthCheck(id string) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveHealthCheck{RemoveHealthCheck: id}}
}

func front(clusterID, addr, host string, kind command.PathRuleKind, path string) *command.RequestHttpFrontend {
	f := &command.RequestHttpFrontend{
		Address:  sa(addr),
		Hostname: proto.String(host),
		Path:     &command.PathRule{Kind: kind.Enum(), Value: proto.String(path)},
		Position: command.RulePosition_TREE.Enum(),
	}
	if clusterID != "" {
		f.ClusterId = proto.String(clusterID)
	}
	return f
}

func withMethod(f *command.RequestHttpFrontend, m string) *command.RequestHttpFrontend {
	f.Method = proto.String(m)
	return f
}

func addHTTP(f *command.RequestHttpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: f}}
}

func removeHTTP(f *command.RequestHttpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveHttpFrontend{RemoveHttpFrontend: f}}
}

func addHTTPS(f *command.RequestHttpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: f}}
}

func removeHTTPS(f *command.RequestHttpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveHttpsFrontend{RemoveHttpsFrontend: f}}
}

func tcpFront(clusterID, addr string, tags map[string]string) *command.RequestTcpFrontend {
	return &command.RequestTcpFrontend{ClusterId: proto.String(clusterID), Address: sa(addr), Tags: tags}
}

func addTCP(f *command.RequestTcpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_AddTcpFrontend{AddTcpFrontend: f}}
}

func removeTCP(f *command.RequestTcpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveTcpFrontend{RemoveTcpFrontend: f}}
}

func udpFront(clusterID, addr string, tags map[string]string) *command.RequestUdpFrontend {
	return &command.RequestUdpFrontend{ClusterId: proto.String(clusterID), Address: sa(addr), Tags: tags}
}

func addUDP(f *command.RequestUdpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: f}}
}

func removeUDP(f *command.RequestUdpFrontend) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveUdpFrontend{RemoveUdpFrontend: f}}
}

func backend(clusterID, id, addr string) *command.AddBackend {
	return &command.AddBackend{ClusterId: proto.String(clusterID), BackendId: proto.String(id), Address: sa(addr)}
}

func weighted(b *command.AddBackend, w int32) *command.AddBackend {
	b.LoadBalancingParameters = &command.LoadBalancingParams{Weight: proto.Int32(w)}
	return b
}

func addBackend(b *command.AddBackend) *command.Request {
	return &command.Request{RequestType: &command.Request_AddBackend{AddBackend: b}}
}

func removeBackend(clusterID, id, addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveBackend{RemoveBackend: &command.RemoveBackend{
		ClusterId: proto.String(clusterID), BackendId: proto.String(id), Address: sa(addr)}}}
}

func httpListener(addr string) *command.HttpListenerConfig {
	return &command.HttpListenerConfig{Address: sa(addr)}
}

func httpsListener(addr string) *command.HttpsListenerConfig {
	return &command.HttpsListenerConfig{Address: sa(addr)}
}

func addHTTPListener(l *command.HttpListenerConfig) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: l}}
}

func addHTTPSListener(l *command.HttpsListenerConfig) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: l}}
}

func addTCPListener(addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddTcpListener{AddTcpListener: &command.TcpListenerConfig{Address: sa(addr)}}}
}

func addUDPListener(addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddUdpListener{AddUdpListener: &command.UdpListenerConfig{Address: sa(addr)}}}
}

func removeListener(addr string, t command.ListenerType) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveListener{RemoveListener: &command.RemoveListener{Address: sa(addr), Proxy: t.Enum()}}}
}

func activateListener(addr string, t command.ListenerType) *command.Request {
	return &command.Request{RequestType: &command.Request_ActivateListener{ActivateListener: &command.ActivateListener{
		Address: sa(addr), Proxy: t.Enum(), FromScm: proto.Bool(false)}}}
}

func deactivateListener(addr string, t command.ListenerType) *command.Request {
	return &command.Request{RequestType: &command.Request_DeactivateListener{DeactivateListener: &command.DeactivateListener{
		Address: sa(addr), Proxy: t.Enum(), ToScm: proto.Bool(false)}}}
}

func updateHTTP(u *command.UpdateHttpListenerConfig) *command.Request {
	return &command.Request{RequestType: &command.Request_UpdateHttpListener{UpdateHttpListener: u}}
}

func updateHTTPS(u *command.UpdateHttpsListenerConfig) *command.Request {
	return &command.Request{RequestType: &command.Request_UpdateHttpsListener{UpdateHttpsListener: u}}
}

func updateTCP(u *command.UpdateTcpListenerConfig) *command.Request {
	return &command.Request{RequestType: &command.Request_UpdateTcpListener{UpdateTcpListener: u}}
}

func updateUDP(u *command.UpdateUdpListenerConfig) *command.Request {
	return &command.Request{RequestType: &command.Request_UpdateUdpListener{UpdateUdpListener: u}}
}

func addCert(addr, certPEM string, names ...string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
		Address:     sa(addr),
		Certificate: &command.CertificateAndKey{Certificate: proto.String(certPEM), Key: proto.String("test key"), Names: names},
	}}}
}

func replaceCert(addr, oldFP, certPEM string) *command.Request {
	return &command.Request{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{
		Address:        sa(addr),
		NewCertificate: &command.CertificateAndKey{Certificate: proto.String(certPEM), Key: proto.String("test key")},
		OldFingerprint: proto.String(oldFP),
	}}}
}

func removeCert(addr, fp string) *command.Request {
	return &command.Request{RequestType: &command.Request_RemoveCertificate{RemoveCertificate: &command.RemoveCertificate{
		Address: sa(addr), Fingerprint: proto.String(fp)}}}
}

// testCert returns a fresh self-signed ECDSA certificate in PEM form and its
// fingerprint. The private key is not returned: the state never reads it.
func testCert(t testing.TB, cn string, dnsNames ...string) (certPEM, fingerprint string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), hex.EncodeToString(sum[:])
}

// mustDispatch applies requests that the test expects to be accepted.
func mustDispatch(t testing.TB, s *ConfigState, reqs ...*command.Request) {
	t.Helper()
	for i, r := range reqs {
		if err := s.Dispatch(r); err != nil {
			t.Fatalf("setup request %d (%s): %v", i, command.VerbName(r), err)
		}
	}
}

// requireRoundTrip checks the GenerateRequests invariant: replaying the
// generated requests into New() reproduces the same requests and hashes,
// and every generated request marshals without AllowPartial.
func requireRoundTrip(t testing.TB, s *ConfigState) {
	t.Helper()
	gen := s.GenerateRequests()
	replay := New()
	for _, wr := range gen {
		if _, err := proto.Marshal(wr); err != nil {
			t.Fatalf("%s does not marshal strictly: %v", wr.GetId(), err)
		}
		if err := replay.Dispatch(wr.GetContent()); err != nil {
			t.Fatalf("replaying %s %s: %v", wr.GetId(), command.StateKey(wr.GetContent()), err)
		}
	}
	again := replay.GenerateRequests()
	if len(again) != len(gen) {
		t.Fatalf("replayed state generates %d requests, want %d", len(again), len(gen))
	}
	for i := range gen {
		if !proto.Equal(gen[i], again[i]) {
			t.Fatalf("record %d differs after replay:\n got %v\nwant %v", i, again[i], gen[i])
		}
	}
	h1, h2 := s.ClusterHashes(), replay.ClusterHashes()
	if len(h1) != len(h2) {
		t.Fatalf("hashes: %d clusters after replay, want %d", len(h2), len(h1))
	}
	for id, h := range h1 {
		if h2[id] != h {
			t.Fatalf("hash of cluster %q changed after replay", id)
		}
	}
}

func sameRequests(a, b []*command.WorkerRequest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
