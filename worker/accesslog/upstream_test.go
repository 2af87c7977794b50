package accesslog

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// This file holds the protobuf access log to upstream Sōzu's definitions
// (command.proto: ProtobufAccessLog and the messages it holds) and to the
// way upstream fills them (command/src/logging and command/src/proto):
// an operator decodes our records with upstream's schema.

// wireField is one field of an upstream message: its wire type and, for a
// length-delimited field that holds a message, that message's name.
type wireField struct {
	typ protowire.Type
	msg string // "" for a scalar, a string or bytes
}

// upstreamSchema is upstream's ProtobufAccessLog and every message it
// holds, field number by field number (proto2; a map is a repeated entry
// message, key 1 and value 2).
var upstreamSchema = map[string]map[protowire.Number]wireField{
	"ProtobufAccessLog": {
		1:  {protowire.BytesType, ""},                  // optional string message
		2:  {protowire.BytesType, "Uint128"},           // required Uint128 request_id
		3:  {protowire.BytesType, ""},                  // optional string cluster_id
		4:  {protowire.BytesType, ""},                  // optional string backend_id
		5:  {protowire.BytesType, "SocketAddress"},     // optional SocketAddress session_address
		6:  {protowire.BytesType, "SocketAddress"},     // optional SocketAddress backend_address
		7:  {protowire.BytesType, ""},                  // required string protocol
		8:  {protowire.BytesType, "ProtobufEndpoint"},  // required ProtobufEndpoint endpoint
		9:  {protowire.VarintType, ""},                 // optional uint64 client_rtt (µs)
		10: {protowire.VarintType, ""},                 // optional uint64 server_rtt (µs)
		13: {protowire.VarintType, ""},                 // required uint64 service_time (µs)
		14: {protowire.VarintType, ""},                 // required uint64 bytes_in
		15: {protowire.VarintType, ""},                 // required uint64 bytes_out
		16: {protowire.BytesType, ""},                  // optional string user_agent
		17: {protowire.BytesType, "StringStringEntry"}, // map<string, string> tags
		18: {protowire.BytesType, ""},                  // required string tag
		19: {protowire.BytesType, "Uint128"},           // required Uint128 time (ns)
		20: {protowire.VarintType, ""},                 // optional uint64 request_time (µs)
		21: {protowire.VarintType, ""},                 // optional uint64 response_time (µs)
		22: {protowire.BytesType, "OpenTelemetry"},     // optional OpenTelemetry otel
		23: {protowire.BytesType, "Uint128"},           // optional Uint128 session_id
		24: {protowire.BytesType, ""},                  // optional string x_request_id
		25: {protowire.BytesType, ""},                  // optional string tls_version
		26: {protowire.BytesType, ""},                  // optional string tls_cipher
		27: {protowire.BytesType, ""},                  // optional string tls_sni
		28: {protowire.BytesType, ""},                  // optional string tls_alpn
		29: {protowire.BytesType, ""},                  // optional string xff_chain
		30: {protowire.BytesType, "Uint128"},           // optional Uint128 start_time (ns)
	},
	"Uint128":           {1: {protowire.VarintType, ""}, 2: {protowire.VarintType, ""}},
	"SocketAddress":     {1: {protowire.BytesType, "IpAddress"}, 2: {protowire.VarintType, ""}},
	"IpAddress":         {1: {protowire.Fixed32Type, ""}, 2: {protowire.BytesType, "Uint128"}},
	"ProtobufEndpoint":  {1: {protowire.BytesType, "HttpEndpoint"}, 2: {protowire.BytesType, "TcpEndpoint"}},
	"HttpEndpoint":      {1: {protowire.BytesType, ""}, 2: {protowire.BytesType, ""}, 3: {protowire.BytesType, ""}, 4: {protowire.VarintType, ""}, 5: {protowire.BytesType, ""}},
	"TcpEndpoint":       {},
	"OpenTelemetry":     {1: {protowire.BytesType, ""}, 2: {protowire.BytesType, ""}, 3: {protowire.BytesType, ""}},
	"StringStringEntry": {1: {protowire.BytesType, ""}, 2: {protowire.BytesType, ""}},
}

