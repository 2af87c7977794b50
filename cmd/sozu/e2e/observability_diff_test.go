package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ulidpkg "github.com/oklog/ulid/v2"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// obsRecord is an access record reduced to what every format carries,
// decoded from ascii, protobuf or JSON, so that the three can be compared.
type obsRecord struct {
	Protocol          string
	Session, Request  string // ULIDs
	Cluster, Backend  string
	Client, BackAddr  string
	Method, Host      string
	Target            string
	Status            int
	BytesIn, BytesOut int64
	// Times, in ns, with the resolution of the format (ascii: the unit it
	// writes; protobuf: µs).
	ReqTime, SvcTime, RespTime time.Duration
	HasRespTime                bool
	UA                         string
	Tags                       map[string]string
	Worker                     string // the ascii/protobuf tag (JSON has none)
	Outcome                    string // ascii: its level; JSON: event.outcome ("failure", "success"); protobuf: none
	Listener                   string // JSON only
}

// asciiRecordRE splits an ascii access line into its fields.
var asciiRecordRE = regexp.MustCompile(`^\S+ (\d+) \d+ (?:INFO|ERROR)-ACCESS\s+(\S+)\t\[(\S+) (\S+) (\S+) (\S+)\] (\S+) (\S+) (\S+)/(\S+)/(\S+)/-/- (\d+) (\d+) \[(.*)\] None (\S+) (.*)$`)

func parseASCIIDuration(t *testing.T, s string) (time.Duration, bool) {
	t.Helper()
	if s == "-" {
		return 0, false
	}
	for _, u := range []struct {
		suf string
		d   time.Duration
	}{{"ns", time.Nanosecond}, {"μs", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("duration %q: %v", s, err)
			}
			return time.Duration(n) * u.d, true
		}
	}
	t.Fatalf("duration %q has no unit", s)
	return 0, false
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func parseASCIIRecord(t *testing.T, line string) obsRecord {
	t.Helper()
	m := asciiRecordRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("ascii record does not parse: %q", line)
	}
	outcome := "success"
	if tab := strings.IndexByte(line, '\t'); tab > 0 && strings.Contains(line[:tab], "ERROR-ACCESS") {
		outcome = "failure"
	}
	r := obsRecord{Outcome: outcome, Worker: m[2], Session: m[3], Request: dash(m[4]), Cluster: dash(m[5]), Backend: dash(m[6]),
		Client: dash(m[7]), BackAddr: dash(m[8]), Protocol: m[15], Tags: map[string]string{}}
	r.ReqTime, _ = parseASCIIDuration(t, m[9])
	r.SvcTime, _ = parseASCIIDuration(t, m[10])
	r.RespTime, r.HasRespTime = parseASCIIDuration(t, m[11])
	r.BytesIn, _ = strconv.ParseInt(m[12], 10, 64)
	r.BytesOut, _ = strconv.ParseInt(m[13], 10, 64)
	if m[14] != "" {
		for _, kv := range strings.Split(m[14], ", ") {
			k, v, _ := strings.Cut(kv, "=")
			if k == "user-agent" {
				r.UA = strings.ReplaceAll(v, "_", " ")
				continue
			}
			r.Tags[k] = v
		}
	}
	if r.Protocol == "TCP" || r.Protocol == "UDP" {
		return r
	}
	f := strings.Split(m[16], " ")
	if len(f) != 4 {
		t.Fatalf("ascii endpoint %q", m[16])
	}
	r.Host, r.Method, r.Target = dash(f[0]), dash(f[1]), dash(f[2])
	if f[3] != "-" {
		r.Status, _ = strconv.Atoi(f[3])
	}
	return r
}

func ulidOfUint128(u *command.Uint128) string {
	if u == nil {
		return ""
	}
	var id ulidpkg.ULID
	binary.BigEndian.PutUint64(id[:8], u.GetLow())
	binary.BigEndian.PutUint64(id[8:], u.GetHigh())
	return id.String()
}

func socketAddr(a *command.SocketAddress) string {
	if a == nil {
		return ""
	}
	var ip netip.Addr
	if a.GetIp().GetV4() != 0 || a.GetIp().GetV6() == nil {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], a.GetIp().GetV4())
		ip = netip.AddrFrom4(b)
	} else {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], a.GetIp().GetV6().GetHigh())
		binary.BigEndian.PutUint64(b[8:], a.GetIp().GetV6().GetLow())
		ip = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(ip, uint16(a.GetPort())).String()
}

func protobufRecord(m *command.ProtobufAccessLog) obsRecord {
	r := obsRecord{Protocol: m.GetProtocol(), Session: ulidOfUint128(m.GetSessionId()), Request: ulidOfUint128(m.GetRequestId()),
		Cluster: m.GetClusterId(), Backend: m.GetBackendId(), Client: socketAddr(m.GetSessionAddress()), BackAddr: socketAddr(m.GetBackendAddress()),
		BytesIn: int64(m.GetBytesIn()), BytesOut: int64(m.GetBytesOut()), UA: m.GetUserAgent(), Tags: map[string]string{}, Worker: m.GetTag(),
		ReqTime: time.Duration(m.GetRequestTime()) * time.Microsecond, SvcTime: time.Duration(m.GetServiceTime()) * time.Microsecond}
	if m.ResponseTime != nil {
		r.RespTime, r.HasRespTime = time.Duration(m.GetResponseTime())*time.Microsecond, true
	}
	for k, v := range m.GetTags() {
		r.Tags[k] = v
	}
	if h := m.GetEndpoint().GetHttp(); h != nil {
		r.Method, r.Host, r.Target, r.Status = h.GetMethod(), h.GetAuthority(), h.GetPath(), int(h.GetStatus())
	}
	return r
}

func parseProtobufRecords(t *testing.T, b []byte) []obsRecord {
	t.Helper()
	var out []obsRecord
	rd := bufio.NewReader(bytes.NewReader(b))
	for {
		m := &command.ProtobufAccessLog{}
		if err := protodelim.UnmarshalFrom(rd, m); err != nil {
			if err != io.EOF {
				t.Fatalf("protobuf record: %v", err)
			}
			return out
		}
		var zero [2]byte
		if _, err := io.ReadFull(rd, zero[:]); err != nil || zero != [2]byte{} {
			t.Fatalf("a record is not followed by two zero bytes: %v %v", zero, err)
		}
		out = append(out, protobufRecord(m))
	}
}

// jsonRecord is the part of an ECS JSON record obsRecord needs.
type jsonRecord struct {
	Timestamp time.Time `json:"@timestamp"`
	Event     struct {
		Start    time.Time `json:"start"`
		Duration int64     `json:"duration"`
		Outcome  string    `json:"outcome"`
	} `json:"event"`
	Trace struct {
		ID string `json:"id"`
	} `json:"trace"`
	Source, Destination struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	}
	HTTP *struct {
		Request struct {
			Method string `json:"method"`
			Bytes  int64  `json:"bytes"`
		} `json:"request"`
		Response struct {
			StatusCode int   `json:"status_code"`
			Bytes      int64 `json:"bytes"`
		} `json:"response"`
	} `json:"http"`
	URL struct {
		Domain string  `json:"domain"`
		Port   *int    `json:"port"`
		Path   string  `json:"path"`
		Query  *string `json:"query"`
	} `json:"url"`
	UserAgent struct {
		Original string `json:"original"`
	} `json:"user_agent"`
	Labels map[string]string `json:"labels"`
	Sozu   struct {
		SessionID    string `json:"session_id"`
		Listener     string `json:"listener"`
		Protocol     string `json:"protocol"`
		ClusterID    string `json:"cluster_id"`
		BackendID    string `json:"backend_id"`
		ServiceTime  int64  `json:"service_time"`
		ResponseTime *int64 `json:"response_time"`
		BytesIn      int64  `json:"bytes_in"`
		BytesOut     int64  `json:"bytes_out"`
	} `json:"sozu"`
}

