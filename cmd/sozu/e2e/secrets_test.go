package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// nobodyCred is the uid/gid 65534 account (nobody, nogroup), or skips when
// the test cannot act as another user.
func nobodyCred(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to connect as another uid")
	}
	return &syscall.Credential{Uid: 65534, Gid: 65534}
}

// searchableDir is a test directory (and parent) other users may traverse.
func searchableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestAnswersHoldNoSecrets: a certificate file that also holds its private
// key (the HAProxy convention), as a listener's certificate in the TOML
// and in add_certificate, never reaches a client in list_listeners or the
// certificate queries; nor do authorized_hashes or header-edit values in
// the cluster and frontend queries. Checked on the wire, for a read-only
// client (uid 65534) and for root (admin).
func TestAnswersHoldNoSecrets(t *testing.T) {
	cred := nobodyCred(t)
	dir := searchableDir(t)
	ca := newTestCA(t)
	listenerCert, listenerKey := ca.issuePEM(t, nil, nil, "listener.test")
	combined := filepath.Join(dir, "combined.pem")
	if err := os.WriteFile(combined, append(append([]byte{}, listenerCert...), listenerKey...), 0o600); err != nil {
		t.Fatal(err)
	}
	const token = "e2e-bearer-token-4242"
	digest := sha256.Sum256([]byte("hunter2"))
	hash := hex.EncodeToString(digest[:])
	httpsPort := sozutest.FreePort(t)
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", httpsPort)
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, fmt.Sprintf(`command_socket_group = "nogroup"
command_allowed_uids = [0]
command_readonly_uids = [%d]
activate_listeners = true

[[listeners]]
protocol = "https"
address = %[2]q
certificate = %[3]q
key = %[3]q

[clusters.app]
protocol = "http"
authorized_hashes = [ "bob:%[4]s" ]
backends = [ { address = "127.0.0.1:9" } ]

[[clusters.app.frontends]]
address = %[2]q
hostname = "app.test"

[[clusters.app.frontends.headers]]
position = "request"
key = "Authorization"
value = "Bearer %[5]s"
`, cred.Uid, httpsAddr, combined, hash, token))
	p := sozutest.Start(t, dir, cfgPath, sock)

	root := sozutest.Dial(t, sock)
	addedCert, addedKey := ca.issuePEM(t, nil, nil, "added.test")
	root.MustOK(t, &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
		Address: command.NewSocketAddress(netip.MustParseAddrPort(httpsAddr)),
		Certificate: &command.CertificateAndKey{
			Certificate: proto.String(string(addedCert) + string(addedKey)),
			Key:         proto.String(string(addedKey)),
		},
	}}})

	queries := []*command.Request{
		{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}},
		{RequestType: &command.Request_QueryCertificatesFromTheState{QueryCertificatesFromTheState: &command.QueryCertificatesFilters{}}},
		{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: &command.QueryCertificatesFilters{}}},
		{RequestType: &command.Request_QueryClusterById{QueryClusterById: "app"}},
		{RequestType: &command.Request_QueryClustersByDomain{QueryClustersByDomain: &command.QueryClusterByDomain{Hostname: proto.String("app.test")}}},
		{RequestType: &command.Request_ListFrontends{ListFrontends: &command.FrontendFilters{Http: proto.Bool(true), Https: proto.Bool(true), Tcp: proto.Bool(true)}}},
	}
	secrets := map[string]string{"a private key": "PRIVATE KEY", "the password hash": hash, "the bearer token": token}
	for _, who := range []struct {
		name string
		c    *sozutest.Client
	}{{"read-only uid 65534", sozutest.DialAs(t, cred, sock)}, {"root", root}} {
		var all strings.Builder
		for _, q := range queries {
			_, resp := who.c.Do(t, q)
			text := strings.Join(strings.Fields(prototext.Format(resp)), " ") // prototext varies its spacing
			if resp.GetStatus() != command.ResponseStatus_OK {
				t.Errorf("%s: %s: %v %q", who.name, command.VerbName(q), resp.GetStatus(), resp.GetMessage())
			}
			for what, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s: the answer to %s shows %s:\n%s", who.name, command.VerbName(q), what, text)
				}
			}
			all.WriteString(text)
		}
		// What is not secret is still there: both certificates, masked
		// hashes and header values.
		for _, want := range []string{"BEGIN CERTIFICATE", `authorized_hashes: "<redacted>"`, `key: "Authorization"`, `val: "<redacted>"`} {
			if !strings.Contains(all.String(), want) {
				t.Errorf("%s: no %q in the answers:\n%s", who.name, want, all.String())
			}
		}
	}
	if t.Failed() {
		t.Logf("supervisor output:\n%s", p.Out.String())
	}
}