// repeatable lists the fields that may occur more than once (the map).
var repeatable = map[string]map[protowire.Number]bool{"ProtobufAccessLog": {17: true}}

// oneofs lists the oneof groups: at most one of their fields may occur.
var oneofs = map[string][]protowire.Number{"ProtobufEndpoint": {1, 2}, "IpAddress": {1, 2}}

// checkWire walks b as the message msg of upstreamSchema: every field
// known, of its wire type, non-repeated fields once, one member of a
// oneof, nested messages alike. It returns the field numbers seen.
func checkWire(t *testing.T, path, msg string, b []byte) map[protowire.Number]int {
	t.Helper()
	fields, ok := upstreamSchema[msg]
	if !ok {
		t.Fatalf("%s: no message %s in the schema", path, msg)
	}
	seen := map[protowire.Number]int{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Errorf("%s: bad tag: %v", path, protowire.ParseError(n))
			return seen
		}
		b = b[n:]
		f, known := fields[num]
		where := fmt.Sprintf("%s.%d", path, num)
		switch {
		case !known:
			t.Errorf("%s: field %d is not in upstream's %s", where, num, msg)
		case typ != f.typ:
			t.Errorf("%s: wire type %d, upstream's is %d", where, typ, f.typ)
		}
		seen[num]++
		if seen[num] > 1 && !repeatable[msg][num] {
			t.Errorf("%s: occurs %d times", where, seen[num])
		}
		if typ == protowire.BytesType && known && f.msg != "" {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				t.Errorf("%s: %v", where, protowire.ParseError(m))
				return seen
			}
			checkWire(t, where, f.msg, v)
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			t.Errorf("%s: %v", where, protowire.ParseError(m))
			return seen
		}
		b = b[m:]
	}
	if group := oneofs[msg]; len(group) > 0 {
		count := 0
		for _, g := range group {
			count += seen[g]
		}
		if count > 1 {
			t.Errorf("%s: %d members of a oneof", path, count)
		}
	}
	return seen
}

// splitFrames cuts a stream of protobuf access records as upstream frames
// them (InnerLogger::log_access, prost's encode_length_delimited): a
// varint length, the record, two zero bytes.
func splitFrames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		n, k := protowire.ConsumeVarint(b)
		if k < 0 {
			t.Fatalf("length prefix: %v", protowire.ParseError(k))
		}
		b = b[k:]
		if uint64(len(b)) < n+2 {
			t.Fatalf("record of %d bytes and its two zero bytes, %d left", n, len(b))
		}
		out = append(out, b[:n])
		if b[n] != 0 || b[n+1] != 0 {
			t.Fatalf("after a record: % x, want 00 00", b[n:n+2])
		}
		b = b[n+2:]
	}
	return out
}

// upstreamULID is a ULID as upstream puts it in a Uint128 (From<Ulid> for
// Uint128: rusty_ulid's (u64, u64) is (most significant, least
// significant), stored as (low, high)): low holds the first eight bytes.
func upstreamULID(id ulid.ULID) (low, high uint64) {
	return binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])
}

// ulidOf reads a ULID from a Uint128 as upstream does (From<Uint128> for
// Ulid): low holds its first eight bytes.
func ulidOf(u *command.Uint128) (id ulid.ULID) {
	binary.BigEndian.PutUint64(id[:8], u.GetLow())
	binary.BigEndian.PutUint64(id[8:], u.GetHigh())
	return id
}

// upstreamU128 is an integer as upstream puts it in a Uint128 (From<u128>:
// low holds the least significant half): times, IPv6 addresses.
func upstreamU128(hi, lo uint64) (low, high uint64) { return lo, hi }

