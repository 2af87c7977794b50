package tlsconf

import (
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

func TestParsePolicy(t *testing.T) {
	v12, v13 := command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3
	all13 := []string{"TLS13_AES_256_GCM_SHA384", "TLS13_AES_128_GCM_SHA256", "TLS13_CHACHA20_POLY1305_SHA256"}
	tests := []struct {
		name               string
		versions           []command.TlsVersion
		cipherList, suites []string
		groups             []string
		want               Policy
		warnings           []string // substrings, in order
	}{
		{name: "empty: defaults"},
		{name: "both versions", versions: []command.TlsVersion{v12, v13}},
		{name: "1.2 only", versions: []command.TlsVersion{v12}, want: Policy{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}},
		{name: "1.3 only", versions: []command.TlsVersion{v13}, want: Policy{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}},
		{name: "old versions ignored", versions: []command.TlsVersion{command.TlsVersion_SSL_V3, command.TlsVersion_TLS_V1_0, command.TlsVersion_TLS_V1_1, v13},
			want:     Policy{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13},
			warnings: []string{"SSL_V3 is not allowed", "TLS_V1_0 is not allowed", "TLS_V1_1 is not allowed"}},
		{name: "only old versions", versions: []command.TlsVersion{command.TlsVersion_TLS_V1_1},
			warnings: []string{"TLS_V1_1 is not allowed", "no allowed version left"}},
		{name: "OpenSSL names", cipherList: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ecdhe-rsa-chacha20-poly1305"},
			want: Policy{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}}},
		{name: "IANA and rustls names, duplicates", cipherList: []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS12_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"},
			want: Policy{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}},
		{name: "OpenSSL colon list", cipherList: []string{"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"},
			want: Policy{CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}},
		{name: "weak suites refused", cipherList: []string{"ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256", "TLS_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-AES128-GCM-SHA256"},
			want:     Policy{CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
			warnings: []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is refused", "TLS_RSA_WITH_AES_128_GCM_SHA256 is refused", "TLS_RSA_WITH_RC4_128_SHA is refused"}},
		{name: "nothing allowed: defaults", cipherList: []string{"AES256-SHA", "NULL-MD5"},
			warnings: []string{"TLS_RSA_WITH_AES_256_CBC_SHA is refused", `"NULL-MD5" is not a TLS 1.2 cipher suite`, "the default suites are enabled"}},
		{name: "upstream defaults", versions: []command.TlsVersion{v12, v13},
			cipherList: append(slices.Clone(all13), "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
			suites:     append(slices.Clone(all13), "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
			groups:     []string{"X25519MLKEM768", "x25519", "P-256", "P-384"},
			want: Policy{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
				Curves: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}}},
		{name: "TLS 1.3 names only in cipher_list: TLS 1.3 only", cipherList: all13,
			want: Policy{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}, warnings: []string{"TLS 1.2 is disabled"}},
		{name: "TLS 1.3 subset accepted with a warning", suites: []string{"TLS_AES_256_GCM_SHA384"},
			warnings: []string{"cannot be restricted"}},
		{name: "unknown TLS 1.3 suite", suites: []string{"TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
			warnings: []string{`"TLS_AES_128_CCM_8_SHA256" is not a TLS 1.3 cipher suite`}},
		{name: "groups and aliases", groups: []string{"P-384", "secp256r1", "X25519", "x25519mlkem768", "P-521"},
			want: Policy{Curves: []tls.CurveID{tls.CurveP384, tls.CurveP256, tls.X25519, tls.X25519MLKEM768, tls.CurveP521}}},
		{name: "unknown groups", groups: []string{"ffdhe2048", "brainpoolP256r1"},
			warnings: []string{`"ffdhe2048" is not a supported group`, `"brainpoolP256r1" is not a supported group`, "default groups"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns := ParsePolicy(tt.versions, tt.cipherList, tt.suites, tt.groups, 0)
			if got.MinVersion != tt.want.MinVersion || got.MaxVersion != tt.want.MaxVersion ||
				!slices.Equal(got.CipherSuites, tt.want.CipherSuites) || !slices.Equal(got.Curves, tt.want.Curves) {
				t.Errorf("policy %+v, want %+v", got, tt.want)
			}
			if len(warns) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %q", warns, tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(warns[i].String(), w) {
					t.Errorf("warning %d: %q does not contain %q", i, warns[i], w)
				}
			}
		})
	}
}

// TestPolicyHandshake checks that a listener's policy, carried by its
// index, is what handshakes negotiate, and that it follows the snapshot.
func TestPolicyHandshake(t *testing.T) {
	cp, kp := gen(t, spec{names: []string{"a.example"}})
	c, err := Load(cp, nil, kp, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var s Store
	cfg := s.Config("l")
	handshake := func(client *tls.Config) (tls.ConnectionState, error) {
		t.Helper()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		srv := tls.Server(b, cfg)
		go func() { _ = srv.Handshake(); b.Close() }()
		client.ServerName, client.InsecureSkipVerify = "a.example", true
		cl := tls.Client(a, client)
		err := cl.Handshake()
		return cl.ConnectionState(), err
	}

	// No policy: the defaults (TLS 1.3 negotiated).
	s.Swap(map[string]*Index{"l": NewIndex([]*Cert{c}, nil)})
	if st, err := handshake(&tls.Config{}); err != nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("default: %v %x", err, st.Version)
	}

	// TLS 1.2 only, one suite, P-384 only.
	p, w := ParsePolicy([]command.TlsVersion{command.TlsVersion_TLS_V1_2}, []string{"ECDHE-ECDSA-CHACHA20-POLY1305"}, nil, []string{"P-384"}, 0)
	if len(w) != 0 {
		t.Fatal(w)
	}
	s.Swap(map[string]*Index{"l": NewIndex([]*Cert{c}, nil).WithPolicy(p)})
	st, err := handshake(&tls.Config{})
	if err != nil || st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Fatalf("1.2 policy: %v %x %s", err, st.Version, tls.CipherSuiteName(st.CipherSuite))
	}
	if _, err := handshake(&tls.Config{MinVersion: tls.VersionTLS13}); err == nil {
		t.Fatal("TLS 1.3 client accepted by a TLS 1.2 only policy")
	}
	if _, err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}); err == nil {
		t.Fatal("a suite outside the policy was negotiated")
	}
	if _, err := handshake(&tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}); err == nil {
		t.Fatal("a group outside the policy was negotiated")
	}

	// The policy follows the next snapshot: TLS 1.3 only.
	p, _ = ParsePolicy([]command.TlsVersion{command.TlsVersion_TLS_V1_3}, nil, nil, nil, 0)
	s.Swap(map[string]*Index{"l": NewIndex([]*Cert{c}, nil).WithPolicy(p)})
	if _, err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("TLS 1.2 client accepted by a TLS 1.3 only policy")
	}
	if st, err := handshake(&tls.Config{}); err != nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("1.3 policy: %v %x", err, st.Version)
	}
	// Without a certificate for the name and no default: the handshake fails.
	s.Swap(map[string]*Index{"l": NewIndex(nil, nil).WithPolicy(p)})
	if _, err := handshake(&tls.Config{}); err == nil {
		t.Fatal("handshake without a certificate succeeded")
	}
}

