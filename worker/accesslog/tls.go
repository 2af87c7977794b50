package accesslog

import (
	"crypto/tls"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sozu-go/sozu/worker/logmask"
)

// TLSInfo is what the records of a TLS connection show of its handshake:
// made once per connection (NewTLSInfo), shared by its requests, never
// changed.
type TLSInfo struct {
	json  []byte // `,"tls":{…}`: ECS's tls fields
	proto []byte // ProtobufAccessLog's fields tls_version to tls_alpn
}

// NewTLSInfo returns the TLSInfo of a handshake's result: upstream's
// tls_version label ("TLSv1.3"; none for a version it has no label for),
// its tls_cipher label (TLS13_AES_128_GCM_SHA256, else
// tls.CipherSuiteName), the server name the client asked for, lowercased,
// PANs masked, bytes that are not UTF-8 as U+FFFD and cut to
// maxCutField bytes (tls_sni; crypto/tls takes any bytes there), and the
// protocol ALPN selected (tls_alpn).
func NewTLSInfo(st *tls.ConnectionState) *TLSInfo {
	version, cipher := tlsVersionLabel(st.Version), cipherLabel(st.CipherSuite)
	sni, alpn := cutValue(validUTF8(logmask.AppendPANMasked(nil, asciiLower(st.ServerName)), 0)), st.NegotiatedProtocol
	t := &TLSInfo{}
	t.json = append(t.json, `,"tls":{`...)
	if ecs := strings.TrimPrefix(version, "TLSv"); ecs != version {
		t.json = append(t.json, `"version":"`...)
		t.json = append(t.json, ecs...)
		t.json = append(t.json, `",`...)
	}
	t.json = append(t.json, `"version_protocol":"tls","cipher":`...)
	t.json = appendJSONString(t.json, cipher)
	if len(sni) > 0 {
		t.json = append(t.json, `,"client":{"server_name":`...)
		t.json = appendJSONBytes(t.json, sni)
		t.json = append(t.json, '}')
	}
	if alpn != "" {
		t.json = append(t.json, `,"next_protocol":`...)
		t.json = appendJSONString(t.json, alpn)
	}
	t.json = append(t.json, '}')
	for _, f := range []struct {
		num protowire.Number
		v   []byte
	}{{fieldTLSVersion, []byte(version)}, {fieldTLSCipher, []byte(cipher)}, {fieldTLSSNI, sni}, {fieldTLSALPN, []byte(alpn)}} {
		if len(f.v) > 0 {
			t.proto = protowire.AppendTag(t.proto, f.num, protowire.BytesType)
			t.proto = protowire.AppendBytes(t.proto, f.v)
		}
	}
	return t
}

// tlsVersionLabel is upstream's tls_version for a version
// (rustls_version_label): "TLSv1.3"; "" (the field left out) for one it
// has no label for.
func tlsVersionLabel(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1.0"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}

// cipherLabel is upstream's tls_cipher for a cipher suite
// (rustls_ciphersuite_label, rustls's names): a TLS 1.3 suite is
// "TLS13_…" there, the TLS 1.2 ECDHE suites are named as Go names them.
// A suite rustls lacks (CBC, RSA key exchange) keeps Go's name: upstream
// cannot negotiate it.
func cipherLabel(id uint16) string {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return "TLS13_AES_128_GCM_SHA256"
	case tls.TLS_AES_256_GCM_SHA384:
		return "TLS13_AES_256_GCM_SHA384"
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return "TLS13_CHACHA20_POLY1305_SHA256"
	}
	return tls.CipherSuiteName(id)
}

// asciiLower returns s with its ASCII letters lowercased, as upstream
// stores the SNI (to_ascii_lowercase).
func asciiLower(s string) []byte {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}