// decodeRecords decodes every framed record of b with upstream's schema
// (proto.Unmarshal checks that the required fields are there).
func decodeRecords(t *testing.T, b []byte) []*command.ProtobufAccessLog {
	t.Helper()
	var out []*command.ProtobufAccessLog
	for i, rec := range splitFrames(t, b) {
		checkWire(t, fmt.Sprintf("record %d", i), "ProtobufAccessLog", rec)
		m := new(command.ProtobufAccessLog)
		if err := proto.Unmarshal(rec, m); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		out = append(out, m)
	}
	return out
}

func checkUint128(t *testing.T, name string, got *command.Uint128, low, high uint64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: absent", name)
		return
	}
	if got.GetLow() != low || got.GetHigh() != high {
		t.Errorf("%s = {low %#x, high %#x}, upstream's encoding is {low %#x, high %#x}", name, got.GetLow(), got.GetHigh(), low, high)
	}
}

// TestProtobufMatchesUpstreamSchema encodes an HTTPS request over TLS 1.3
// with every optional value, a TCP session and a request the proxy did not
// answer, back to back as a target receives them, and reads them as
// upstream's schema and conversions say.
func TestProtobufMatchesUpstreamSchema(t *testing.T) {
	full := httpRecord()
	full.TLS = NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
		ServerName: "shop.example.com", NegotiatedProtocol: "h2"})
	tcp := &Record{Protocol: TCP, SessionID: sessionID, Start: t0, End: t0.Add(3 * time.Second),
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), Backend: netip.MustParseAddrPort("10.1.2.3:5432"),
		ClusterID: "db", BackendID: "db-1", BytesIn: 5, BytesOut: 7, BackendTime: time.Second}
	// An HTTP request with every duration zero, no backend, no status:
	// the optional fields upstream always sets are there with 0, those
	// it sets only for a backend or an answer are absent.
	bare := &Record{Protocol: HTTP, SessionID: sessionID, RequestID: requestID, Start: t0, End: t0,
		Client: netip.MustParseAddrPort("192.0.2.7:40000")}
	e := Encoder{Format: Protobuf, Tag: "WRK-01"}
	var stream []byte
	for _, r := range []*Record{full, tcp, bare} {
		stream = e.Append(stream, r)
	}
	recs := decodeRecords(t, stream)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}

	m := recs[0]
	lo, hi := upstreamULID(requestID)
	checkUint128(t, "request_id", m.GetRequestId(), lo, hi)
	lo, hi = upstreamULID(sessionID)
	checkUint128(t, "session_id", m.GetSessionId(), lo, hi)
	lo, hi = upstreamU128(0, uint64(full.End.UnixNano()))
	checkUint128(t, "time", m.GetTime(), lo, hi)
	lo, hi = upstreamU128(0, uint64(full.Start.UnixNano()))
	checkUint128(t, "start_time", m.GetStartTime(), lo, hi)
	lo, hi = upstreamU128(0x20010db800000000, 1)
	checkUint128(t, "backend_address v6", m.GetBackendAddress().GetIp().GetV6(), lo, hi)
	ep := m.GetEndpoint().GetHttp()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"session_address v4 (fixed32, big-endian)", m.GetSessionAddress().GetIp().GetV4(), uint32(0xc0000207)},
		{"session_address port", m.GetSessionAddress().GetPort(), uint32(40000)},
		{"backend_address port", m.GetBackendAddress().GetPort(), uint32(8080)},
		{"cluster_id", m.GetClusterId(), "shop"},
		{"backend_id", m.GetBackendId(), "shop-0"},
		{"method", ep.GetMethod(), "GET"},
		{"authority", ep.GetAuthority(), "shop.example.com"},
		{"path", ep.GetPath(), "/pay?card=***&n=***"},
		{"status", ep.GetStatus(), uint32(200)},
		{"service_time (µs)", m.GetServiceTime(), uint64(5000)},
		{"request_time (µs)", m.GetRequestTime(), uint64(25000)},
		{"response_time (µs)", m.GetResponseTime(), uint64(20000)},
		{"bytes_in", m.GetBytesIn(), uint64(120)},
		{"bytes_out", m.GetBytesOut(), uint64(3400)},
		{"user_agent", m.GetUserAgent(), "curl/8 [x] 411111******1111"},
		{"tags", fmt.Sprint(m.GetTags()), "map[env:prod team:pay]"},
		{"tag", m.GetTag(), "WRK-01"},
		{"tls_alpn", m.GetTlsAlpn(), "h2"},
		{"reason set", ep.Reason != nil, false},
		{"message set", m.Message != nil, false},
		{"otel set", m.Otel != nil, false},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	m = recs[1]
	lo, hi = upstreamULID(sessionID)
	checkUint128(t, "tcp request_id (the session's)", m.GetRequestId(), lo, hi)
	checkUint128(t, "tcp session_id", m.GetSessionId(), lo, hi)
	if m.GetEndpoint().GetTcp() == nil || m.GetEndpoint().GetHttp() != nil {
		t.Errorf("tcp endpoint = %v, want the tcp member", m.GetEndpoint())
	}
	if m.GetProtocol() != "TCP" || m.GetServiceTime() != 2e6 || m.GetResponseTime() != 1e6 || m.GetRequestTime() != 3e6 {
		t.Errorf("tcp record: protocol %q, service %d, response %d, request %d", m.GetProtocol(), m.GetServiceTime(), m.GetResponseTime(), m.GetRequestTime())
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"tls_version", m.TlsVersion != nil}, {"tls_cipher", m.TlsCipher != nil}, {"tls_sni", m.TlsSni != nil}, {"tls_alpn", m.TlsAlpn != nil}, {"user_agent", m.UserAgent != nil}} {
		if f.set {
			t.Errorf("tcp record: %s set", f.name)
		}
	}

	m = recs[2]
	for _, f := range []struct {
		name      string
		set, want bool
	}{
		{"service_time", m.ServiceTime != nil, true}, {"request_time", m.RequestTime != nil, true},
		{"bytes_in", m.BytesIn != nil, true}, {"bytes_out", m.BytesOut != nil, true},
		{"session_id", m.SessionId != nil, true}, {"start_time", m.StartTime != nil, true},
		{"response_time", m.ResponseTime != nil, false}, {"backend_address", m.BackendAddress != nil, false},
		{"cluster_id", m.ClusterId != nil, false}, {"backend_id", m.BackendId != nil, false},
		{"user_agent", m.UserAgent != nil, false}, {"client_rtt", m.ClientRtt != nil, false},
		{"server_rtt", m.ServerRtt != nil, false}, {"status", m.GetEndpoint().GetHttp().Status != nil, false},
		{"method", m.GetEndpoint().GetHttp().Method != nil, false}, {"path", m.GetEndpoint().GetHttp().Path != nil, false},
		{"tags", len(m.GetTags()) != 0, false}, {"tls_version", m.TlsVersion != nil, false},
	} {
		if f.set != f.want {
			t.Errorf("unanswered request: %s present = %v, upstream's = %v", f.name, f.set, f.want)
		}
	}
	if m.GetServiceTime() != 0 || m.GetRequestTime() != 0 || m.GetEndpoint().GetHttp() == nil {
		t.Errorf("unanswered request: service %d, request %d, endpoint %v", m.GetServiceTime(), m.GetRequestTime(), m.GetEndpoint())
	}
	if !bytes.HasSuffix(stream, []byte{0, 0}) {
		t.Error("the stream does not end with a record's two zero bytes")
	}
}

