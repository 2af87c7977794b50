package supervisor_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// rssOf is the resident memory of process pid, bytes.
func rssOf(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// emptyHeaders is the payload of an add_http_frontend request holding as
// many empty headers (field 15, two bytes each) as fit in size bytes.
func emptyHeaders(size int) []byte {
	inner := bytes.Repeat([]byte{0x7a, 0x00}, (size-8)/2)
	out := []byte{0x7a} // Request.add_http_frontend, field 15
	out = binary.AppendUvarint(out, uint64(len(inner)))
	return append(out, inner...)
}

// sendRaw writes payload as one frame on conn and returns what comes back
// until the supervisor closes the connection.
func sendRaw(t *testing.T, conn net.Conn, payload []byte) []byte {
	t.Helper()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go conn.Write(append(binary.LittleEndian.AppendUint64(nil, uint64(frame.PrefixSize+len(payload))), payload...))
	got, _ := io.ReadAll(conn)
	return got
}

// certChain returns a leaf certificate and key for name, and a chain of n
// copies of its issuer's certificate.
func certChain(t *testing.T, name string, n int) (string, string, []string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	chain := make([]string, n)
	for i := range chain {
		chain[i] = ca
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), chain
}

// TestFrameDecodeCostBounded: a frame that decodes into far more than
// itself (a list of empty headers: 2 bytes on the wire, a struct in
// memory) is refused before it is decoded, for an admin (2 MB frame: it
// cost the supervisor some 110 MB) as for a read-only peer (its 64 KiB
// frames), with a FAILURE naming the field, its count and the limit, and
// an audit record (a peer with no role gets its refusal). The supervisor runs with GOGC=off, so its resident
// memory grows by what it allocates: at most 8 times the frames refused,
// 10 times the costliest frames the bound lets through. A large
// legitimate frame (a certificate with a long chain) is still taken.
func TestFrameDecodeCostBounded(t *testing.T) {
	// What an accepted frame costs is also the work of its verb: each
	// certificate of a chain is parsed as X.509 (to refuse what workers
	// would: 8 times its size), its PEM re-encoded: some 18 times a 2 MB
	// chain of 2 600 certificates (34.7 before the redact, audit and PEM
	// changes).
	const legitFactor = 24
	cred := nobody(t)
	dir := sharedDir(t)
	jsonPath := filepath.Join(dir, "audit.jsonl")
	cfg, sock, _ := writeConfig(t, dir, 1, fmt.Sprintf("command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0]\ncommand_readonly_uids = [%d]\naudit_logs_json_target = %q\n", cred.Uid, jsonPath))
	os.Chmod(cfg, 0o644)
	p := sozutest.StartWith(t, dir, cfg, sock, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "GOGC=off") })
	pid := p.Cmd.Process.Pid
	dial(t, sock).MustOK(t, workersReq)

	// Whether the refusal is bounded is measured only without the race
	// detector, whose shadow memory grows with the heap.
	checkGrowth := func(t *testing.T, what string, before uint64, frames int, factor uint64) {
		t.Helper()
		grew := rssOf(t, pid) - before
		t.Logf("%s: the supervisor's memory grew by %d bytes (%.1f× the %d bytes of frames)", what, grew, float64(grew)/float64(frames), frames)
		if !raceEnabled && grew > factor*uint64(frames) {
			t.Errorf("%s: the supervisor's memory grew by %d bytes, more than %d× the %d bytes of frames", what, grew, factor, frames)
		}
	}
	refused := func(t *testing.T, got []byte, count int) {
		t.Helper()
		want := fmt.Sprintf("field add_http_frontend.headers occurs %d times", count)
		if !bytes.Contains(got, []byte("invalid frame: decoding the ")) || !bytes.Contains(got, []byte(want)) ||
			!bytes.Contains(got, []byte(fmt.Sprintf("(%d × the payload + %d)", frame.CostFactor, frame.CostSlack))) {
			t.Errorf("answer %q lacks the refusal naming the field, %q, and the limit", got, want)
		}
	}

	t.Run("admin, 2 MB", func(t *testing.T) {
		payload := emptyHeaders(frame.DefaultMaxSize - frame.PrefixSize)
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		before := rssOf(t, pid)
		refused(t, sendRaw(t, conn, payload), (len(payload)-4)/2)
		checkGrowth(t, "a refused 2 MB admin frame", before, len(payload), 8)
	})

	t.Run("read-only, 64 KiB frames", func(t *testing.T) {
		payload := emptyHeaders(64<<10 - frame.PrefixSize)
		const n = 10
		conns := make([]*client, n)
		for i := range conns {
			conns[i] = sozutest.DialAs(t, cred, sock)
		}
		before := rssOf(t, pid)
		for _, c := range conns {
			refused(t, sendRaw(t, c.Conn, payload), (len(payload)-3)/2)
		}
		checkGrowth(t, fmt.Sprintf("%d refused 64 KiB read-only frames", n), before, n*len(payload), 8)
	})

	t.Run("no role, 64 KiB frames", func(t *testing.T) {
		// Decoded only to name the verb in the refusal record: bounded
		// the same, and refused for want of a role all the same.
		_, noRole := createUser(t)
		noRole.Groups = []uint32{65534} // nogroup: the socket's group
		payload := emptyHeaders(64<<10 - frame.PrefixSize)
		const n = 10
		conns := make([]*client, n)
		for i := range conns {
			conns[i] = sozutest.DialAs(t, noRole, sock)
		}
		before := rssOf(t, pid)
		for _, c := range conns {
			if got := sendRaw(t, c.Conn, payload); !bytes.Contains(got, []byte("unauthorized")) {
				t.Errorf("answer %q, want the refusal for want of a role", got)
			}
		}
		checkGrowth(t, fmt.Sprintf("%d no-role 64 KiB frames", n), before, n*len(payload), 8)
	})

	waitFor(t, 10*time.Second, "the refusals' audit records", func() bool {
		seen := map[float64]bool{}
		for _, r := range auditLines(t, jsonPath) {
			if r["verb"] == "frame.invalid" && r["error_code"] == "invalid_frame" && strings.Contains(fmt.Sprint(r["reason"]), "add_http_frontend.headers occurs") {
				seen[afield(r, "actor", "uid").(float64)] = true
			}
		}
		return seen[0] && seen[float64(cred.Uid)]
	})

	t.Run("the costliest frames the bound takes", func(t *testing.T) {
		// A 1.9 MB frame: headers holding a value (to be masked, so the
		// audit fingerprint is taken of a redacted copy) as many as the
		// bound takes, the rest a long hostname. The state refuses it
		// (the hostname), after decoding, auditing and validating it.
		c := dial(t, sock)
		for _, k := range []int{0, 16000} {
			hs := make([]*command.Header, k)
			for i := range hs {
				hs[i] = &command.Header{Val: proto.String("a")}
			}
			req := &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
				ClusterId: proto.String("c"), Hostname: proto.String(strings.Repeat("a", 1_900_000-5*k)), Headers: hs}}}
			before := rssOf(t, pid)
			_, r := c.Do(t, req)
			if !strings.Contains(r.GetMessage(), "Invalid value for field 'hostname'") {
				t.Fatalf("%d headers: %q, want the state's refusal of the hostname", k, r.GetMessage())
			}
			checkGrowth(t, fmt.Sprintf("a frame of %d headers, taken and refused by the state", k), before, proto.Size(req), 10)
		}
	})

	t.Run("legitimate: a certificate with a long chain", func(t *testing.T) {
		c := dial(t, sock)
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		sa := command.NewSocketAddress(netip.MustParseAddrPort(addr))
		c.MustOK(t, &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{Address: sa}}})
		leaf, key, one := certChain(t, "chain.example.com", 1)
		_, _, chain := certChain(t, "chain.example.com", (frame.DefaultMaxSize-64<<10)/len(one[0]))
		req := &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{Address: sa,
			Certificate: &command.CertificateAndKey{Certificate: proto.String(leaf), Key: proto.String(key), CertificateChain: chain}}}}
		before := rssOf(t, pid)
		c.MustOK(t, req)
		checkGrowth(t, "an accepted certificate with a long chain", before, proto.Size(req), legitFactor)
	})
}

