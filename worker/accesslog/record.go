// Package accesslog is the worker's access log: one Record per HTTP request
// (HTTP/1.1 and HTTP/2 streams), per TCP session and per UDP flow, encoded in upstream's
// ascii or protobuf layout or as ECS-shaped JSON, with cardholder data
// masked (package logmask), and shipped to the supervisor without ever
// blocking the traffic (ship.go).
package accesslog

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// Protocol names what a record is about.
type Protocol uint8

const (
	HTTP  Protocol = iota // HTTP/1.x over cleartext
	HTTPS                 // HTTP/1.x over TLS
	H2                    // an HTTP/2 stream (over TLS)
	TCP                   // a TCP session
	UDP                   // a UDP flow
)

// protocolNames are the protocol fields of the records, upstream's: its
// HTTP records, HTTP/1.x and HTTP/2 alike, are written by the mux
// (Stream::generate_access_log) with "http" or "https", the TLS version
// being in tls_version; its TCP sessions say "TCP". UDP flows are ours.
var protocolNames = [...]string{"http", "https", "https", "TCP", "UDP"}

// stream reports whether p is a session or flow relayed as is (TCP, UDP),
// rather than an HTTP request.
func (p Protocol) stream() bool { return p == TCP || p == UDP }

func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "UNKNOWN"
}

// Record is one request (or TCP session, or UDP flow) as the access log
// sees it. Its
// byte slices are borrowed from the session that fills it: they must stay
// valid until Logger.Log returns, which copies what it needs. The zero
// value of every optional field means "none".
type Record struct {
	Protocol  Protocol
	SessionID ulid.ULID // the client connection
	RequestID ulid.ULID // the request (zero for TCP and UDP: the session's id is used)
	Start     time.Time // the request's first byte (TCP: the accept; UDP: the flow's first datagram)
	End       time.Time // the last byte of the answer (TCP: the close; UDP: the flow's end)

	Client   netip.AddrPort // the client (the PROXY header's source when one came)
	Backend  netip.AddrPort // the backend, when one was contacted
	Listener string         // the listener's address

	ClusterID string
	BackendID string

	Method    []byte
	Host      []byte // the authority the client asked for (PANs masked when encoded)
	Target    []byte // the request target as received: masked when encoded
	Status    int    // 0: no answer was sent
	UserAgent []byte
	HTTP10    bool // an HTTP/1.0 request (HTTP and HTTPS records): JSON http.version "1.0"

	BytesIn  int64 // request bytes read from the client (head and body; UDP: payload bytes)
	BytesOut int64 // answer bytes written to the client

	// UDP only: the datagrams relayed each way (client → backend, and
	// back).
	DatagramsIn  int64
	DatagramsOut int64
	// EndReason says why a UDP flow ended ("responses", "idle",
	// "evicted", "backend error", "closed"), why an HTTP request failed
	// beyond its status (a malformed HTTP/2 request, a response the
	// backend cut short); "" for none.
	EndReason string

	// BackendTime is the time from the first connect attempt to a backend
	// to the end of its answer; 0 when no backend was contacted.
	BackendTime time.Duration

	Tags *Tags    // the routing frontend's tags; nil for none
	TLS  *TLSInfo // the connection's handshake, for a request over TLS; nil for none
}

// Failure reports whether r records a failure, logged at error level
// where upstream's access log would (a Gated Logger): an HTTP request that
// got no answer, a 4xx/5xx one or one with an EndReason (a response cut
// short), a UDP flow ended by a backend error (a TCP session is a
// success: its end says nothing of who failed).
func (r *Record) Failure() bool {
	if r.Protocol.stream() {
		return r.EndReason == "backend error"
	}
	return HTTPFailure(r.Status) || r.EndReason != ""
}

// HTTPFailure reports whether an HTTP request answered with status (0:
// none) is a failure (Record.Failure), for a caller that checks
// Logger.Wants before it builds the record.
func HTTPFailure(status int) bool { return status == 0 || status >= 400 }

// RequestTime is the time from the request's first byte to the end of the
// answer.
func (r *Record) RequestTime() time.Duration { return max(r.End.Sub(r.Start), 0) }

