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
	"time"

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

// readOnlyAdmission is the admission part of a configuration where root
// is admin and uid, a member of the socket's group nogroup, is read-only.
func readOnlyAdmission(uid uint32) string {
	return fmt.Sprintf("command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0]\ncommand_readonly_uids = [%d]", uid)
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
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, fmt.Sprintf(`%s
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
`, readOnlyAdmission(cred.Uid), httpsAddr, combined, hash, token))
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

// TestSaveStateKeysOnlyForCustodians: an admin that is not root nor in
// state_key_custodian_uids saves a state file (into a directory of its
// own) without any private key, and is told so; root's file, a
// custodian's and the automatic save keep the keys. The keyless file
// loads into a fresh supervisor without its certificates, each skipped
// with a warning naming it.
func TestSaveStateKeysOnlyForCustodians(t *testing.T) {
	cred := nobodyCred(t)
	ca := newTestCA(t)
	// The certificates come over the socket: the CLI run as uid 65534
	// reads the configuration, and must not need the key files for it.
	firstCert, firstKey := ca.issuePEM(t, nil, nil, "first.test")
	addedCert, addedKey := ca.issuePEM(t, nil, nil, "added.test")
	start := func(t *testing.T, custodians string) (*sozutest.Proxy, string) {
		d := searchableDir(t)
		httpsAddr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
		cfgPath, sock, _ := sozutest.WriteConfig(t, d, 1, fmt.Sprintf(`command_socket_group = "nogroup"
command_allowed_uids = [0, %d]
saved_state = "autosaved.json"
automatic_state_save = true
audit_logs_json_target = "audit.json"
%s

[[listeners]]
protocol = "https"
address = %q
`, cred.Uid, custodians, httpsAddr))
		if err := os.Chmod(cfgPath, 0o644); err != nil {
			t.Fatal(err)
		}
		return sozutest.Start(t, d, cfgPath, sock), httpsAddr
	}
	// own is a directory of uid 65534's, where it saves.
	own := func(t *testing.T) string {
		d := filepath.Join(searchableDir(t), "nobody")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	read := func(t *testing.T, path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	addCerts := func(t *testing.T, p *sozutest.Proxy, httpsAddr string) {
		c := sozutest.Dial(t, p.Sock)
		for _, pair := range [][2][]byte{{firstCert, firstKey}, {addedCert, addedKey}} {
			c.MustOK(t, &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
				Address:     command.NewSocketAddress(netip.MustParseAddrPort(httpsAddr)),
				Certificate: &command.CertificateAndKey{Certificate: proto.String(string(pair[0])), Key: proto.String(string(pair[1]))},
			}}})
		}
	}
	p, httpsAddr := start(t, "")
	addCerts(t, p, httpsAddr)
	// And an inactive HTTPS listener with a default certificate.
	spareAddr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sozutest.Dial(t, p.Sock).MustOK(t, &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{
		Address:     command.NewSocketAddress(netip.MustParseAddrPort(spareAddr)),
		Certificate: proto.String(string(firstCert)),
		Key:         proto.String(string(firstKey)),
	}}})

	keyless := filepath.Join(own(t), "state.json")
	out, errOut, code := p.CLIAs(cred, "state", "save", "--file", keyless)
	if code != 0 || !strings.Contains(out+errOut, "private keys omitted from 3 records: uid 65534 is not root nor in state_key_custodian_uids") {
		t.Errorf("admin uid 65534 save: exit %d\n%s%s", code, out, errOut)
	}
	if text := read(t, keyless); strings.Contains(text, "PRIVATE KEY") || !strings.Contains(text, "BEGIN CERTIFICATE") {
		t.Errorf("uid 65534's state file:\n%s", text)
	}
	if text := read(t, filepath.Join(p.Dir, "audit.json")); !strings.Contains(text, `"reason":"private keys omitted from 3 records"`) {
		t.Errorf("no audit record says the keys were omitted:\n%s", text)
	}

	rootFile := filepath.Join(t.TempDir(), "root.json")
	p.MustCLI("state", "save", "--file", rootFile)
	if text := read(t, rootFile); strings.Count(text, "BEGIN PRIVATE KEY") != 3 {
		t.Errorf("root's state file has %d private keys, want 3", strings.Count(text, "BEGIN PRIVATE KEY"))
	}
	if text := read(t, filepath.Join(p.Dir, "autosaved.json")); strings.Count(text, "BEGIN PRIVATE KEY") != 3 {
		t.Errorf("the automatic save has %d private keys, want 3", strings.Count(text, "BEGIN PRIVATE KEY"))
	}

	t.Run("custodian", func(t *testing.T) {
		p, httpsAddr := start(t, fmt.Sprintf("state_key_custodian_uids = [%d]", cred.Uid))
		addCerts(t, p, httpsAddr)
		file := filepath.Join(own(t), "state.json")
		if out, errOut, code := p.CLIAs(cred, "state", "save", "--file", file); code != 0 || strings.Contains(out+errOut, "omitted") {
			t.Errorf("custodian save: exit %d\n%s%s", code, out, errOut)
		}
		if text := read(t, file); !strings.Contains(text, "BEGIN PRIVATE KEY") {
			t.Errorf("the custodian's state file has no private key")
		}
	})

	t.Run("keyless file loads", func(t *testing.T) {
		q, _ := start(t, "")
		out, errOut, code := q.CLI("state", "load", "--file", keyless)
		t.Logf("load: exit %d\n%s%s", code, out, errOut)
		sozutest.WaitFor(t, 5*time.Second, "a warning naming the keyless certificate", func() bool {
			return strings.Contains(q.Out.String(), "certificate [added.test] on "+httpsAddr+": no private key")
		})
		sozutest.WaitFor(t, 5*time.Second, "a warning naming the keyless listener", func() bool {
			return strings.Contains(q.Out.String(), "HTTPS listener "+spareAddr+": default certificate has no private key")
		})
		if !q.Alive() {
			t.Fatal("the supervisor died loading a keyless state file")
		}
		_, resp := sozutest.Dial(t, q.Sock).Do(t, &command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}})
		l := resp.GetContent().GetListenersList().GetHttpsListeners()[spareAddr]
		if l == nil || l.Certificate != nil {
			t.Errorf("the keyless listener %s: %v", spareAddr, l)
		}
		q.MustCLI("status")
	})
}
