package audit

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/redact"
)

// SetRequest fills r's Verb, Target, ClusterID, BackendID and the
// request's fingerprints (Extras.RequestSHA256, CertSHA256, KeySHA256) from
// req. It is the only way request content should reach a record: it copies
// identifiers (cluster, backend, hostname, path, address, certificate
// names, state file path), never secrets or bulk content: no PEM (keys and
// certificates become fingerprints), no authorized_hashes, no headers
// (they may carry Authorization or Cookie values), no custom answers, no
// tags. A nil req sets the verb to VerbRequestEmpty.
func (r *Record) SetRequest(req *command.Request) {
	r.Verb = VerbOf(req)
	r.Extras.RequestSHA256 = RequestSHA256(req)
	switch v := req.GetRequestType().(type) {
	case *command.Request_AddCluster:
		r.ClusterID = v.AddCluster.GetClusterId()
		r.Target = "cluster " + r.ClusterID
	case *command.Request_RemoveCluster:
		r.ClusterID = v.RemoveCluster
		r.Target = "cluster " + r.ClusterID
	case *command.Request_AddHttpFrontend:
		r.httpFrontend("http", v.AddHttpFrontend)
	case *command.Request_RemoveHttpFrontend:
		r.httpFrontend("http", v.RemoveHttpFrontend)
	case *command.Request_AddHttpsFrontend:
		r.httpFrontend("https", v.AddHttpsFrontend)
	case *command.Request_RemoveHttpsFrontend:
		r.httpFrontend("https", v.RemoveHttpsFrontend)
	case *command.Request_AddTcpFrontend:
		r.ClusterID = v.AddTcpFrontend.GetClusterId()
		r.Target = "tcp frontend on " + v.AddTcpFrontend.GetAddress().Display() + " for cluster " + r.ClusterID
	case *command.Request_RemoveTcpFrontend:
		r.ClusterID = v.RemoveTcpFrontend.GetClusterId()
		r.Target = "tcp frontend on " + v.RemoveTcpFrontend.GetAddress().Display() + " for cluster " + r.ClusterID
	case *command.Request_AddUdpFrontend:
		r.ClusterID = v.AddUdpFrontend.GetClusterId()
		r.Target = "udp frontend on " + v.AddUdpFrontend.GetAddress().Display() + " for cluster " + r.ClusterID
	case *command.Request_RemoveUdpFrontend:
		r.ClusterID = v.RemoveUdpFrontend.GetClusterId()
		r.Target = "udp frontend on " + v.RemoveUdpFrontend.GetAddress().Display() + " for cluster " + r.ClusterID
	case *command.Request_AddBackend:
		b := v.AddBackend
		r.ClusterID, r.BackendID = b.GetClusterId(), b.GetBackendId()
		r.Target = fmt.Sprintf("backend %s at %s in cluster %s", r.BackendID, b.GetAddress().Display(), r.ClusterID)
		if b.GetBackup() {
			r.Target += " (backup)"
		}
	case *command.Request_RemoveBackend:
		b := v.RemoveBackend
		r.ClusterID, r.BackendID = b.GetClusterId(), b.GetBackendId()
		r.Target = fmt.Sprintf("backend %s at %s in cluster %s", r.BackendID, b.GetAddress().Display(), r.ClusterID)
	case *command.Request_AddCertificate:
		c := v.AddCertificate
		r.Target = "certificate on " + c.GetAddress().Display() + names(c.GetCertificate().GetNames())
		r.fingerprints(c.GetCertificate().GetCertificate(), c.GetCertificate().GetKey())
	case *command.Request_ReplaceCertificate:
		c := v.ReplaceCertificate
		r.Target = "certificate on " + c.GetAddress().Display() + names(c.GetNewCertificate().GetNames()) +
			" replacing " + c.GetOldFingerprint()
		r.fingerprints(c.GetNewCertificate().GetCertificate(), c.GetNewCertificate().GetKey())
	case *command.Request_RemoveCertificate:
		c := v.RemoveCertificate
		r.Target = "certificate " + c.GetFingerprint() + " on " + c.GetAddress().Display()
	case *command.Request_AddHttpListener:
		r.Target = "http listener " + v.AddHttpListener.GetAddress().Display()
	case *command.Request_AddHttpsListener:
		l := v.AddHttpsListener
		r.Target = "https listener " + l.GetAddress().Display()
		r.fingerprints(l.GetCertificate(), l.GetKey())
	case *command.Request_AddTcpListener:
		r.Target = "tcp listener " + v.AddTcpListener.GetAddress().Display()
	case *command.Request_AddUdpListener:
		r.Target = "udp listener " + v.AddUdpListener.GetAddress().Display()
	case *command.Request_UpdateHttpListener:
		r.Target = "http listener " + v.UpdateHttpListener.GetAddress().Display()
	case *command.Request_UpdateHttpsListener:
		r.Target = "https listener " + v.UpdateHttpsListener.GetAddress().Display()
	case *command.Request_UpdateTcpListener:
		r.Target = "tcp listener " + v.UpdateTcpListener.GetAddress().Display()
	case *command.Request_UpdateUdpListener:
		r.Target = "udp listener " + v.UpdateUdpListener.GetAddress().Display()
	case *command.Request_RemoveListener:
		r.Target = listener(v.RemoveListener.GetProxy(), v.RemoveListener.GetAddress())
	case *command.Request_ActivateListener:
		r.Target = listener(v.ActivateListener.GetProxy(), v.ActivateListener.GetAddress())
	case *command.Request_DeactivateListener:
		r.Target = listener(v.DeactivateListener.GetProxy(), v.DeactivateListener.GetAddress())
	case *command.Request_SaveState:
		r.Target = "state file " + v.SaveState
	case *command.Request_LoadState:
		r.Target = "state file " + v.LoadState
	case *command.Request_ReloadConfiguration:
		r.Target = "configuration " + v.ReloadConfiguration
	case *command.Request_LaunchWorker:
		r.Target = "worker " + v.LaunchWorker
	case *command.Request_UpgradeWorker:
		r.Target = "worker " + strconv.FormatUint(uint64(v.UpgradeWorker), 10)
	case *command.Request_QueryClusterById:
		r.ClusterID = v.QueryClusterById
		r.Target = "cluster " + r.ClusterID
	case *command.Request_QueryClustersByDomain:
		r.Target = "hostname " + v.QueryClustersByDomain.GetHostname()
		if p := v.QueryClustersByDomain.Path; p != nil {
			r.Target += " path " + *p
		}
	case *command.Request_Logging:
		r.Target = "log level " + v.Logging
	case *command.Request_SetMaxConnectionsPerIp:
		r.Target = "max connections per ip " + strconv.FormatUint(v.SetMaxConnectionsPerIp, 10)
	case *command.Request_ConfigureMetrics:
		r.Target = "metrics " + strings.ToLower(v.ConfigureMetrics.String())
	case *command.Request_SetHealthCheck:
		r.ClusterID = v.SetHealthCheck.GetClusterId()
		r.Target = "health check " + v.SetHealthCheck.GetConfig().GetUri() + " for cluster " + r.ClusterID
	case *command.Request_RemoveHealthCheck:
		r.ClusterID = v.RemoveHealthCheck
		r.Target = "health check for cluster " + r.ClusterID
	case *command.Request_QueryHealthChecks:
		if id := v.QueryHealthChecks.ClusterId; id != nil {
			r.ClusterID = *id
			r.Target = "health check for cluster " + r.ClusterID
		}
	case *command.Request_QueryCertificatesFromTheState:
		r.Target = certFilter(v.QueryCertificatesFromTheState)
	case *command.Request_QueryCertificatesFromWorkers:
		r.Target = certFilter(v.QueryCertificatesFromWorkers)
	}
}

