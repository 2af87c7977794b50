package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// Fingerprints of the fixtures, as `openssl x509 -noout -fingerprint
// -sha256` prints them (lowercased, without colons): computed outside Go.
const (
	shopFP = "78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50"
	apiFP  = "ccf2ba0c7e14f27e5d60f590fe9200f116802fd3f3f295efed5a831d80f14807"
)

const certDir = "testdata/certs/"

// mustRead returns a fixture file's content.
func mustRead(name string) string {
	b, err := os.ReadFile(certDir + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// keyBody is the base64 text of a PEM key: what must never be printed.
func keyBody(t *testing.T, keyPEM string) string {
	t.Helper()
	b, _ := pem.Decode([]byte(keyPEM))
	if b == nil {
		t.Fatal("fixture key without PEM block")
	}
	lines := strings.Split(strings.TrimSpace(keyPEM), "\n")
	return lines[1] // the first line of base64 is enough to recognise it
}

// parseAndLoad runs a command line through parseArgs and the verb's load
// step, as `sozu` does before sending.
func parseAndLoad(t *testing.T, line string, read readFileFunc) (*command.Request, error) {
	t.Helper()
	inv, err := parseArgs(strings.Fields(line))
	if err != nil {
		t.Fatalf("parseArgs(%q): %v", line, err)
	}
	if inv.verb.load == nil {
		return inv.req, nil
	}
	before := proto.Clone(inv.req)
	req, err := inv.verb.load(inv.req, &inv.values, read)
	if !proto.Equal(before, inv.req) {
		t.Errorf("%s: load changed the parsed request", line)
	}
	return req, err
}

// requestJSON is the request as stable, indented JSON, keys redacted.
func requestJSON(t *testing.T, req *command.Request) []byte {
	t.Helper()
	c := proto.Clone(req).(*command.Request)
	markCleared(c.ProtoReflect())
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestCertificateRequestsGolden: command line → request, files read, in
// testdata/requests (private keys shown as <redacted>; they are compared
// with the fixtures here).
func TestCertificateRequestsGolden(t *testing.T) {
	upperShop := strings.ToUpper(shopFP)
	tests := []struct {
		name, line string
		key        string // fixture whose key the request must carry
		fp         string // fingerprint the request must carry
	}{
		{"add", "certificate add --address 127.0.0.1:8443 --certificate " + certDir + "shop.pem --certificate-chain " + certDir + "ca.pem --key " + certDir + "shop.key --tls-versions TLS_V13 --names shop.example.com,www.shop.example.com", "shop.key", ""},
		{"add_fullchain", "certificate add -a [::1]:443 --certificate " + certDir + "shop-fullchain.pem --key " + certDir + "shop.key", "shop.key", ""},
		{"add_combined_file", "certificate add -a 127.0.0.1:443 --certificate COMBINED --key COMBINED", "shop.key", ""},
		{"replace_by_file", "certificate replace -a 127.0.0.1:8443 --new-certificate " + certDir + "api.pem --new-key " + certDir + "api.key --old-certificate " + certDir + "shop.pem", "api.key", shopFP},
		{"replace_by_fingerprint", "certificate replace -a 127.0.0.1:8443 --new-certificate " + certDir + "api.pem --new-certificate-chain " + certDir + "ca.pem --new-key " + certDir + "api.key -f " + upperShop + " --tls-versions TLSv1.2,TLSv1.3", "api.key", shopFP},
		{"remove_by_file", "certificate remove -a 127.0.0.1:8443 --certificate " + certDir + "api.pem", "", apiFP},
		{"remove_by_fingerprint", "certificate remove --address 127.0.0.1:8443 --fingerprint " + apiFP, "", apiFP},
		{"list", "certificate list", "", ""},
		{"list_domain", "certificate list --domain shop.example.com", "", ""},
		{"list_fingerprint_workers", "certificate list -f " + upperShop + " -w", "", shopFP},
	}
	// A certificate-and-key file (haproxy style) given to both flags.
	combined := filepath.Join(t.TempDir(), "combined.pem")
	if err := os.WriteFile(combined, []byte(mustRead("shop.key")+mustRead("shop.pem")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseAndLoad(t, strings.ReplaceAll(tt.line, "COMBINED", combined), os.ReadFile)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := proto.Marshal(req); err != nil {
				t.Fatalf("request does not marshal strictly: %v", err)
			}
			golden(t, "requests/"+tt.name+".json.golden", requestJSON(t, req))

			var ck *command.CertificateAndKey
			var fp string
			switch r := req.GetRequestType().(type) {
			case *command.Request_AddCertificate:
				ck = r.AddCertificate.GetCertificate()
			case *command.Request_ReplaceCertificate:
				ck, fp = r.ReplaceCertificate.GetNewCertificate(), r.ReplaceCertificate.GetOldFingerprint()
			case *command.Request_RemoveCertificate:
				fp = r.RemoveCertificate.GetFingerprint()
			case *command.Request_QueryCertificatesFromTheState:
				fp = r.QueryCertificatesFromTheState.GetFingerprint()
			case *command.Request_QueryCertificatesFromWorkers:
				fp = r.QueryCertificatesFromWorkers.GetFingerprint()
			}
			if fp != tt.fp {
				t.Errorf("fingerprint %q, want %q", fp, tt.fp)
			}
			if tt.key != "" {
				if ck.GetKey() != mustRead(tt.key) {
					t.Errorf("key is not the content of %s:\n%s", tt.key, ck.GetKey())
				}
				if strings.Contains(ck.GetCertificate(), "PRIVATE KEY") || strings.Contains(strings.Join(ck.GetCertificateChain(), ""), "PRIVATE KEY") {
					t.Error("a private key went into a certificate field")
				}
			}
		})
	}
}

// TestCertificateFileErrors: every unusable file is named with its flag,
// never with its content, and is a usage error (permission: exit 77).
func TestCertificateFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	encrypted := write("enc.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")
	legacyEnc := write("legacy.key", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nMIIB\n-----END RSA PRIVATE KEY-----\n")
	badDER := write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	empty := write("empty.pem", "")
	shop, key, missing := certDir+"shop.pem", certDir+"shop.key", filepath.Join(dir, "nope.pem")
	add := "certificate add -a 127.0.0.1:443 "
	tests := []struct {
		line, want string
	}{
		{add + "--certificate " + shop + " --key " + missing, "--key " + missing + ": open: no such file or directory"},
		{add + "--certificate " + missing + " --key " + key, "--certificate " + missing + ": open: no such file or directory"},
		{add + "--certificate " + key + " --key " + key, "--certificate " + key + ": no PEM CERTIFICATE block"},
		{add + "--certificate " + empty + " --key " + key, "--certificate " + empty + ": no PEM CERTIFICATE block"},
		{add + "--certificate " + badDER + " --key " + key, "--certificate " + badDER + ": cannot parse the leaf certificate: "},
		{add + "--certificate " + shop + " --key " + shop, "--key " + shop + ": no PEM PRIVATE KEY block"},
		{add + "--certificate " + shop + " --key " + encrypted, "--key " + encrypted + ": the private key is encrypted; give it unencrypted"},
		{add + "--certificate " + shop + " --key " + legacyEnc, "--key " + legacyEnc + ": the private key is encrypted"},
		{add + "--certificate " + shop + " --certificate-chain " + key + " --key " + key, "--certificate-chain " + key + ": no PEM CERTIFICATE block"},
		{add + "--certificate " + dir + " --key " + key, "--certificate " + dir + ": read: is a directory"},
		{"certificate replace -a 127.0.0.1:443 --new-certificate " + shop + " --new-key " + key + " --old-certificate " + key, "--old-certificate " + key + ": no PEM CERTIFICATE block"},
		{"certificate replace -a 127.0.0.1:443 --new-certificate " + shop + " --new-key " + missing + " --fingerprint " + shopFP, "--new-key " + missing + ": open: no such file or directory"},
		{"certificate remove -a 127.0.0.1:443 --certificate " + missing, "--certificate " + missing + ": open: no such file or directory"},
	}
	body := keyBody(t, mustRead("shop.key"))
	for _, tt := range tests {
		_, err := parseAndLoad(t, tt.line, os.ReadFile)
		var fe *fileError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v (%T), want a *fileError", tt.line, err, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.line, err, tt.want)
		}
		if strings.Contains(err.Error(), body) || strings.Contains(err.Error(), "MIIB") {
			t.Errorf("%s: the error holds file content: %q", tt.line, err)
		}
		if exitCodeFor(err) != exitUsage {
			t.Errorf("%s: exit %d, want %d", tt.line, exitCodeFor(err), exitUsage)
		}
	}

	denied := func(p string) ([]byte, error) {
		if p == key {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
		}
		return os.ReadFile(p)
	}
	_, err := parseAndLoad(t, add+"--certificate "+shop+" --key "+key, denied)
	if err == nil || err.Error() != "--key "+key+": open: permission denied" || exitCodeFor(err) != exitNoPerm {
		t.Errorf("unreadable key: %v, exit %d", err, exitCodeFor(err))
	}
}

// TestRunCertificateFileError: a file error is reported before the
// configuration is even loaded (testApp has none), on stderr, exit 2.
func TestRunCertificateFileError(t *testing.T) {
	a, out, errOut := testApp(t)
	code := a.run([]string{"certificate", "add", "--address", "127.0.0.1:443", "--certificate", certDir + "shop.pem", "--key", "/x/y.pem"})
	if code != exitUsage || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if want := "sozu certificate add: --key /x/y.pem: open: no such file or directory\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
}

// TestRunCertificateAddSendsPEM: the files' content is what reaches the
// socket; the answer (here a FAILURE quoting the key, as a careless peer
// might) is printed without the key, in text and in JSON.
func TestRunCertificateAddSendsPEM(t *testing.T) {
	var mu sync.Mutex
	var got *command.Request
	path := serve(t, func(req *command.Request) []*command.Response {
		mu.Lock()
		got = req
		mu.Unlock()
		return []*command.Response{
			resp(processing, "Processing worker request...", nil),
			resp(failure, "could not dispatch request on the main process state: invalid certificate: bad key "+req.GetAddCertificate().GetCertificate().GetKey(), nil),
		}
	})
	body := keyBody(t, mustRead("shop.key"))
	for _, js := range []bool{false, true} {
		a, out, errOut := testApp(t)
		withSocket(a, path)
		args := []string{"certificate", "add", "--address", "127.0.0.1:8443", "--certificate", certDir + "shop-fullchain.pem", "--key", certDir + "shop.key"}
		if js {
			args = append([]string{"-j"}, args...)
		}
		if code := a.run(args); code != exitFailure {
			t.Errorf("json=%v: exit %d, want %d", js, code, exitFailure)
		}
		mu.Lock()
		ck := got.GetAddCertificate().GetCertificate()
		mu.Unlock()
		if ck.GetKey() != mustRead("shop.key") || ck.GetCertificate() != mustRead("shop.pem") ||
			len(ck.GetCertificateChain()) != 1 || ck.GetCertificateChain()[0] != mustRead("ca.pem") {
			t.Errorf("sent %v", ck)
		}
		printed := out.String() + errOut.String()
		if strings.Contains(printed, body) || strings.Contains(printed, "PRIVATE KEY") {
			t.Errorf("json=%v: the key was printed:\n%s", js, printed)
		}
		if !strings.Contains(printed, "invalid certificate: bad key "+redactedKey) {
			t.Errorf("json=%v: the message is not shown (redacted):\n%s", js, printed)
		}
	}
}

// TestRunCertificateListRedacts: the state's answer holds the keys; the
// CLI prints the certificates without them.
func TestRunCertificateListRedacts(t *testing.T) {
	path := serve(t, func(req *command.Request) []*command.Response {
		if req.GetQueryCertificatesFromTheState() == nil {
			return []*command.Response{resp(failure, "unexpected request", nil)}
		}
		return []*command.Response{resp(ok, "Successfully queried certificates from the state of main process", stateCerts())}
	})
	body := keyBody(t, mustRead("shop.key"))
	for _, args := range [][]string{{"certificate", "list"}, {"-j", "certificate", "list"}} {
		a, out, errOut := testApp(t)
		withSocket(a, path)
		if code := a.run(args); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if strings.Contains(out.String(), body) || strings.Contains(out.String(), "PRIVATE KEY") {
			t.Errorf("%v: the key was printed:\n%s", args, out)
		}
		if !strings.Contains(out.String(), shopFP) || !strings.Contains(out.String(), apiFP) {
			t.Errorf("%v: fingerprints missing:\n%s", args, out)
		}
	}
}

// stateCerts is the state's answer for the shop and api fixtures, keys
// included as the supervisor sends them.
func stateCerts() *command.ResponseContent {
	return &command.ResponseContent{ContentType: &command.ResponseContent_CertificatesWithFingerprints{CertificatesWithFingerprints: &command.CertificatesWithFingerprints{
		Certs: map[string]*command.CertificateAndKey{
			shopFP: {Certificate: ptr(mustRead("shop.pem")), CertificateChain: []string{mustRead("ca.pem")}, Key: ptr(mustRead("shop.key")),
				Names: []string{"shop.example.com", "*.shop.example.com"}},
			apiFP: {Certificate: ptr(mustRead("api.pem")), CertificateChain: []string{}, Key: ptr(mustRead("api.key")),
				Versions: []command.TlsVersion{command.TlsVersion_TLS_V1_3}, Names: []string{"api.example.com"}},
		},
	}}}
}

// TestRedactListenerKey: an HTTPS listener's default key is not printed
// by `listener list` either.
func TestRedactListenerKey(t *testing.T) {
	r := resp(ok, "Successfully listed listeners", &command.ResponseContent{ContentType: &command.ResponseContent_ListenersList{ListenersList: &command.ListenersList{
		HttpsListeners: map[string]*command.HttpsListenerConfig{"0.0.0.0:443": {Address: addr("0.0.0.0:443"), ExpectProxy: ptr(false),
			StickyName: ptr("SOZUBALANCEID"), FrontTimeout: ptr(uint32(60)), BackTimeout: ptr(uint32(30)), ConnectTimeout: ptr(uint32(3)),
			RequestTimeout: ptr(uint32(10)), Active: ptr(true), SendTls13Tickets: ptr(uint64(4)),
			Certificate: ptr(mustRead("shop.pem")), Key: ptr(mustRead("shop.key"))}},
	}}})
	doc, err := renderJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "PRIVATE KEY") || !strings.Contains(string(doc), `"key": "`+redactedKey+`"`) {
		t.Errorf("listener key not redacted:\n%s", doc)
	}
	if r.GetContent().GetListenersList().GetHttpsListeners()["0.0.0.0:443"].GetKey() != mustRead("shop.key") {
		t.Error("rendering changed the response it was given")
	}
}