func parseJSONRecord(t *testing.T, line string) obsRecord {
	t.Helper()
	var j jsonRecord
	if err := json.Unmarshal([]byte(line), &j); err != nil {
		t.Fatalf("JSON record %q: %v", line, err)
	}
	addr := func(ip string, port int) string {
		if ip == "" {
			return ""
		}
		return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)).String()
	}
	r := obsRecord{Outcome: j.Event.Outcome, Listener: j.Sozu.Listener, Protocol: j.Sozu.Protocol, Session: j.Sozu.SessionID, Request: j.Trace.ID, Cluster: j.Sozu.ClusterID, Backend: j.Sozu.BackendID,
		Client: addr(j.Source.IP, j.Source.Port), BackAddr: addr(j.Destination.IP, j.Destination.Port), UA: j.UserAgent.Original,
		Tags: map[string]string{}, ReqTime: time.Duration(j.Event.Duration), SvcTime: time.Duration(j.Sozu.ServiceTime),
		BytesIn: j.Sozu.BytesIn, BytesOut: j.Sozu.BytesOut}
	if j.Sozu.ResponseTime != nil {
		r.RespTime, r.HasRespTime = time.Duration(*j.Sozu.ResponseTime), true
	}
	for k, v := range j.Labels {
		r.Tags[k] = v
	}
	if j.HTTP != nil {
		r.Method, r.Status = j.HTTP.Request.Method, j.HTTP.Response.StatusCode
		r.BytesIn, r.BytesOut = j.HTTP.Request.Bytes, j.HTTP.Response.Bytes
		r.Host = j.URL.Domain
		if j.URL.Port != nil {
			r.Host += ":" + strconv.Itoa(*j.URL.Port)
		}
		r.Target = j.URL.Path
		if j.URL.Query != nil {
			r.Target += "?" + *j.URL.Query
		}
	}
	if got := j.Timestamp.Sub(j.Event.Start); got != time.Duration(j.Event.Duration) {
		t.Errorf("JSON record %s: @timestamp - event.start = %v, event.duration = %v", r.Request, got, time.Duration(j.Event.Duration))
	}
	return r
}

// obsRig is the proxy the consistency test drives: two workers, an HTTP,
// an HTTPS and a TCP listener, clusters with tagged frontends.
type obsRig struct {
	p                      *sozutest.Proxy
	dir, sock              string
	http, https, tcp, prom string
	access                 string
	caPool                 *x509.CertPool
	statsd                 *statsdSink
	origin, bad, echo, ws  string
	echoOrigin             *rawOrigin
	h2                     *http.Client // one HTTP/2 connection to the HTTPS listener
	h2client               string       // its local address
	h2conn                 net.Conn     // and the connection itself
	// ids the origin saw in Sozu-Id, by path.
	mu  sync.Mutex
	ids map[string]string
}

func startObsRig(t *testing.T, format string) *obsRig {
	t.Helper()
	r := &obsRig{dir: t.TempDir(), http: freeAddr(t), https: freeAddr(t), tcp: freeAddr(t), prom: freeAddr(t), ids: map[string]string{}}
	r.sock = filepath.Join(r.dir, "sozu.sock")
	r.access = filepath.Join(r.dir, "access.log")
	ca := newTestCA(t)
	r.caPool = x509.NewCertPool()
	r.caPool.AddCert(ca.cert)
	cp, kp := ca.issuePEM(t, nil, nil, "shop.test", "other.test", "secure.test")
	certPath, keyPath := filepath.Join(r.dir, "c.pem"), filepath.Join(r.dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	o := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// A request its client leaves mid-body (a "got" query: the bytes
		// the client sends before it leaves) is noted once they came.
		got, _ := strconv.Atoi(req.URL.Query().Get("got"))
		io.ReadFull(req.Body, make([]byte, got))
		r.mu.Lock()
		r.ids[req.URL.Path] = req.Header.Get("Sozu-Id")
		r.mu.Unlock()
		body, _ := io.ReadAll(req.Body)
		if strings.HasPrefix(req.URL.Path, "/slow") {
			time.Sleep(1500 * time.Millisecond) // the scenario: longer than back_timeout
		}
		if strings.HasPrefix(req.URL.Path, "/pan/") {
			w.Header().Set("Set-Cookie", "sid="+obsSecret) // never logged either
		}
		n, _ := strconv.Atoi(req.URL.Query().Get("n"))
		fmt.Fprintf(w, "%d:%s", len(body), strings.Repeat("x", n))
	}))
	r.origin = o.addr
	r.bad = startRawOrigin(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 2OO OK\r\n\r\n")
	}).addr
	r.echoOrigin = startRawOrigin(t, tcpEcho)
	r.echo = r.echoOrigin.addr
	r.ws = startRawOrigin(t, wsEcho).addr
	r.statsd = startStatsdSink(t)
	r.statsd.conn.SetReadBuffer(4 << 20) // three proxies' flushes at once: lose none
	digest := sha256.Sum256([]byte("s3cret"))
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 2
worker_timeout = 10
activate_listeners = true
log_level = "debug"
access_logs_target = "file://%[2]s"
access_logs_format = %[3]q
audit_logs_target = "%[2]s.audit"

[metrics]
address = %[4]q
prometheus_address = %[5]q
detail = "backend"

[[listeners]]
protocol = "http"
address = %[6]q
back_timeout = 1

[[listeners]]
protocol = "https"
address = %[7]q
certificate = %[8]q
key = %[9]q
back_timeout = 1

[[listeners]]
protocol = "tcp"
address = %[10]q

[clusters.shop]
protocol = "http"
backends = [ { backend_id = "shop-0", address = %[11]q } ]
frontends = [
  { address = %[6]q, hostname = "shop.test", tags = { team = "pay", env = "test" } },
  { address = %[7]q, hostname = "shop.test", tags = { team = "pay", env = "tls" } },
  { address = %[6]q, hostname = "old.test", redirect = "permanent", tags = { team = "old" } },
]

[clusters.secure]
protocol = "http"
authorized_hashes = [ "bob:%[12]s" ]
backends = [ { backend_id = "secure-0", address = %[11]q } ]
frontends = [ { address = %[6]q, hostname = "secure.test", required_auth = true, tags = { team = "sec" } } ]

[clusters.broken]
protocol = "http"
backends = [ { backend_id = "broken-0", address = %[13]q } ]
frontends = [ { address = %[6]q, hostname = "broken.test", tags = { team = "broken" } } ]

[clusters.empty]
protocol = "http"
frontends = [ { address = %[6]q, hostname = "empty.test", tags = { team = "empty" } } ]

[clusters.dead]
protocol = "http"
backends = [ { backend_id = "dead-0", address = %[15]q } ]
frontends = [ { address = %[6]q, hostname = "dead.test", tags = { team = "dead" } } ]

[clusters.ws]
protocol = "http"
backends = [ { backend_id = "ws-0", address = %[16]q } ]
frontends = [ { address = %[6]q, hostname = "ws.test", tags = { team = "ws" } } ]

[clusters.capped]
protocol = "http"
max_connections_per_ip = 1
backends = [ { backend_id = "capped-0", address = %[11]q } ]
frontends = [ { address = %[6]q, hostname = "capped.test", tags = { team = "cap" } } ]