// SetRequestAs fills the fields SetRequest fills from from, a record
// SetRequest filled for the same request: the completion record of a
// request whose attempt record holds them, without marshalling, redacting
// and hashing the request again (for a frame of certificates, each pass
// costs some twice the frame in memory).
func (r *Record) SetRequestAs(from *Record) {
	r.Verb, r.Target, r.ClusterID, r.BackendID = from.Verb, from.Target, from.ClusterID, from.BackendID
	r.Extras.RequestSHA256, r.Extras.CertSHA256, r.Extras.KeySHA256 = from.Extras.RequestSHA256, from.Extras.CertSHA256, from.Extras.KeySHA256
}

func (r *Record) httpFrontend(proto string, f *command.RequestHttpFrontend) {
	r.ClusterID = f.GetClusterId()
	var b strings.Builder
	fmt.Fprintf(&b, "%s frontend %s %s:%s", proto, f.GetHostname(), strings.ToLower(f.GetPath().GetKind().String()), f.GetPath().GetValue())
	if f.Method != nil {
		b.WriteString(" method " + f.GetMethod())
	}
	b.WriteString(" on " + f.GetAddress().Display())
	if f.ClusterId != nil {
		b.WriteString(" for cluster " + r.ClusterID)
	} else {
		b.WriteString(" (no cluster: " + strings.ToLower(f.GetRedirect().String()) + ")")
	}
	r.Target = b.String()
}