// TestFanOutEncodesOnce: a request fanned out to 4 workers is encoded
// once, not once per worker. An add_cluster of 1.9 MB (an answer
// template) grows the supervisor (GOGC=off) by about 5 times its size
// with one worker; each worker's own encoding added about one more (8.2
// times with 4 workers; 64 workers, the maximum, would be some 68).
func TestFanOutEncodesOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory grows with the heap")
	}
	dir := sharedDir(t)
	cfg, sock, _ := writeConfig(t, dir, 4, "")
	os.Chmod(cfg, 0o644)
	p := sozutest.StartWith(t, dir, cfg, sock, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "GOGC=off") })
	pid := p.Cmd.Process.Pid
	c := dial(t, sock)
	c.MustOK(t, workersReq)
	body := "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n" + strings.Repeat("<p>down</p>", 170_000)
	req := &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: proto.String("c"),
		Answers: map[string]string{"503": body}}}}
	before := rssOf(t, pid)
	c.MustOK(t, req)
	grew := rssOf(t, pid) - before
	size := proto.Size(req)
	t.Logf("a %d-byte add_cluster to 4 workers: the supervisor's memory grew by %d bytes (%.1f×)", size, grew, float64(grew)/float64(size))
	if grew > 6*uint64(size) {
		t.Errorf("a %d-byte add_cluster to 4 workers grew the supervisor by %d bytes (%.1f×), more than 6×", size, grew, float64(grew)/float64(size))
	}
	// Every worker got it whole: its hash of the cluster is the state's.
	assertAgree(t, hashes(t, c), 4, 1)
}