// TestTLSFieldsAsUpstream: tls_version, tls_cipher and tls_sni carry
// upstream's labels (rustls_version_label, rustls_ciphersuite_label, the
// SNI lowercased as upgrade_handshake stores it).
func TestTLSFieldsAsUpstream(t *testing.T) {
	for _, c := range []struct {
		version, suite  uint16
		sni             string
		wantV, wantC    string
		wantSNI, wantAP string
	}{
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, "Shop.Example.COM", "TLSv1.3", "TLS13_AES_128_GCM_SHA256", "shop.example.com", "h2"},
		{tls.VersionTLS13, tls.TLS_AES_256_GCM_SHA384, "a.example", "TLSv1.3", "TLS13_AES_256_GCM_SHA384", "a.example", "h2"},
		{tls.VersionTLS13, tls.TLS_CHACHA20_POLY1305_SHA256, "a.example", "TLSv1.3", "TLS13_CHACHA20_POLY1305_SHA256", "a.example", "h2"},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "a.example", "TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "a.example", "http/1.1"},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "a.example", "TLSv1.2", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "a.example", ""},
		{tls.VersionTLS11, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "", "TLSv1.1", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "", ""},
		{tls.VersionTLS10, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "", "TLSv1.0", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "", ""},
	} {
		r := httpRecord()
		r.TLS = NewTLSInfo(&tls.ConnectionState{Version: c.version, CipherSuite: c.suite, ServerName: c.sni, NegotiatedProtocol: c.wantAP})
		recs := decodeRecords(t, (&Encoder{Format: Protobuf}).Append(nil, r))
		m := recs[0]
		name := tls.VersionName(c.version) + " " + tls.CipherSuiteName(c.suite)
		if m.GetTlsVersion() != c.wantV || m.GetTlsCipher() != c.wantC || m.GetTlsSni() != c.wantSNI || m.GetTlsAlpn() != c.wantAP {
			t.Errorf("%s: tls_version %q, tls_cipher %q, tls_sni %q, tls_alpn %q; upstream's: %q, %q, %q, %q", name,
				m.GetTlsVersion(), m.GetTlsCipher(), m.GetTlsSni(), m.GetTlsAlpn(), c.wantV, c.wantC, c.wantSNI, c.wantAP)
		}
		if (m.TlsSni != nil) != (c.wantSNI != "") || (m.TlsAlpn != nil) != (c.wantAP != "") {
			t.Errorf("%s: tls_sni present %v, tls_alpn present %v", name, m.TlsSni != nil, m.TlsAlpn != nil)
		}
	}
	// A version upstream has no label for: tls_version absent, as
	// rustls_version_label's None.
	r := httpRecord()
	r.TLS = NewTLSInfo(&tls.ConnectionState{Version: 0x0305, CipherSuite: tls.TLS_AES_128_GCM_SHA256})
	if m := decodeRecords(t, (&Encoder{Format: Protobuf}).Append(nil, r))[0]; m.TlsVersion != nil {
		t.Errorf("unknown version: tls_version %q, upstream's is absent", m.GetTlsVersion())
	}
}