func listener(kind command.ListenerType, addr *command.SocketAddress) string {
	return strings.ToLower(kind.String()) + " listener " + addr.Display()
}

func names(ns []string) string {
	if len(ns) == 0 {
		return ""
	}
	return " for " + strings.Join(ns, " ")
}

func certFilter(f *command.QueryCertificatesFilters) string {
	switch {
	case f.GetFingerprint() != "":
		return "certificate " + f.GetFingerprint()
	case f.GetDomain() != "":
		return "certificates for " + f.GetDomain()
	}
	return ""
}

// fingerprints sets the certificate and key fingerprints, when present.
func (r *Record) fingerprints(certPEM, keyPEM string) {
	if certPEM != "" {
		r.Extras.CertSHA256 = CertFingerprint(certPEM)
	}
	if keyPEM != "" {
		r.Extras.KeySHA256 = KeyFingerprint(keyPEM)
	}
}

// RequestSHA256 returns the first 16 hex digits of the SHA-256 of the
// deterministic protobuf encoding of req as the command socket would show
// it (redact.Message: private keys cleared, basic-auth hashes and header
// values "<redacted>", PEM key blocks removed): enough to match a record
// with a request kept elsewhere. Over the secrets themselves, it would be
// an offline oracle for them: whoever reads the audit files and can
// rebuild the rest of a request (a read-only peer, from its answers) could
// test guessed passwords against it. Requests that differ only in a
// secret value get the same fingerprint; key_sha256 tells keys apart.
// "" for nil.
func RequestSHA256(req *command.Request) string {
	if req == nil {
		return ""
	}
	b, err := proto.MarshalOptions{Deterministic: true, AllowPartial: true}.Marshal(redact.Message(req))
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// CertFingerprint returns the SHA-256 (hex) of the DER of the first
// CERTIFICATE block of certPEM — upstream's certificate fingerprint — or,
// when there is none, of the field's bytes as they are (so that a
// malformed field still gets a fingerprint, and is never copied).
func CertFingerprint(certPEM string) string {
	rest := []byte(certPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			sum := sha256.Sum256(block.Bytes)
			return hex.EncodeToString(sum[:])
		}
	}
	sum := sha256.Sum256([]byte(certPEM))
	return hex.EncodeToString(sum[:])
}

// KeyFingerprint returns the SHA-256 (hex) of the DER SubjectPublicKeyInfo
// of the public half of the private key in keyPEM (PKCS#8, PKCS#1 or SEC 1):
// it identifies the key, matches the certificate's public key, and is
// derived from public data only. "" when no private key can be parsed.
func KeyFingerprint(keyPEM string) string {
	rest := []byte(keyPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return ""
		}
		if !strings.Contains(block.Type, "PRIVATE KEY") {
			continue
		}
		if pub := publicHalf(block.Bytes); pub != nil {
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				return ""
			}
			sum := sha256.Sum256(der)
			return hex.EncodeToString(sum[:])
		}
	}
}

func publicHalf(der []byte) crypto.PublicKey {
	type signer interface{ Public() crypto.PublicKey }
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(signer); ok {
			return s.Public()
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k.Public()
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k.Public()
	}
	return nil
}