[clusters.raw]
protocol = "tcp"
backends = [ { backend_id = "raw-0", address = %[14]q } ]
frontends = [ { address = %[10]q, tags = { kind = "tcp" } } ]
`, r.sock, r.access, format, r.statsd.conn.LocalAddr().String(), r.prom, r.http, r.https, certPath, keyPath, r.tcp,
		r.origin, hex.EncodeToString(digest[:]), r.bad, r.echo, freeAddr(t), r.ws)
	// startProxy's probes of the HTTP listeners leave no record (no
	// request); one of the TCP listener would: it is not probed.
	r.p = startProxy(t, r.dir, r.sock, cfg, r.http, r.https, r.prom)
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: r.caPool, ServerName: "shop.test"},
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
			if err == nil {
				r.h2client, r.h2conn = c.LocalAddr().String(), c
			}
			return c, err
		}}
	t.Cleanup(tr.CloseIdleConnections)
	r.h2 = &http.Client{Transport: tr}
	return r
}

// exchange is one request of the mix, as the test's client saw it.
type exchange struct {
	name     string
	target   string // its path is unique in the mix: the key of its record
	status   int
	bytesIn  int64 // written by the client (HTTP/2: the request body)
	bytesOut int64 // read by the client (HTTP/2: the response body)
	client   string
	cluster  string
	backend  string
	backAddr string
	tags     map[string]string
	ua       string
	method   string
	host     string
	protocol string
	h2       bool // an HTTP/2 stream: bytes are the bodies (the record counts heads in HTTP/1.1 form)
	// more is the records the step made besides the exchange's (checked
	// against the metrics only: what they show depends on the worker each
	// connection met).
	more int
	// sameSession names the exchanges whose records must share a session.
	sameSession string
	// conns is the client connections the step opened less one (an
	// HTTP/2 stream: less none, the first one opening the connection).
	conns int
}

// connections is the client connections e's step opened.
func (e exchange) connections() int {
	if e.h2 {
		return e.conns
	}
	return 1 + e.conns
}

// key is what finds the exchange's record (recordKey): its path, else
// "TCP" or its status.
func (e exchange) key() string {
	switch {
	case e.protocol == "TCP":
		return "TCP"
	case e.target != "":
		p, _, _ := strings.Cut(e.target, "?")
		return p
	}
	return "status " + strconv.Itoa(e.status)
}

// obsStep is one exchange of the mix: do makes it and says what the
// client saw.
type obsStep struct {
	name string
	do   func(t *testing.T) exchange
	// many, when set instead of do, makes several exchanges (requests
	// of one connection).
	many func(t *testing.T) []exchange
}

// rawH1 sends raw on a new connection to addr (over TLS when tlsConf is
// set), reads the whole answer (the request closes the connection) and
// returns the status, the bytes each way and the client's address.
func rawH1(t *testing.T, addr string, tlsConf *tls.Config, raw string) (status int, in, out int64, client string) {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		c, err = tls.Dial("tcp", addr, tlsConf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	client = c.LocalAddr().String()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, _ := io.ReadAll(c)
	line, _, _ := strings.Cut(string(resp), "\r\n")
	if f := strings.Fields(line); len(f) >= 2 {
		status, _ = strconv.Atoi(f[1])
	}
	return status, int64(len(raw)), int64(len(resp)), client
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// obsSecret is a credential sent in Authorization and Cookie, and
// received in Set-Cookie: it must appear in no output.
const obsSecret = "c2VjcmV0LW9ic2RpZmY"

// obsMix is the traffic the consistency test drives, the same for every
// format: each exchange has a target (or name) of its own, by which its
// record is found.
func obsMix(r *obsRig) []obsStep {
	const ua = "obs-agent/2.0 (diff)"
	shopTags := map[string]string{"team": "pay", "env": "test"}
	tlsTags := map[string]string{"team": "pay", "env": "tls"}
	tlsConf := &tls.Config{RootCAs: r.caPool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}}
	// h1 makes one HTTP/1.1 request on a connection of its own.
	h1 := func(e exchange, body string) func(t *testing.T) exchange {
		return func(t *testing.T) exchange {
			raw := e.method + " " + e.target + " HTTP/1.1\r\nHost: " + e.host + "\r\nUser-Agent: " + ua + "\r\nConnection: close\r\n"
			if body != "" || e.method == "POST" {
				raw += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
			}
			raw += "\r\n" + body
			addr, conf := r.http, (*tls.Config)(nil)
			if e.protocol == "https" {
				addr, conf = r.https, tlsConf
			}
			st, in, out, client := rawH1(t, addr, conf, raw)
			if st != e.status {
				t.Errorf("%s: status %d, want %d", e.target, st, e.status)
			}
			e.bytesIn, e.bytesOut, e.client, e.ua = in, out, client, ua
			return e
		}
	}
	// bare sends raw as is: a head the proxy refuses.
	bare := func(e exchange, raw string) func(t *testing.T) exchange {
		return func(t *testing.T) exchange {
			st, in, out, client := rawH1(t, r.http, nil, raw)
			if st != e.status {
				t.Errorf("%s: status %d, want %d", raw[:16], st, e.status)
			}
			e.bytesIn, e.bytesOut, e.client = in, out, client
			return e
		}
	}
	shop := func(e exchange) exchange {
		e.host, e.cluster, e.backend, e.backAddr, e.tags = "shop.test", "shop", "shop-0", r.origin, shopTags
		if e.protocol == "" {
			e.protocol = "http"
		}
		if e.protocol == "https" {
			e.tags = tlsTags
		}
		return e
	}
	mix := []obsStep{
		{name: "GET", do: h1(shop(exchange{method: "GET", target: "/get?n=1000", status: 200}), "")},
		{name: "POST", do: h1(shop(exchange{method: "POST", target: "/post?n=10", status: 200}), strings.Repeat("b", 4321))},
		{name: "HEAD", do: h1(shop(exchange{method: "HEAD", target: "/head?n=77", status: 200}), "")},
		{name: "404 unknown host", do: h1(exchange{method: "GET", host: "unknown.test", target: "/nohost", status: 404, protocol: "http"}, "")},
		{name: "503 no backend", do: h1(exchange{method: "GET", host: "empty.test", target: "/nobackend", status: 503, protocol: "http",
			cluster: "empty", tags: map[string]string{"team": "empty"}}, "")},
		{name: "502 bad response", do: h1(exchange{method: "GET", host: "broken.test", target: "/badresp", status: 502, protocol: "http",
			cluster: "broken", backend: "broken-0", backAddr: r.bad, tags: map[string]string{"team": "broken"}}, "")},
		{name: "504 backend timeout", do: h1(shop(exchange{method: "GET", target: "/slow", status: 504}), "")},
		{name: "503 backend down", do: h1(exchange{method: "GET", host: "dead.test", target: "/dead", status: 503, protocol: "http",
			cluster: "dead", tags: map[string]string{"team": "dead"}}, "")},
		{name: "401 auth", do: h1(exchange{method: "GET", host: "secure.test", target: "/auth", status: 401, protocol: "http",
			cluster: "secure", tags: map[string]string{"team": "sec"}}, "")},
		{name: "301 redirect", do: h1(exchange{method: "GET", host: "old.test", target: "/redir", status: 301, protocol: "http",
			cluster: "shop", tags: map[string]string{"team": "old"}}, "")},
		{name: "400 malformed", do: bare(exchange{target: "/bad", method: "GET", status: 400, protocol: "http"},
			"GET /bad HTTP/1.1\r\nHost: shop.test\r\nBad Field: x\r\n\r\n")},
		// No target in the record: its request line was refused.
		{name: "505 version", do: bare(exchange{status: 505, protocol: "http"}, "GET /v505 HTTP/2.0\r\nHost: shop.test\r\n\r\n")},
		{name: "431 head too large", do: bare(exchange{target: "/big", method: "GET", status: 431, protocol: "http"},
			"GET /big HTTP/1.1\r\nHost: shop.test\r\nX-Big: "+strings.Repeat("a", 20000)+"\r\n\r\n")},
		{name: "HTTPS GET", do: h1(shop(exchange{method: "GET", target: "/tls1?n=500", status: 200, protocol: "https"}), "")},
		{name: "PAN and credentials", do: func(t *testing.T) exchange {
			raw := "GET /pan/" + pan + "?card=" + pan + " HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: agent " + pan +
				"\r\nAuthorization: Basic " + obsSecret + "\r\nCookie: s=" + obsSecret + "\r\nConnection: close\r\n\r\n"
			st, in, out, client := rawH1(t, r.http, nil, raw)
			e := shop(exchange{method: "GET", target: "/pan/411111******1111", status: st, bytesIn: in, bytesOut: out, client: client,
				ua: "agent 411111******1111"})
			if st != 200 {
				t.Errorf("PAN: status %d", st)
			}
			return e
		}},
		{name: "404 PAN in Host", do: func(t *testing.T) exchange {
			e := h1(exchange{method: "GET", host: pan + ".shop.test", target: "/panhost", status: 404, protocol: "http"}, "")(t)
			e.host = "411111******1111.shop.test" // as recorded
			return e
		}},
		{name: "client leaves mid-body", do: func(t *testing.T) exchange {
			c, err := net.Dial("tcp", r.http)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			raw := "POST /abort?got=100 HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("a", 100)
			io.WriteString(c, raw)
			// The origin has the request (and waits for the rest of its body).
			sozutest.WaitFor(t, 10*time.Second, "the origin reads /abort", func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				_, ok := r.ids["/abort"]
				return ok
			})
			e := shop(exchange{method: "POST", target: "/abort?got=100", bytesIn: int64(len(raw)), client: c.LocalAddr().String()})
			c.Close()
			return e
		}},
		{name: "421 misdirected", do: h1(exchange{method: "GET", host: "other.test", target: "/misdirected", status: 421, protocol: "https"}, "")},
	}
	// HTTP/2 streams on one connection.
	for i, m := range []struct{ method, body string }{{"GET", ""}, {"POST", strings.Repeat("p", 3000)}, {"HEAD", ""}} {
		mix = append(mix, obsStep{name: "h2 " + m.method, do: func(t *testing.T) exchange {
			target := fmt.Sprintf("/h2-%d?n=%d", i, 200*(i+1))
			req, _ := http.NewRequest(m.method, "https://"+r.https+target, strings.NewReader(m.body))
			req.Host = "shop.test"
			req.Header.Set("User-Agent", ua)
			resp, err := r.h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			e := shop(exchange{method: m.method, target: target, status: resp.StatusCode, protocol: "https", ua: ua, h2: true,
				bytesIn: int64(len(m.body)), bytesOut: int64(len(b))})
			e.client = r.h2client
			if i == 0 {
				e.conns = 1 // the connection the streams share
			}
			return e
		}})
	}
	mix = append(mix, obsStep{name: "keep-alive", many: func(t *testing.T) []exchange {
		// Two requests on one connection: two records of one session,
		// each with its own bytes.
		c, err := net.Dial("tcp", r.http)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		var out []exchange
		for i, body := range []string{strings.Repeat("k", 700), ""} {
			raw := fmt.Sprintf("POST /keep-%d?n=%d HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: %s\r\nContent-Length: %d\r\n\r\n%s", i, 50*(i+1), ua, len(body), body)
			io.WriteString(c, raw)
			cr := &countingReader{r: br}
			resp, err := http.ReadResponse(bufio.NewReaderSize(cr, 16), nil) // small: reads little past the response
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			out = append(out, shop(exchange{method: "POST", target: fmt.Sprintf("/keep-%d?n=%d", i, 50*(i+1)), status: resp.StatusCode, ua: ua,
				bytesIn: int64(len(raw)), bytesOut: cr.n, client: c.LocalAddr().String(), sameSession: "keep-alive"}))
		}
		out[1].conns = -1 // the first request's connection
		return out
	}})
	mix = append(mix, obsStep{name: "WebSocket", do: func(t *testing.T) exchange {
		// One record: the 101 exchange with the bytes relayed after it.
		c, err := net.Dial("tcp", r.http)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		cr := &countingReader{r: c}
		br := bufio.NewReader(cr)
		head := "GET /ws HTTP/1.1\r\nHost: ws.test\r\nUser-Agent: " + ua + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		in := int64(len(head))
		io.WriteString(c, head)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("WebSocket upgrade: %v %v", resp, err)
		}
		for _, size := range []int{10, 3000, 70000} {
			f := wsFrame(2, bytes.Repeat([]byte("w"), size), []byte{1, 2, 3, 4})
			c.Write(f)
			in += int64(len(f))
			if _, got, err := readFrame(br); err != nil || len(got) != size {
				t.Fatalf("WebSocket echo: %d bytes, %v", len(got), err)
			}
		}
		f := wsFrame(8, nil, []byte{1, 2, 3, 4})
		c.Write(f)
		in += int64(len(f))
		io.Copy(io.Discard, br) // the origin closes at the close frame
		return exchange{method: "GET", host: "ws.test", target: "/ws", status: 101, protocol: "http", ua: ua, cluster: "ws", backend: "ws-0",
			backAddr: r.ws, tags: map[string]string{"team": "ws"}, bytesIn: in, bytesOut: cr.n, client: c.LocalAddr().String()}
	}})
	mix = append(mix, obsStep{name: "429 per-IP cap", do: func(t *testing.T) exchange {
		// Three connections at once to a cluster that takes one per
		// client IP and worker: with two workers, one at least is refused.
		// The first (a 200: no connection holds a slot yet) is the
		// exchange; the others are checked against the metrics only
		// (exchange.more).
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		var first exchange
		for i := range 3 {
			c, err := net.Dial("tcp", r.http)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			raw := fmt.Sprintf("GET /cap-%d HTTP/1.1\r\nHost: capped.test\r\nUser-Agent: %s\r\n\r\n", i, ua)
			io.WriteString(c, raw)
			cr := &countingReader{r: c}
			resp, err := http.ReadResponse(bufio.NewReader(cr), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if i == 0 {
				first = exchange{method: "GET", host: "capped.test", target: "/cap-0", status: resp.StatusCode, protocol: "http", ua: ua,
					cluster: "capped", tags: map[string]string{"team": "cap"}, bytesIn: int64(len(raw)), bytesOut: cr.n, client: c.LocalAddr().String(),
					more: 2, conns: 2}
				if resp.StatusCode == 200 {
					first.backend, first.backAddr = "capped-0", r.origin
				}
			}
		}
		return first
	}})
	mix = append(mix, obsStep{name: "h2 421", do: func(t *testing.T) exchange {
		req, _ := http.NewRequest("GET", "https://"+r.https+"/h2-misdirected", nil)
		req.Host = "other.test" // the connection's SNI is shop.test
		req.Header.Set("User-Agent", ua)
		resp, err := r.h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return exchange{method: "GET", host: "other.test", target: "/h2-misdirected", status: resp.StatusCode, protocol: "https", ua: ua, h2: true,
			bytesOut: int64(len(b)), client: r.h2client}
	}}, obsStep{name: "h2 431", do: func(t *testing.T) exchange {
		req, _ := http.NewRequest("GET", "https://"+r.https+"/h2-big", nil)
		req.Host = "shop.test"
		req.Header.Set("User-Agent", ua)
		req.Header.Set("X-Big", strings.Repeat("b", 20000)) // too large a head for HTTP/1.1
		resp, err := r.h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// No route: the tags of the frontend of its host.
		e := exchange{method: "GET", host: "shop.test", target: "/h2-big", status: resp.StatusCode, protocol: "https", h2: true,
			bytesIn: 20000, bytesOut: int64(len(b)), client: r.h2client, tags: map[string]string{"team": "pay", "env": "tls"}}
		if e.status != 431 {
			t.Errorf("h2 431: status %d", e.status)
		}
		return e
	}}, obsStep{name: "h2 client resets mid-body", do: func(t *testing.T) exchange {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+r.https+"/h2-abort?got=300", pr)
		req.Host = "shop.test"
		req.Header.Set("User-Agent", ua)
		done := make(chan error, 1)
		go func() {
			resp, err := r.h2.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		pw.Write(bytes.Repeat([]byte("q"), 300))
		sozutest.WaitFor(t, 10*time.Second, "the origin reads /h2-abort", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			_, ok := r.ids["/h2-abort"]
			return ok
		})
		cancel()
		<-done
		pw.Close()
		e := shop(exchange{method: "POST", target: "/h2-abort?got=300", protocol: "https", ua: ua, h2: true, bytesIn: 300})
		e.client = r.h2client
		return e
	}})
	mix = append(mix, obsStep{name: "TCP", do: func(t *testing.T) exchange {
		c, err := net.Dial("tcp", r.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		payload := strings.Repeat("t", 7777)
		io.WriteString(c, payload)
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		if got := r.echoOrigin.bytes.Load(); got != int64(len(payload)) {
			t.Errorf("TCP: the backend received %d bytes, the client sent %d", got, len(payload))
		}
		return exchange{client: c.LocalAddr().String(), bytesIn: int64(len(payload)), bytesOut: int64(len(b)),
			cluster: "raw", backend: "raw-0", backAddr: r.echo, tags: map[string]string{"kind": "tcp"}, protocol: "TCP"}
	}})
	return mix
}

// recordKey finds a record's exchange: its path, else "TCP" or the status
// (a head refused before its target could be read).
func recordKey(r obsRecord) string {
	switch {
	case r.Protocol == "TCP":
		return "TCP"
	case r.Target != "":
		p, _, _ := strings.Cut(r.Target, "?")
		return p
	}
	return "status " + strconv.Itoa(r.Status)
}

// readRecords decodes the access log at path, written in format.
func readRecords(t *testing.T, path, format string) []obsRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if format == "protobuf" {
		return parseProtobufRecords(t, b)
	}
	var out []obsRecord
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		if format == "json" {
			out = append(out, parseJSONRecord(t, l))
		} else {
			out = append(out, parseASCIIRecord(t, l))
		}
	}
	return out
}

// recordCount counts the records in the access log at path, without
// decoding them.
func recordCount(path, format string) int {
	b, _ := os.ReadFile(path)
	if format != "protobuf" {
		return bytes.Count(b, []byte("\n"))
	}
	n := 0
	for len(b) > 0 {
		l, k := binary.Uvarint(b)
		if k <= 0 || len(b) < k+int(l)+2 {
			break
		}
		b = b[k+int(l)+2:]
		n++
	}
	return n
}

// TestObservabilityOutputsAgree drives one mix of traffic (HTTP/1.1 and
// HTTP/2, the proxy's own answers, a TCP session) through a proxy per
// access log format and checks that the outputs describe it alike: each
// record against what the test's client sent and read and the origin saw
// (ids, addresses, bytes, status, tags), its times against each other, the
// three formats against each other, and the metrics (`query_metrics`,
// statsd, Prometheus) against the records.
func TestObservabilityOutputsAgree(t *testing.T) {
	formats := []string{"ascii", "protobuf", "json"}
	runs := make([]map[string]obsRecord, len(formats))
	t.Run("format", func(t *testing.T) {
		for i, f := range formats {
			t.Run(f, func(t *testing.T) {
				t.Parallel()
				runs[i] = runObsMix(t, f)
			})
		}
	})
	if t.Failed() {
		return
	}
	// The formats, against each other: everything but what differs from
	// run to run (ids, ports, times, the worker).
	for i := 1; i < len(formats); i++ {
		for k, want := range runs[0] {
			if k == "/cap-1" || k == "/cap-2" {
				continue // 200 or 429: the worker each connection met decides
			}
			got, ok := runs[i][k]
			if !ok {
				t.Errorf("%s: no record of %s", formats[i], k)
				continue
			}
			if g, w := stable(got), stable(want); !equalRecords(g, w) {
				t.Errorf("%s: the %s record differs from the %s one:\n got %+v\nwant %+v", k, formats[i], formats[0], g, w)
			}
		}
	}
}

// stable is r without what differs from one run to the next.
func stable(r obsRecord) obsRecord {
	r.Session, r.Request, r.Worker, r.Outcome, r.Listener = "", "", "", "", "" // Outcome: checkRecord
	r.ReqTime, r.SvcTime, r.RespTime = 0, 0, 0
	r.Client = ""
	if r.BackAddr != "" {
		r.BackAddr = "set"
	}
	return r
}

func equalRecords(a, b obsRecord) bool {
	return fmt.Sprint(a) == fmt.Sprint(b) // maps print sorted by key
}

// runObsMix runs obsMix through a proxy writing format, checks its
// records and metrics, and returns the records by key.
func runObsMix(t *testing.T, format string) map[string]obsRecord {
	r := startObsRig(t, format)
	var exs []exchange
	for _, m := range obsMix(r) {
		var es []exchange
		if m.many != nil {
			es = m.many(t)
		} else {
			es = []exchange{m.do(t)}
		}
		for _, e := range es {
			if e.name == "" {
				e.name = m.name
			}
			exs = append(exs, e)
		}
	}
	// The HTTP/2 connection closes: the transport would keep one whose
	// stream it reset a moment ago.
	r.h2conn.Close()
	want := len(exs)
	for _, e := range exs {
		want += e.more
	}
	sozutest.WaitFor(t, 10*time.Second, "a record of each exchange", func() bool { return recordCount(r.access, format) >= want })
	recs := map[string]obsRecord{}
	for _, rec := range readRecords(t, r.access, format) {
		k := recordKey(rec)
		if _, dup := recs[k]; dup {
			t.Errorf("two records of %s", k)
		}
		recs[k] = rec
	}
	r.mu.Lock()
	seen := r.ids
	r.mu.Unlock()
	sessions, requestIDs := map[string]string{}, map[string]string{}
	for _, e := range exs {
		k := e.key()
		rec, ok := recs[k]
		if !ok {
			t.Errorf("%s: no record of %s (%v)", format, e.name, k)
			continue
		}
		checkRecord(t, r, format, e, rec, seen)
		group := e.sameSession
		if e.h2 {
			group = "HTTP/2"
		}
		if group != "" {
			if sessions[group] == "" {
				sessions[group] = rec.Session
			} else if rec.Session != sessions[group] {
				t.Errorf("%s: the requests of one connection (%s) in sessions %s and %s", format, group, sessions[group], rec.Session)
			}
		}
		if other, dup := requestIDs[rec.Request]; dup {
			t.Errorf("%s: request id %s for %s and %s", format, rec.Request, other, k)
		}
		requestIDs[rec.Request] = k
	}
	if len(recs) != want || t.Failed() {
		for k, rec := range recs {
			t.Logf("%s: %+v", k, rec)
		}
		t.Errorf("%s: %d records, want %d", format, len(recs), want)
	}
	scrape := checkMetricsAgainstRecords(t, r, recs)
	checkConnections(t, r, exs)
	// No PAN and no credential anywhere: access log, main log, statsd,
	// Prometheus.
	access, _ := os.ReadFile(r.access)
	audit, err := os.ReadFile(r.access + ".audit")
	if err != nil {
		t.Errorf("audit log: %v", err)
	}
	r.statsd.mu.Lock()
	statsd := strings.Join(r.statsd.lines, "\n")
	r.statsd.mu.Unlock()
	for what, out := range map[string]string{"access log": string(access), "main log": r.p.Out.String(), "statsd": statsd, "Prometheus": scrape, "audit log": string(audit)} {
		for _, secret := range []string{pan, obsSecret} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: the %s holds %s", format, what, secret)
			}
		}
	}
	return recs
}

// checkRecord compares a record with its exchange as the client and the
// origin saw it.
func checkRecord(t *testing.T, r *obsRig, format string, e exchange, rec obsRecord, ids map[string]string) {
	t.Helper()
	errorf := func(f string, a ...any) { t.Errorf("%s %s: "+f, append([]any{format, e.name}, a...)...) }
	want := obsRecord{Protocol: e.protocol, Status: e.status, Cluster: e.cluster, Backend: e.backend, BackAddr: e.backAddr,
		Method: e.method, Host: e.host, UA: e.ua, Client: e.client}
	got := rec
	got.Session, got.Request, got.Target, got.Worker, got.Tags, got.Outcome, got.Listener = "", "", "", "", nil, "", ""
	got.ReqTime, got.SvcTime, got.RespTime, got.HasRespTime = 0, 0, 0, false
	got.BytesIn, got.BytesOut = 0, 0
	if !equalRecords(got, want) {
		errorf("record\n got %+v\nwant %+v", got, want)
	}
	if len(rec.Tags) != len(e.tags) || !equalRecords(obsRecord{Tags: rec.Tags}, obsRecord{Tags: e.tags}) {
		errorf("tags %v, want %v", rec.Tags, e.tags)
	}
	switch {
	case e.h2:
		// The stream's head in its HTTP/1.1 form, and its body.
		if rec.BytesIn < e.bytesIn+int64(len(e.method)+len(e.target)) || (e.status != 0) != (rec.BytesOut > e.bytesOut) {
			errorf("bytes in/out %d/%d for bodies of %d/%d", rec.BytesIn, rec.BytesOut, e.bytesIn, e.bytesOut)
		}
	case e.status == 431:
		// The head is refused as soon as it is known too large: what was read of it.
		if rec.BytesIn <= 16<<10 || rec.BytesIn > e.bytesIn || rec.BytesOut != e.bytesOut {
			errorf("bytes in/out %d/%d, client sent %d (more than the 16 KiB head limit) and read %d", rec.BytesIn, rec.BytesOut, e.bytesIn, e.bytesOut)
		}
	default:
		if rec.BytesIn != e.bytesIn || rec.BytesOut != e.bytesOut {
			errorf("bytes in/out %d/%d, the client sent %d and read %d", rec.BytesIn, rec.BytesOut, e.bytesIn, e.bytesOut)
		}
	}
	if e.protocol == "TCP" {
		if rec.Request != rec.Session {
			errorf("request id %s, session id %s: a TCP session is filed under one id", rec.Request, rec.Session)
		}
	} else if id, ok := ids[e.key()]; ok && id != rec.Request {
		errorf("request id %s, the origin was sent Sozu-Id %s", rec.Request, id)
	}
	// A failure (ascii's ERROR-ACCESS, JSON's event.outcome): no answer,
	// or a 4xx or 5xx one (the mix has no response cut short); a TCP
	// session is a success.
	if want := map[bool]string{true: "failure", false: "success"}[e.protocol != "TCP" && (e.status == 0 || e.status >= 400)]; format != "protobuf" && rec.Outcome != want {
		errorf("outcome %q, want %q", rec.Outcome, want)
	}
	if wantL := map[string]string{"http": r.http, "https": r.https, "TCP": r.tcp}[e.protocol]; format == "json" && rec.Listener != wantL {
		errorf("listener %q, want %q", rec.Listener, wantL)
	}
	if format != "json" && rec.Worker != "WRK-00" && rec.Worker != "WRK-01" {
		errorf("tag %q, want a worker's (WRK-00, WRK-01)", rec.Worker)
	}
	if rec.Session == "" || rec.Request == "" {
		errorf("no session or request id: %+v", rec)
	}
	// Times: service and response time within the request time, adding up
	// to it (to the resolution of the format), a response time exactly
	// when a backend was reached.
	if rec.SvcTime > rec.ReqTime || rec.RespTime > rec.ReqTime || rec.ReqTime <= 0 {
		errorf("times request %v, service %v, response %v", rec.ReqTime, rec.SvcTime, rec.RespTime)
	}
	tol := map[string]time.Duration{"json": 0, "protobuf": 2 * time.Microsecond, "ascii": (rec.ReqTime+rec.SvcTime+rec.RespTime)/10 + 30}[format]
	if d := rec.ReqTime - rec.SvcTime - rec.RespTime; d > tol || d < -tol {
		errorf("request time %v is not service time %v + response time %v", rec.ReqTime, rec.SvcTime, rec.RespTime)
	}
	if rec.HasRespTime != (e.backAddr != "") {
		errorf("response time %v (given: %v) with backend address %q", rec.RespTime, rec.HasRespTime, e.backAddr)
	}
	if e.status == 504 && rec.RespTime < 900*time.Millisecond {
		errorf("response time %v of a backend that timed out after back_timeout (1 s)", rec.RespTime)
	}
}

// timerSamples adds up the samples the |ms lines whose key matches re
// stand for: 1/rate each (no rate: 1; the rate has six digits, the count
// it stands for is whole).
func (s *statsdSink) timerSamples(re *regexp.Regexp) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, l := range s.lines {
		key, rest, ok := strings.Cut(l, ":")
		if !ok || !re.MatchString(key) {
			continue
		}
		f := strings.Split(rest, "|")
		if len(f) < 2 || f[1] != "ms" {
			continue
		}
		rate := 1.0
		if len(f) == 3 && strings.HasPrefix(f[2], "@") {
			rate, _ = strconv.ParseFloat(f[2][1:], 64)
		}
		n += int64(math.Round(1 / rate))
	}
	return n
}

// counters returns every counter of am by its statsd key (less the
// origin): name, cluster.<id>.name, cluster.<id>.backend.<id>.name.
func counters(am *command.AggregatedMetrics) map[string]int64 {
	out := map[string]int64{}
	add := func(prefix string, m map[string]*command.FilteredMetrics) {
		for name, v := range m {
			if c, ok := v.GetInner().(*command.FilteredMetrics_Count); ok {
				out[prefix+name] = c.Count
			}
		}
	}
	add("", am.GetProxying())
	for id, cl := range am.GetClusters() {
		add("cluster."+id+".", cl.GetCluster())
		for _, b := range cl.GetBackends() {
			add("cluster."+id+".backend."+b.GetBackendId()+".", b.GetMetrics())
		}
	}
	return out
}

// checkConnections compares the client connections of the mix with the
// listeners' and TLS counters. startProxy probes the HTTP and HTTPS
// listeners alike, once or more (until every listener answers), with no
// TLS handshake (and so no failed one); the TCP listener is not probed.
func checkConnections(t *testing.T, r *obsRig, exs []exchange) {
	t.Helper()
	conns := map[string]int64{}
	for _, e := range exs {
		conns[e.protocol] += int64(e.connections())
	}
	// A session records its request before its connection's gauge goes
	// down: wait for the gauges.
	var p map[string]*command.FilteredMetrics
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p = queryMetrics(t, r.sock, nil).GetProxying()
		if p[pm.ClientConnections].GetGauge() == 0 && p[pm.H2ActiveStreams].GetGauge() == 0 {
			break
		}
		if time.Now().After(deadline) {
			aw := queryMetrics(t, r.sock, &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(true), Workers: proto.Bool(true)})
			for id, w := range aw.GetWorkers() {
				t.Logf("worker %s: %s %d, %s %d", id, pm.ClientConnections, w.GetProxy()[pm.ClientConnections].GetGauge(),
					pm.H2ActiveStreams, w.GetProxy()[pm.H2ActiveStreams].GetGauge())
			}
			t.Fatalf("10 s after the mix: %s = %d, %s = %d, want 0 once every connection closed", pm.ClientConnections,
				p[pm.ClientConnections].GetGauge(), pm.H2ActiveStreams, p[pm.H2ActiveStreams].GetGauge())
		}
	}
	probes := countOf(p, pm.AcceptedHTTPS) - conns["https"]
	if probes < 1 {
		t.Errorf("%s = %d, the mix opened %d and startProxy at least one", pm.AcceptedHTTPS, countOf(p, pm.AcceptedHTTPS), conns["https"])
	}
	for name, want := range map[string]int64{
		pm.AcceptedHTTP: conns["http"] + probes, pm.AcceptedTCP: conns["TCP"],
		pm.AcceptedConnections: conns["http"] + conns["https"] + conns["TCP"] + 2*probes,
		pm.TLSv13:              conns["https"], pm.H2Connections: 1, pm.ALPNHTTP11: conns["https"] - 1,
		pm.TLSHandshakeErrors: 0, // a probe sends no byte: no handshake, not a failed one
	} {
		if got := countOf(p, name); got != want {
			t.Errorf("%s = %d, the mix opened %d", name, got, want)
		}
	}
}

// statusClass is the http.status.* counter a status counts in.
func statusClass(s int) string {
	if s >= 100 && s < 600 {
		return fmt.Sprintf("http.status.%dxx", s/100)
	}
	return pm.StatusOther
}

// checkMetricsAgainstRecords compares what the records say was carried
// with the merged metrics (query_metrics), then every counter of those
// with its statsd lines (summed over the workers' origins) and with its
// Prometheus sample.
func checkMetricsAgainstRecords(t *testing.T, r *obsRig, recs map[string]obsRecord) (scrape string) {
	t.Helper()
	type counts map[string]int64
	proxy, clusters, backends := counts{}, map[string]counts{}, map[[2]string]counts{}
	var httpRecs, tcpRecs int64
	for _, rec := range recs {
		answered := rec.Protocol == "TCP" || rec.Status != 0 // a request its client left counts its bytes only
		add := func(c counts) {
			c[pm.BytesIn] += rec.BytesIn
			c[pm.BytesOut] += rec.BytesOut
			if !answered {
				return
			}
			c[pm.Requests]++
			if rec.Protocol != "TCP" {
				c[statusClass(rec.Status)]++
				if rec.Status != 408 && rec.Status != 431 { // a head that never arrived whole has no request_time
					c["request_time samples"]++
				}
			}
			if rec.HasRespTime && rec.Protocol != "TCP" {
				c["backend_response_time samples"]++
			}
		}
		add(proxy)
		if rec.Protocol == "TCP" {
			tcpRecs++
		} else if answered {
			httpRecs++
			if rec.Status >= 400 {
				proxy[pm.HTTPErrors]++ // every 4xx and 5xx of the mix is the proxy's own
			}
			if rec.Status == 429 {
				proxy[pm.RejectedPerIP]++
			}
		}
		if rec.Cluster != "" {
			if clusters[rec.Cluster] == nil {
				clusters[rec.Cluster] = counts{}
			}
			add(clusters[rec.Cluster])
		}
		if rec.Backend != "" {
			k := [2]string{rec.Cluster, rec.Backend}
			if backends[k] == nil {
				backends[k] = counts{}
			}
			add(backends[k])
		}
	}
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the metrics count every record", func() bool {
		am = queryMetrics(t, r.sock, nil)
		p := am.GetProxying()
		return countOf(p, pm.HTTPRequests) >= httpRecs && countOf(p, pm.TCPRequests) >= tcpRecs
	})
	p := am.GetProxying()
	for name, want := range map[string]int64{
		pm.HTTPRequests: httpRecs, pm.TCPRequests: tcpRecs, pm.HTTPErrors: proxy[pm.HTTPErrors], pm.RejectedPerIP: proxy[pm.RejectedPerIP],
		pm.BytesIn: proxy[pm.BytesIn], pm.BytesOut: proxy[pm.BytesOut],
		pm.Status1xx: proxy[pm.Status1xx], pm.Status2xx: proxy[pm.Status2xx], pm.Status3xx: proxy[pm.Status3xx],
		pm.Status4xx: proxy[pm.Status4xx], pm.Status5xx: proxy[pm.Status5xx], pm.StatusOther: proxy[pm.StatusOther],
	} {
		if got := countOf(p, name); got != want {
			t.Errorf("proxy %s = %d, the records say %d", name, got, want)
		}
	}
	// The counters of one status (http.status.404), of the proxy's own
	// answers (http.404.errors: every 4xx and 5xx of the mix is the
	// proxy's) and redirections (http.301.redirection).
	byStatus := map[int]int64{}
	for _, rec := range recs {
		if rec.Protocol != "TCP" && rec.Status != 0 {
			byStatus[rec.Status]++
		}
	}
	perStatus := regexp.MustCompile(`^http\.(?:status\.(\d{3})|(\d{3})\.errors|(3\d\d)\.redirection)$`)
	for name := range p {
		m := perStatus.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		code, _ := strconv.Atoi(m[1] + m[2] + m[3])
		if got := countOf(p, name); got != byStatus[code] {
			t.Errorf("proxy %s = %d, the records say %d answers %d", name, got, byStatus[code], code)
		}
	}
	if got, want := p[pm.RequestTime].GetPercentiles().GetSamples(), uint64(proxy["request_time samples"]); got != want {
		t.Errorf("proxy %s has %d samples, the records say %d HTTP requests", pm.RequestTime, got, want)
	}
	// Times ordered: the service time and the backend's within the
	// request time, sample by sample, so in sum.
	sum := func(m map[string]*command.FilteredMetrics, name string) uint64 {
		return m[name].GetPercentiles().GetSum()
	}
	if sum(p, pm.ServiceTime) > sum(p, pm.RequestTime) || sum(p, pm.RequestTime) == 0 {
		t.Errorf("proxy: service times add up to %d µs, request times to %d µs", sum(p, pm.ServiceTime), sum(p, pm.RequestTime))
	}
	for id, cl := range am.GetClusters() {
		if c := cl.GetCluster(); sum(c, pm.ServiceTime) > sum(c, pm.RequestTime) || sum(c, pm.BackendResponseTime) > sum(c, pm.RequestTime) {
			t.Errorf("cluster %s: service times add up to %d µs, backend response times to %d µs, request times to %d µs",
				id, sum(c, pm.ServiceTime), sum(c, pm.BackendResponseTime), sum(c, pm.RequestTime))
		}
	}
	clusterNames := []string{pm.Requests, pm.BytesIn, pm.BytesOut, pm.Status1xx, pm.Status2xx, pm.Status3xx, pm.Status4xx, pm.Status5xx, pm.StatusOther}
	for id, want := range clusters {
		cm := am.GetClusters()[id].GetCluster()
		for _, name := range clusterNames {
			if got := countOf(cm, name); got != want[name] {
				t.Errorf("cluster %s %s = %d, the records say %d", id, name, got, want[name])
			}
		}
		if got := cm[pm.RequestTime].GetPercentiles().GetSamples(); got != uint64(want["request_time samples"]) {
			t.Errorf("cluster %s %s has %d samples, the records say %d", id, pm.RequestTime, got, want["request_time samples"])
		}
		if got := cm[pm.BackendResponseTime].GetPercentiles().GetSamples(); got != uint64(want["backend_response_time samples"]) {
			t.Errorf("cluster %s %s has %d samples, the records say %d", id, pm.BackendResponseTime, got, want["backend_response_time samples"])
		}
	}
	for k, want := range backends {
		var bm map[string]*command.FilteredMetrics
		for _, b := range am.GetClusters()[k[0]].GetBackends() {
			if b.GetBackendId() == k[1] {
				bm = b.GetMetrics()
			}
		}
		for _, name := range clusterNames {
			if got := countOf(bm, name); got != want[name] {
				t.Errorf("backend %s/%s %s = %d, the records say %d", k[0], k[1], name, got, want[name])
			}
		}
	}

	// statsd and Prometheus: every counter of the three levels as
	// query_metrics gives it.
	type sample struct {
		statsd, prom string // the statsd key (less the origin) and the Prometheus series
		want         int64
	}
	var samples []sample
	promName := func(s string) string {
		return regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(s, "_")
	}
	// Latencies: their sample counts (statsd: lines of |ms, each standing
	// for 1/rate samples; Prometheus: the summary's _count).
	var timers []sample
	timer := func(key, prom string, m *command.FilteredMetrics) {
		if pc, ok := m.GetInner().(*command.FilteredMetrics_Percentiles); ok {
			timers = append(timers, sample{key, prom, int64(pc.Percentiles.GetSamples())})
		}
	}
	for name, m := range p {
		if c, ok := m.GetInner().(*command.FilteredMetrics_Count); ok {
			samples = append(samples, sample{name, "sozu_" + strings.TrimSuffix(promName(name), "_total") + "_total", c.Count})
		}
		timer(name, "sozu_"+promName(name)+"_seconds_count", m)
	}
	for id, cl := range am.GetClusters() {
		for name, m := range cl.GetCluster() {
			if c, ok := m.GetInner().(*command.FilteredMetrics_Count); ok {
				samples = append(samples, sample{"cluster." + id + "." + name,
					fmt.Sprintf(`sozu_cluster_%s_total{cluster_id=%q}`, promName(name), id), c.Count})
			}
			timer("cluster."+id+"."+name, fmt.Sprintf(`sozu_cluster_%s_seconds_count{cluster_id=%q}`, promName(name), id), m)
		}
		for _, b := range cl.GetBackends() {
			for name, m := range b.GetMetrics() {
				if c, ok := m.GetInner().(*command.FilteredMetrics_Count); ok {
					samples = append(samples, sample{"cluster." + id + ".backend." + b.GetBackendId() + "." + name,
						fmt.Sprintf(`sozu_backend_%s_total{cluster_id=%q,backend_id=%q}`, promName(name), id, b.GetBackendId()), c.Count})
				}
				timer("cluster."+id+".backend."+b.GetBackendId()+"."+name,
					fmt.Sprintf(`sozu_backend_%s_seconds_count{cluster_id=%q,backend_id=%q}`, promName(name), id, b.GetBackendId()), m)
			}
		}
	}
	// `sozu metrics get --json`, the operator's view, says the same.
	var cli command.Response
	if err := protojson.Unmarshal([]byte(r.p.MustCLI("metrics", "get", "--json")), &cli); err != nil {
		t.Fatalf("metrics get --json: %v", err)
	}
	cliCounts := counters(cli.GetContent().GetMetrics())
	for _, s := range samples {
		if got, ok := cliCounts[s.statsd]; !ok || got != s.want {
			t.Errorf("metrics get --json: %s = %d (shown: %v), query_metrics %d", s.statsd, got, ok, s.want)
		}
	}
	statsdKey := func(key string) *regexp.Regexp {
		return regexp.MustCompile(`^sozu\.WRK-\d\d\.` + regexp.QuoteMeta(key) + `$`)
	}
	// statsd: the workers' counters and latencies reach it within a few
	// flushes (one a second).
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		missing = missing[:0]
		for _, s := range samples {
			if got, _ := r.statsd.sum(statsdKey(s.statsd)); got != s.want {
				missing = append(missing, fmt.Sprintf("%s = %d (query_metrics %d)", s.statsd, got, s.want))
			}
		}
		for _, s := range timers {
			if got := r.statsd.timerSamples(statsdKey(s.statsd)); got != s.want {
				missing = append(missing, fmt.Sprintf("%s has %d samples (query_metrics %d)", s.statsd, got, s.want))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("statsd, 10 s after the traffic, differs from query_metrics:\n%s", strings.Join(missing, "\n"))
	}
	resp, err := http.Get("http://" + r.prom + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	scrape = string(b)
	series := map[string]string{}
	for _, l := range strings.Split(scrape, "\n") {
		if l != "" && l[0] != '#' {
			if i := strings.LastIndexByte(l, ' '); i > 0 {
				series[l[:i]] = l[i+1:]
			}
		}
	}
	for _, s := range append(samples, timers...) {
		if got, want := series[s.prom], strconv.FormatInt(s.want, 10); got != want {
			t.Errorf("Prometheus %s = %q, query_metrics %d", s.prom, got, s.want)
		}
	}
	if len(timers) == 0 {
		t.Errorf("query_metrics has no latency")
	}
	// Each worker: its own metrics against its statsd origin and, where
	// the records name their worker (ascii, protobuf), against its records.
	perWorker := map[string]counts{}
	for _, rec := range recs {
		if rec.Worker == "" {
			continue
		}
		w := perWorker[rec.Worker]
		if w == nil {
			w = counts{}
			perWorker[rec.Worker] = w
		}
		w[pm.BytesIn] += rec.BytesIn
		w[pm.BytesOut] += rec.BytesOut
		if rec.Protocol == "TCP" {
			w[pm.TCPRequests]++
		} else if rec.Status != 0 {
			w[pm.HTTPRequests]++
		}
	}
	aw := queryMetrics(t, r.sock, &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(true)})
	if len(aw.GetWorkers()) != 2 {
		t.Errorf("query_metrics --workers: %d workers, want 2", len(aw.GetWorkers()))
	}
	for id, wm := range aw.GetWorkers() {
		n, err := strconv.Atoi(id)
		if err != nil {
			t.Fatalf("worker id %q", id)
		}
		origin := fmt.Sprintf("WRK-%02d", n)
		own := counters(&command.AggregatedMetrics{Proxying: wm.GetProxy(), Clusters: wm.GetClusters()})
		for key, want := range own {
			re := regexp.MustCompile(`^sozu\.` + origin + `\.` + regexp.QuoteMeta(key) + `$`)
			if got, _ := r.statsd.sum(re); got != want {
				t.Errorf("worker %s: statsd %s.%s = %d, its metrics %d", id, origin, key, got, want)
			}
		}
		if w := perWorker[origin]; w != nil || len(perWorker) > 0 {
			for _, name := range []string{pm.HTTPRequests, pm.TCPRequests, pm.BytesIn, pm.BytesOut} {
				if own[name] != w[name] {
					t.Errorf("worker %s: %s = %d, its records (tag %s) say %d", id, name, own[name], origin, w[name])
				}
			}
		}
	}
	// Nothing of the mix's user agent or targets reaches a label.
	if strings.Contains(scrape, "obs-agent") {
		t.Errorf("the scrape holds request data")
	}
	return scrape
}
