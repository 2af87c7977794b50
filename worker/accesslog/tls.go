package accesslog

import (
	"crypto/tls"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sozu-go/sozu/worker/logmask"
)

// TLSInfo is what the records of a TLS connection show of its handshake:
// made once per connection (NewTLSInfo), shared by its requests, never
// changed.
type TLSInfo struct {
	protocol string // upstream's protocol field: "HTTPS-TLS1.3"
	version  string // "TLS1.3" (tls_version)
	cipher   string // tls.CipherSuiteName (tls_cipher)
	sni      []byte // the server name the client asked for, PANs masked (tls_sni)
	alpn     string // the protocol ALPN selected, "" for none (tls_alpn)
	json     []byte // `,"tls":{…}`: ECS's tls fields
	proto    []byte // ProtobufAccessLog's fields tls_version to tls_alpn
}

// NewTLSInfo returns the TLSInfo of a handshake's result.
func NewTLSInfo(st *tls.ConnectionState) *TLSInfo {
	t := &TLSInfo{version: tlsVersionName(st.Version), cipher: tls.CipherSuiteName(st.CipherSuite),
		sni: logmask.AppendPANMasked(nil, []byte(st.ServerName)), alpn: st.NegotiatedProtocol}
	t.protocol = "HTTPS-" + t.version
	ecs := "1.0"
	if len(t.version) > 3 {
		ecs = t.version[3:]
	}
	t.json = append(t.json, `,"tls":{"version":"`...)
	t.json = append(t.json, ecs...)
	t.json = append(t.json, `","version_protocol":"tls","cipher":`...)
	t.json = appendJSONString(t.json, t.cipher)
	if len(t.sni) > 0 {
		t.json = append(t.json, `,"client":{"server_name":`...)
		t.json = appendJSONBytes(t.json, t.sni)
		t.json = append(t.json, '}')
	}
	if t.alpn != "" {
		t.json = append(t.json, `,"next_protocol":`...)
		t.json = appendJSONString(t.json, t.alpn)
	}
	t.json = append(t.json, '}')
	for _, f := range []struct {
		num protowire.Number
		v   []byte
	}{{fieldTLSVersion, []byte(t.version)}, {fieldTLSCipher, []byte(t.cipher)}, {fieldTLSSNI, t.sni}, {fieldTLSALPN, []byte(t.alpn)}} {
		if len(f.v) > 0 {
			t.proto = protowire.AppendTag(t.proto, f.num, protowire.BytesType)
			t.proto = protowire.AppendBytes(t.proto, f.v)
		}
	}
	return t
}

// tlsVersionName writes a TLS version as upstream's protocol field does
// ("TLS1.2").
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return "TLS"
}

// protocolName is r's protocol field: upstream's, with the TLS version
// of an HTTPS request ("HTTPS-TLS1.3", HTTP/2 streams included: JSON's
// http.version tells them apart).
func (r *Record) protocolName() string {
	if r.TLS != nil && (r.Protocol == HTTPS || r.Protocol == H2) {
		return r.TLS.protocol
	}
	return r.Protocol.String()
}
