package worker

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
)

// TestSnapshotHTTPSPolicy checks how strict_sni_binding, hsts, expect_proxy
// and https_redirect reach the proxy's listener and cluster configurations.
func TestSnapshotHTTPSPolicy(t *testing.T) {
	const on, off, plain = "127.0.0.1:9443", "127.0.0.1:9444", "127.0.0.1:9080"
	https := func(addr string, mod func(*command.HttpsListenerConfig)) *command.Request {
		l := &command.HttpsListenerConfig{Address: sa(addr)}
		mod(l)
		return &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: l}}
	}
	httpsFront := func(addr, host string, h *command.HstsConfig) *command.Request {
		return &command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: &command.RequestHttpFrontend{
			ClusterId: proto.String("a"), Address: sa(addr), Hostname: proto.String(host), Hsts: h,
			Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("")}}}}
	}
	st := state.New()
	dispatch(t, st,
		https(on, func(l *command.HttpsListenerConfig) {
			l.ExpectProxy = proto.Bool(true)
			l.Hsts = &command.HstsConfig{Enabled: proto.Bool(true), Preload: proto.Bool(true)}
		}),
		https(off, func(l *command.HttpsListenerConfig) { l.StrictSniBinding = proto.Bool(false) }),
		httpListener(plain, func(l *command.HttpListenerConfig) { l.ExpectProxy = proto.Bool(true) }),
		cluster("a", func(c *command.Cluster) { c.HttpsRedirect = proto.Bool(true); c.HttpsRedirectPort = proto.Uint32(8443) }),
		httpsFront(on, "x.test", &command.HstsConfig{Enabled: proto.Bool(false)}),
		httpsFront(on, "y.test", nil),
		frontend(proto.String("a"), plain, "z.test", "/", func(f *command.RequestHttpFrontend) {
			f.Hsts = &command.HstsConfig{Enabled: proto.Bool(true)}
		}),
	)
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)

	l, o, p := snap.http["HTTPS "+on], snap.http["HTTPS "+off], snap.http["HTTP "+plain]
	if l == nil || o == nil || p == nil {
		t.Fatalf("listeners %v", snap.http)
	}
	if !l.StrictSNI || o.StrictSNI || !l.ExpectProxy || o.ExpectProxy || !p.ExpectProxy {
		t.Errorf("strict %v %v, expect_proxy %v %v %v", l.StrictSNI, o.StrictSNI, l.ExpectProxy, o.ExpectProxy, p.ExpectProxy)
	}
	if l.HSTS == nil || l.HSTS.Value != "max-age=31536000; preload" || o.HSTS != nil {
		t.Errorf("listener HSTS %+v %+v", l.HSTS, o.HSTS)
	}
	if len(l.FrontendHSTS) != 1 {
		t.Fatalf("frontend HSTS %v", l.FrontendHSTS)
	}
	for k, h := range l.FrontendHSTS {
		if !strings.Contains(k, "x.test") || h == nil || h.Value != "" {
			t.Errorf("frontend HSTS %q: %+v, want a disabled policy for x.test", k, h)
		}
	}
	if p.HSTS != nil || p.FrontendHSTS != nil {
		t.Errorf("HSTS on a plain HTTP listener: %+v %v", p.HSTS, p.FrontendHSTS)
	}
	if !strings.Contains(strings.Join(snap.warnings, "\n"), "HTTP listener "+plain+": hsts on its frontends is ignored") {
		t.Errorf("no warning for HSTS over HTTP: %q", snap.warnings)
	}
	if c := p.Clusters["a"]; c == nil || !c.HTTPSRedirect || c.HTTPSRedirectPort != 8443 {
		t.Errorf("cluster a: %+v", c)
	}
}