// end is the time the record is stamped with (ascii's time, protobuf's
// time, JSON's @timestamp): Start plus RequestTime, rather than End as
// read. A clock reading holds the wall clock and the monotonic one, read
// a few nanoseconds apart, and RequestTime is monotonic (End.Sub(Start)):
// so stamped, the record's end less its start is its request time to the
// nanosecond, in every format.
func (r *Record) end() time.Time {
	if r.Start.IsZero() {
		return r.End
	}
	return r.Start.Add(r.RequestTime())
}

// ServiceTime is the time the proxy itself spent: RequestTime minus
// BackendTime. The metric service_time is defined so too (its backend
// part starts at the same instant: metrics.Request.BackendStart).
func (r *Record) ServiceTime() time.Duration { return max(r.RequestTime()-r.BackendTime, 0) }

// requestID is the id the record is filed under: the request's, else the
// session's.
func (r *Record) requestID() ulid.ULID {
	if r.RequestID == (ulid.ULID{}) {
		return r.SessionID
	}
	return r.RequestID
}

// Tags are a frontend's tags, pre-encoded for every format so that a
// record costs no allocation. Immutable; safe for concurrent use.
type Tags struct {
	m     map[string]string
	ascii []byte // k=v, k2=v2 (sorted by key; delimiters percent-encoded)
	json  []byte // {"k":"v",…}
	proto []byte // the map<string,string> entries of ProtobufAccessLog.tags

	// short are the tags a cut record writes (cut.go), when an
	// encoding of these is longer than maxCutTags; nil otherwise.
	short *Tags
}

// NewTags pre-encodes m (copied). It returns nil for an empty map.
func NewTags(m map[string]string) *Tags {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := newTags(m, keys)
	if max(len(t.ascii), len(t.json), len(t.proto)) > maxCutTags {
		t.short = cutTags(t, keys)
	}
	return t
}

// newTags encodes m, whose keys sorted are keys.
func newTags(m map[string]string, keys []string) *Tags {
	t := &Tags{m: make(map[string]string, len(m))}
	for k, v := range m {
		t.m[k] = v
	}
	t.json = append(t.json, '{')
	labels := labelKeys(keys)
	for i, k := range keys {
		if i > 0 {
			t.ascii = append(t.ascii, ", "...)
			t.json = append(t.json, ',')
		}
		// Delimiters percent-encoded: no tag reads as two, or closes the list.
		t.ascii = appendEscaped(t.ascii, k, tagDelims)
		t.ascii = append(t.ascii, '=')
		t.ascii = appendEscaped(t.ascii, m[k], tagDelims)
		t.json = appendJSONString(t.json, labels[i])
		t.json = append(t.json, ':')
		t.json = appendJSONString(t.json, m[k])
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, k)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, m[k])
		t.proto = protowire.AppendTag(t.proto, fieldTags, protowire.BytesType)
		t.proto = protowire.AppendBytes(t.proto, entry)
	}
	t.json = append(t.json, '}')
	return t
}

// labelKeys returns the JSON `labels` key of each tag key (keys, sorted),
// in the same order. ECS labels are flat keyword fields: Elasticsearch
// expands a dotted key into objects, so that tags "a" and "a.b" conflict at
// ingest and the record is refused, and it refuses an empty field name.
// As Elastic's own agents do with label keys, '.', '*' and '"' become '_'
// ("" becomes "_"); a key that then equals another tag's gets '_'s
// appended until it is unique, so that no tag is lost or overwritten and no
// key appears twice. Keys needing no change keep their name.
func labelKeys(keys []string) []string {
	out := make([]string, len(keys))
	used := make(map[string]bool, len(keys))
	for i, k := range keys {
		if k != "" && labelUnsafe.Replace(k) == k {
			out[i], used[k] = k, true
		}
	}
	for i, k := range keys {
		if out[i] != "" {
			continue
		}
		l := labelUnsafe.Replace(k)
		if l == "" {
			l = "_"
		}
		for used[l] {
			l += "_"
		}
		out[i], used[l] = l, true
	}
	return out
}

// labelUnsafe replaces the characters a label key must not hold.
var labelUnsafe = strings.NewReplacer(".", "_", "*", "_", `"`, "_")

// Map returns the tags; the caller must not modify it.
func (t *Tags) Map() map[string]string {
	if t == nil {
		return nil
	}
	return t.m
}