// upstreamBody renders the part of an ascii access line after the prompt's
// tab as upstream's InnerLogger::log_access lays it out ("{} {} {}
// {}/{}/{}/{}/{} {} {} [{}] {:?} {} {}{}"): the context, the client and
// backend addresses, the five durations, the byte counts, the tags and
// user agent, the OpenTelemetry context, the protocol, the endpoint and
// the message (none here).
func upstreamBody(ctx, client, backend, times string, in, out int64, tags, protocol, endpoint string) string {
	return fmt.Sprintf("[%s] %s %s %s %d %d [%s] None %s %s\n", ctx, client, backend, times, in, out, tags, protocol, endpoint)
}

// TestASCIIAsUpstream: an HTTP/1.1 request over cleartext and over TLS,
// an HTTP/2 stream, the proxy's own 404 and 503 answers and a request that
// got none, each line after its prompt as upstream writes it. Upstream's
// HTTP records, HTTP/1.1 and HTTP/2 alike, come from the mux
// (Stream::generate_access_log): their protocol is "http" or "https",
// whatever the TLS version (that is tls_version's).
func TestASCIIAsUpstream(t *testing.T) {
	s, q := sessionID.String(), requestID.String()
	tls13 := NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: "shop.example.com", NegotiatedProtocol: "h2"})
	tls12 := NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ServerName: "shop.example.com"})
	ua := "env=prod, team=pay, user-agent=curl/8_{x}_411111******1111"
	plain := httpRecord()
	plain.Protocol, plain.TLS = HTTP, nil
	https := httpRecord()
	https.TLS = tls12
	h2 := httpRecord()
	h2.Protocol, h2.TLS = H2, tls13
	notFound := httpRecord()
	notFound.Protocol, notFound.Status, notFound.Backend, notFound.BackendID, notFound.ClusterID, notFound.BackendTime = HTTP, 404, netip.AddrPort{}, "", "", 0
	notFound.Tags, notFound.UserAgent, notFound.Target = nil, nil, []byte("/nowhere")
	unavailable := httpRecord()
	unavailable.TLS, unavailable.Status, unavailable.Backend, unavailable.BackendID, unavailable.BackendTime = tls13, 503, netip.AddrPort{}, "", 0
	unavailable.End = t0.Add(3 * time.Second)
	unanswered := httpRecord()
	unanswered.Status, unanswered.End = 0, t0.Add(9*time.Microsecond)
	unanswered.BackendTime = 0
	for _, c := range []struct {
		name  string
		r     *Record
		level string
		want  string
	}{
		{"http/1.1", plain, "INFO-ACCESS ", upstreamBody(s+" "+q+" shop shop-0", "192.0.2.7:40000", "[2001:db8::1]:8080", "25ms/5000μs/20ms/-/-", 120, 3400, ua, "http", "shop.example.com GET /pay?card=***&n=*** 200")},
		{"https/1.1", https, "INFO-ACCESS ", upstreamBody(s+" "+q+" shop shop-0", "192.0.2.7:40000", "[2001:db8::1]:8080", "25ms/5000μs/20ms/-/-", 120, 3400, ua, "https", "shop.example.com GET /pay?card=***&n=*** 200")},
		{"h2", h2, "INFO-ACCESS ", upstreamBody(s+" "+q+" shop shop-0", "192.0.2.7:40000", "[2001:db8::1]:8080", "25ms/5000μs/20ms/-/-", 120, 3400, ua, "https", "shop.example.com GET /pay?card=***&n=*** 200")},
		// Upstream writes a completed 4xx/5xx exchange at INFO; ours at
		// ERROR on purpose (docs/observability.md, "Which records are
		// written").
		{"404", notFound, "ERROR-ACCESS", upstreamBody(s+" "+q+" - -", "192.0.2.7:40000", "-", "25ms/25ms/-/-/-", 120, 3400, "", "http", "shop.example.com GET /nowhere 404")},
		{"503", unavailable, "ERROR-ACCESS", upstreamBody(s+" "+q+" shop -", "192.0.2.7:40000", "-", "3000ms/3000ms/-/-/-", 120, 3400, ua, "https", "shop.example.com GET /pay?card=***&n=*** 503")},
		{"no answer", unanswered, "ERROR-ACCESS", upstreamBody(s+" "+q+" shop shop-0", "192.0.2.7:40000", "[2001:db8::1]:8080", "9000ns/9000ns/-/-/-", 120, 3400, ua, "https", "shop.example.com GET /pay?card=***&n=*** -")},
	} {
		line := string((&Encoder{Format: Ascii, Tag: "WRK-00", PID: 42}).Append(nil, c.r))
		prompt, body, ok := strings.Cut(line, "\t")
		if !ok {
			t.Errorf("%s: no tab in %q", c.name, line)
			continue
		}
		if body != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, body, c.want)
		}
		if !strings.HasSuffix(prompt, " 42 "+c.level+" WRK-00") {
			t.Errorf("%s: prompt %q, want level %q", c.name, prompt, c.level)
		}
		m := decodeRecords(t, (&Encoder{Format: Protobuf}).Append(nil, c.r))[0]
		var j struct {
			Sozu struct{ Protocol string }
		}
		if err := json.Unmarshal((&Encoder{Format: JSON}).Append(nil, c.r), &j); err != nil {
			t.Fatal(err)
		}
		wantProto := strings.Fields(c.want)[len(strings.Fields(c.want))-5]
		if m.GetProtocol() != wantProto || j.Sozu.Protocol != wantProto {
			t.Errorf("%s: protobuf protocol %q, JSON sozu.protocol %q, want %q", c.name, m.GetProtocol(), j.Sozu.Protocol, wantProto)
		}
	}
}

