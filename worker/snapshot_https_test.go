package worker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/h2"
)

func selfSigned(t *testing.T, notAfter time.Time, names ...string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func TestSnapshotHTTPS(t *testing.T) {
	const addr = "127.0.0.1:9443"
	defC, defK := selfSigned(t, time.Now().Add(time.Hour), "default.test")
	aC, aK := selfSigned(t, time.Now().Add(time.Hour), "a.test")
	oldC, oldK := selfSigned(t, time.Now().Add(-time.Hour), "old.test")
	addCert := func(c, k string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
			Address: sa(addr), Certificate: &command.CertificateAndKey{Certificate: proto.String(c), Key: proto.String(k)}}}}
	}
	st := state.New()
	dispatch(t, st,
		&command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{
			Address: sa(addr), FrontTimeout: proto.Uint32(7), Certificate: proto.String(defC), Key: proto.String(defK)}}},
		cluster("a", nil),
		&command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: &command.RequestHttpFrontend{
			ClusterId: proto.String("a"), Address: sa(addr), Hostname: proto.String("a.test"),
			Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("")}}}},
		addCert(aC, aK),
		addCert(oldC, oldK), // the state takes it; the snapshot leaves it out
	)
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	if len(snap.warnings) != 1 || !strings.Contains(snap.warnings[0], "expired") {
		t.Fatalf("warnings: %v", snap.warnings)
	}
	k := key(command.ListenerType_HTTPS, addr)
	pl := snap.http[k]
	if pl == nil || pl.FrontTimeout != 7*time.Second || pl.Routes == nil {
		t.Fatalf("listener: %+v", pl)
	}
	// Strict SNI binds clients without SNI to the default certificate's names.
	if !slices.Equal(pl.DefaultNames, []string{"default.test"}) {
		t.Fatalf("DefaultNames %q, want the default certificate's names", pl.DefaultNames)
	}
	ix := snap.https[k]
	if ix == nil || ix.Default() == nil || len(ix.Certs()) != 1 {
		t.Fatalf("index: %+v", ix)
	}
	if c := ix.Lookup("a.test"); c == nil || c.Names[0] != "a.test" {
		t.Fatalf("a.test: %+v", c)
	}
	if ix.Lookup("old.test") != ix.Default() || ix.Lookup("") != ix.Default() {
		t.Fatal("unknown names do not get the default")
	}
}

// TestSnapshotHTTPSH2 checks that an HTTPS listener's h2_* keys and
// disable_http11 reach the proxy listener (absent keys: h2's defaults).
func TestSnapshotHTTPSH2(t *testing.T) {
	const addr = "127.0.0.1:9444"
	for _, tt := range []struct {
		name string
		cfg  *command.HttpsListenerConfig
		want h2.Limits
		off  bool
	}{
		// The stream idle timeout, absent, is upstream's max(30 s,
		// back_timeout), and spares streams awaiting their backend,
		// which the backend timeout answers.
		{"defaults", &command.HttpsListenerConfig{Address: sa(addr)}, h2.Limits{StreamIdleTimeout: 30 * time.Second, StreamIdleSparesAwaiting: true}, false},
		{"idle timeout from back_timeout", &command.HttpsListenerConfig{Address: sa(addr), BackTimeout: proto.Uint32(90)},
			h2.Limits{StreamIdleTimeout: 90 * time.Second, StreamIdleSparesAwaiting: true}, false},
		{"idle timeout floored at 30 s", &command.HttpsListenerConfig{Address: sa(addr), BackTimeout: proto.Uint32(5)},
			h2.Limits{StreamIdleTimeout: 30 * time.Second, StreamIdleSparesAwaiting: true}, false},
		// 0, which only an add_https_listener or a state file carries (the
		// configuration and listener updates refuse it), is a zero count:
		// absent, not a 1 s timeout that reaps any stream awaiting its
		// backend a second.
		{"idle timeout 0 is absent", &command.HttpsListenerConfig{Address: sa(addr), BackTimeout: proto.Uint32(90),
			H2StreamIdleTimeoutSeconds: proto.Uint32(0)}, h2.Limits{StreamIdleTimeout: 90 * time.Second, StreamIdleSparesAwaiting: true}, false},
		// Any other h2_* knob stated out of range (0, which the
		// configuration and listener updates refuse, only a state file
		// record or a raw add_https_listener carries) is clamped into range
		// as upstream clamps it: 0 is the strictest bound, 1, never the
		// default (h2_max_ping_per_window = 0 became 100, a limit 100 times
		// looser than the one stated, and nothing said so).
		{"a stated 0 is clamped, not the default", &command.HttpsListenerConfig{Address: sa(addr),
			H2MaxPingPerWindow:                proto.Uint32(0),
			H2MaxRstStreamLifetime:            proto.Uint64(0),
			H2MaxRstStreamAbusiveLifetime:     proto.Uint64(0),
			H2MaxHeaderFields:                 proto.Uint32(0),
			H2MaxWindowUpdateStream0PerWindow: proto.Uint32(0),
			H2MaxConcurrentStreams:            proto.Uint32(0),
			H2InitialConnectionWindow:         proto.Uint32(0),
			H2StreamShrinkRatio:               proto.Uint32(0),
		}, h2.Limits{MaxPingPerWindow: 1, MaxRstStreamLifetime: 1, MaxRstStreamAbusiveLifetime: 1, MaxHeaderFields: 1,
			MaxWindowUpdateStream0PerWindow: 1, MaxConcurrentStreams: 1, InitialConnectionWindow: 65535, StreamShrinkRatio: 2,
			StreamIdleTimeout: 30 * time.Second, StreamIdleSparesAwaiting: true}, false},
		{"set", &command.HttpsListenerConfig{Address: sa(addr), DisableHttp11: proto.Bool(true),
			AlpnProtocols:              []string{"h2"},
			H2MaxConcurrentStreams:     proto.Uint32(7),
			H2MaxRstStreamPerWindow:    proto.Uint32(3),
			H2MaxRstStreamLifetime:     proto.Uint64(9),
			H2MaxPingPerWindow:         proto.Uint32(4),
			H2MaxContinuationFrames:    proto.Uint32(2),
			H2MaxHeaderListSize:        proto.Uint32(1000),
			H2StreamIdleTimeoutSeconds: proto.Uint32(5),
			// 0 means no deadline.
			H2GracefulShutdownDeadlineSeconds: proto.Uint32(0),
		}, h2.Limits{MaxConcurrentStreams: 7, MaxRstStreamPerWindow: 3, MaxRstStreamLifetime: 9, MaxPingPerWindow: 4,
			MaxContinuationFrames: 2, MaxHeaderListSize: 1000, StreamIdleTimeout: 5 * time.Second, GracefulShutdownDeadline: -1}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := state.New()
			dispatch(t, st, &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: tt.cfg}})
			reg := backends.NewRegistry(backends.Options{})
			defer reg.Close()
			snap := buildSnapshot(st, reg, false)
			pl := snap.http[key(command.ListenerType_HTTPS, addr)]
			if pl == nil {
				t.Fatal("no listener")
			}
			if pl.H2 != tt.want || pl.DisableHTTP11 != tt.off {
				t.Fatalf("H2 %+v DisableHTTP11 %v, want %+v %v", pl.H2, pl.DisableHTTP11, tt.want, tt.off)
			}
		})
	}
}