// TestPolicyALPN: the listener's alpn_protocols, in its order; h2 first by
// default. A client offering none of them gets the no_application_protocol
// alert (RFC 7301 §3.2), an "http/1.1" client of an h2-only listener too
// (Go's TLS would complete that handshake without a protocol); a client
// offering no ALPN at all completes it.
func TestPolicyALPN(t *testing.T) {
	cp, kp := gen(t, spec{names: []string{"a.example"}})
	c, err := Load(cp, nil, kp, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var s Store
	cfg := s.Config("l")
	alpn := func(offer ...string) (string, error) {
		t.Helper()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() { _ = tls.Server(b, cfg).Handshake(); b.Close() }()
		cl := tls.Client(a, &tls.Config{ServerName: "a.example", InsecureSkipVerify: true, NextProtos: offer})
		err := cl.Handshake()
		return cl.ConnectionState().NegotiatedProtocol, err
	}
	for _, tt := range []struct {
		name   string
		policy []string // nil: no policy at all
		offer  []string
		want   string // "!": the handshake fails with no_application_protocol
	}{
		{"no policy, h2 preferred", nil, []string{"http/1.1", "h2"}, "h2"},
		{"default list", []string{}, []string{"http/1.1", "h2"}, "h2"},
		{"default list, http/1.1 client", []string{}, []string{"http/1.1"}, "http/1.1"},
		{"http/1.1 only", []string{"http/1.1"}, []string{"h2", "http/1.1"}, "http/1.1"},
		{"http/1.1 first", []string{"http/1.1", "h2"}, []string{"h2", "http/1.1"}, "http/1.1"},
		{"h2 only", []string{"h2"}, []string{"h2", "http/1.1"}, "h2"},
		{"h2 only, http/1.1 client", []string{"h2"}, []string{"http/1.1"}, "!"},
		{"h2 only, client without ALPN", []string{"h2"}, nil, ""},
		{"http/1.1 only, h2 client", []string{"http/1.1"}, []string{"h2"}, "!"},
		{"no policy, other protocol", nil, []string{"h3"}, "!"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex([]*Cert{c}, nil)
			if tt.policy != nil {
				ix = ix.WithPolicy(Policy{ALPN: tt.policy})
			}
			s.Swap(map[string]*Index{"l": ix})
			got, err := alpn(tt.offer...)
			if tt.want == "!" {
				if err == nil || !strings.Contains(err.Error(), "no application protocol") {
					t.Fatalf("negotiated %q (%v), want the no_application_protocol alert", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("negotiated %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}