// TestASCIIStreamContextAsUpstream: upstream files a TCP session under one
// ULID in both slots of the context (TcpSession::log_context, and the
// Pipe it builds with that id as session and request id), so its line
// reads "[S S cluster backend]"; our UDP flows are written the same way.
func TestASCIIStreamContextAsUpstream(t *testing.T) {
	s := sessionID.String()
	tcp := &Record{Protocol: TCP, SessionID: sessionID, Start: t0, End: t0.Add(3 * time.Second),
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), Backend: netip.MustParseAddrPort("10.1.2.3:5432"),
		ClusterID: "db", BackendID: "db-1", BytesIn: 5, BytesOut: 7, BackendTime: time.Second}
	for _, c := range []struct {
		name string
		r    *Record
		want string
	}{
		{"tcp", tcp, upstreamBody(s+" "+s+" db db-1", "192.0.2.7:40000", "10.1.2.3:5432", "3000ms/2000ms/1000ms/-/-", 5, 7, "", "TCP", "-")},
		{"udp", udpRecord(), upstreamBody(s+" "+s+" dns dns-0", "192.0.2.7:5353", "10.0.0.2:53", "2000ms/0ns/2000ms/-/-", 40, 300, "svc=resolver", "UDP", "-")},
	} {
		for _, colored := range []bool{false, true} {
			line := string((&Encoder{Format: Ascii, Tag: "WRK-00", PID: 42, Colored: colored}).Append(nil, c.r))
			if colored {
				line = ansiEscape.ReplaceAllString(line, "")
			}
			_, body, _ := strings.Cut(line, "\t")
			if body != c.want {
				t.Errorf("%s (colored %v):\n got %q\nwant %q", c.name, colored, body, c.want)
			}
		}
	}
}

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestASCIIColoredAsUpstream: access_logs_colored writes upstream's
// escapes (the prompt of _prompt_log!, the colored format of log_access,
// display_status's colours for 2xx to 5xx only).
func TestASCIIColoredAsUpstream(t *testing.T) {
	s, q := sessionID.String(), requestID.String()
	for _, c := range []struct {
		status int
		shown  string
	}{{101, "101"}, {200, "\x1b[32m200"}, {302, "\x1b[34m302"}, {404, "\x1b[33m404"}, {503, "\x1b[31m503"}, {999, "999"}, {0, "-"}} {
		r := httpRecord()
		r.Protocol, r.Status, r.Tags, r.UserAgent = HTTP, c.status, nil, nil
		level := "INFO-ACCESS "
		if r.Failure() {
			level = "ERROR-ACCESS"
		}
		want := "2026-12-06T08:00:00.025000Z \x1b[2m1796544000025000000 \x1b[;2;1m42 \x1b[;35;1m" + level + " \x1b[0;1mWRK-00\x1b[m\t" +
			"\x1b[;1m[" + s + " " + q + " shop shop-0]\x1b[m 192.0.2.7:40000 [2001:db8::1]:8080 25ms/5000μs/20ms/-/- 120 3400 \x1b[2m[] None " +
			"\x1b[;1mhttp shop.example.com GET /pay?card=***&n=*** " + c.shown + "\x1b[m\n"
		if got := string((&Encoder{Format: Ascii, Tag: "WRK-00", PID: 42, Colored: true}).Append(nil, r)); got != want {
			t.Errorf("status %d:\n got %q\nwant %q", c.status, got, want)
		}
	}
}
