package statefile

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// Records in upstream's output format (docs/protocol.md §4.2), used as bases for variations.
const (
	recCluster  = `{"id":"SAVE-2","content":{"request_type":{"ADD_CLUSTER":{"cluster_id":"shop","sticky_session":false,"https_redirect":true,"proxy_protocol":null,"load_balancing":0,"answer_503":null,"load_metric":null,"http2":null,"answers":{},"https_redirect_port":null,"authorized_hashes":[],"www_authenticate":null,"max_connections_per_ip":null,"retry_after":null,"health_check":null,"udp":null}}}}`
	recFrontend = `{"id":"SAVE-3","content":{"request_type":{"ADD_HTTP_FRONTEND":{"cluster_id":"shop","address":{"ip":{"inner":{"V4":0}},"port":8080},"hostname":"shop.example.com","path":{"kind":0,"value":"/api"},"method":null,"position":2,"tags":{"env":"prod","owner":"team-a"},"redirect":null,"required_auth":null,"redirect_scheme":null,"redirect_template":null,"rewrite_host":null,"rewrite_path":null,"rewrite_port":null,"headers":[{"position":1,"key":"x-env","val":"prod"}],"hsts":null}}}}`
	recBackend  = `{"id":"SAVE-5","content":{"request_type":{"ADD_BACKEND":{"cluster_id":"shop","backend_id":"shop-0","address":{"ip":{"inner":{"V4":167772170}},"port":8000},"sticky_id":null,"load_balancing_parameters":{"weight":100},"backup":null}}}}`
	recListener = `{"id":"SAVE-0","content":{"request_type":{"ADD_TCP_LISTENER":{"address":{"ip":{"inner":{"V4":0}},"port":5432},"public_address":null,"expect_proxy":false,"front_timeout":60,"back_timeout":30,"connect_timeout":3,"active":true}}}}`
	recActivate = `{"id":"SAVE-1","content":{"request_type":{"ACTIVATE_LISTENER":{"address":{"ip":{"inner":{"V4":0}},"port":5432},"proxy":2,"from_scm":false}}}}`
)

// edit replaces old by new in s, once; it panics if old is absent, so a
// stale table entry cannot silently test the unmodified record.
func edit(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("edit: " + old + " not found")
	}
	return strings.Replace(s, old, new, 1)
}

func TestUnmarshal(t *testing.T) {
	udpCluster := edit(recCluster, `"udp":null`,
		`"udp":{"affinity_key":null,"responses":null,"requests":null,"send_proxy_protocol":null,"proxy_protocol_every_datagram":null,"health":{"mode":2,"tcp_port":null,"rise":null,"fall":null,"fail_open":null,"udp_probe_payload":[0,255],"probe_interval_seconds":null,"probe_timeout_seconds":null}}`)
	tests := []struct {
		name    string
		in      string
		wantErr string // "" = accepted
	}{
		// Accepted variations.
		{"example cluster", recCluster, ""},
		{"missing headers defaults to empty", edit(recFrontend, `,"headers":[{"position":1,"key":"x-env","val":"prod"}]`, ""), ""},
		{"missing Cluster.answers and authorized_hashes", edit(edit(recCluster, `"answers":{},`, ""), `"authorized_hashes":[],`, ""), ""},
		{"missing optional fields", `{"id":"x","content":{"request_type":{"ADD_BACKEND":{"cluster_id":"c","backend_id":"b","address":{"ip":{},"port":1}}}}}`, ""},
		{"request_type null", `{"id":"x","content":{"request_type":null}}`, ""},
		{"request_type missing", `{"id":"x","content":{}}`, ""},
		{"unknown keys ignored", edit(recBackend, `"backup":null`, `"backup":null,"future":{"a":[1.5e3,null,"x"]},"z":-0`), ""},
		{"surrounding whitespace", " \n\t" + recActivate + "\r\n ", ""},
		{"bytes", udpCluster, ""},
		{"uint64 max", `{"id":"x","content":{"request_type":{"SET_MAX_CONNECTIONS_PER_IP":18446744073709551615}}}`, ""},
		{"keys in any order", `{"content":{"request_type":{"REMOVE_CLUSTER":"shop"}},"id":"x"}`, ""},

		// Required fields.
		{"missing id", `{"content":{"request_type":null}}`, "id: required field missing"},
		{"missing content", `{"id":"x"}`, "content: required field missing"},
		{"missing required string", edit(recCluster, `"cluster_id":"shop",`, ""),
			"content.request_type.ADD_CLUSTER.cluster_id: required field missing"},
		{"missing required enum with a default", edit(recFrontend, `"position":2,`, ""),
			"content.request_type.ADD_HTTP_FRONTEND.position: required field missing"},
		{"null required string", edit(recFrontend, `"hostname":"shop.example.com"`, `"hostname":null`),
			"content.request_type.ADD_HTTP_FRONTEND.hostname: required field is null"},
		{"missing required message", edit(recFrontend, `"path":{"kind":0,"value":"/api"},`, ""),
			"content.request_type.ADD_HTTP_FRONTEND.path: required field missing"},
		{"null required message", edit(recBackend, `"address":{"ip":{"inner":{"V4":167772170}},"port":8000}`, `"address":null`),
			"content.request_type.ADD_BACKEND.address: required field is null"},
		{"missing required in list element", edit(recFrontend, `"key":"x-env",`, ""),
			"content.request_type.ADD_HTTP_FRONTEND.headers[0].key: required field missing"},

		// Repeated and map fields.
		{"missing tags", edit(recFrontend, `"tags":{"env":"prod","owner":"team-a"},`, ""),
			"content.request_type.ADD_HTTP_FRONTEND.tags: field missing (repeated and map fields must be present, [] or {} when empty)"},
		{"null headers", edit(recFrontend, `"headers":[{"position":1,"key":"x-env","val":"prod"}]`, `"headers":null`),
			"content.request_type.ADD_HTTP_FRONTEND.headers: null is not allowed for a repeated or map field"},
		{"null Cluster.answers", edit(recCluster, `"answers":{}`, `"answers":null`),
			"content.request_type.ADD_CLUSTER.answers: null is not allowed for a repeated or map field"},
		{"null map value", edit(recFrontend, `"env":"prod"`, `"env":null`),
			`content.request_type.ADD_HTTP_FRONTEND.tags["env"]: null is not allowed as a map value`},
		{"null list element", edit(recCluster, `"authorized_hashes":[]`, `"authorized_hashes":["a",null]`),
			"content.request_type.ADD_CLUSTER.authorized_hashes[1]: null is not allowed in a list"},
		{"map as array", edit(recFrontend, `"tags":{"env":"prod","owner":"team-a"}`, `"tags":[]`),
			"content.request_type.ADD_HTTP_FRONTEND.tags: expected object, found array"},

		// Oneofs.
		{"empty oneof object", `{"id":"x","content":{"request_type":{}}}`,
			"content.request_type: a oneof object must have exactly one key, found 0"},
		{"two variants", `{"id":"x","content":{"request_type":{"REMOVE_CLUSTER":"a","LOGGING":"b"}}}`,
			"content.request_type: a oneof object must have exactly one key, found 2"},
		{"unknown variant", `{"id":"x","content":{"request_type":{"ADD_NOTHING":{}}}}`,
			`content.request_type: unknown variant "ADD_NOTHING"`},
		{"field name instead of variant key", `{"id":"x","content":{"request_type":{"remove_cluster":"a"}}}`,
			`content.request_type: unknown variant "remove_cluster"`},
		{"null variant value", edit(recBackend, `{"V4":167772170}`, `{"V4":null}`),
			"content.request_type.ADD_BACKEND.address.ip.inner.V4: null is not allowed as a variant's value"},
		{"oneof as string", `{"id":"x","content":{"request_type":"STATUS"}}`,
			"content.request_type: expected object with one variant key, or null, found string"},

		// Types and ranges.
		{"string for uint32", edit(recBackend, `"port":8000`, `"port":"8000"`),
			"content.request_type.ADD_BACKEND.address.port: expected integer (uint32), found string"},
		{"uint32 overflow", edit(recBackend, `"port":8000`, `"port":4294967296`),
			"content.request_type.ADD_BACKEND.address.port: 4294967296 out of range for 32-bit unsigned integer"},
		{"negative uint32", edit(recBackend, `"port":8000`, `"port":-1`),
			"content.request_type.ADD_BACKEND.address.port: -1 out of range for 32-bit unsigned integer"},
		{"float for uint32", edit(recBackend, `"port":8000`, `"port":8000.0`),
			"content.request_type.ADD_BACKEND.address.port: expected integer (uint32), found number 8000.0"},
		{"exponent for uint32", edit(recBackend, `"port":8000`, `"port":8e3`),
			"content.request_type.ADD_BACKEND.address.port: expected integer (uint32), found number 8e3"},
		{"minus zero", edit(recBackend, `"port":8000`, `"port":-0`),
			"content.request_type.ADD_BACKEND.address.port: expected integer (uint32), found number -0"},
		{"int32 overflow", edit(recBackend, `"weight":100`, `"weight":2147483648`),
			"content.request_type.ADD_BACKEND.load_balancing_parameters.weight: 2147483648 out of range for 32-bit signed integer"},
		{"uint64 overflow", `{"id":"x","content":{"request_type":{"SET_MAX_CONNECTIONS_PER_IP":18446744073709551616}}}`,
			"content.request_type.SET_MAX_CONNECTIONS_PER_IP: 18446744073709551616 out of range for 64-bit unsigned integer"},
		{"unknown enum number", edit(recFrontend, `"position":2`, `"position":7`),
			"content.request_type.ADD_HTTP_FRONTEND.position: 7 is not a value of enum command.RulePosition"},
		{"enum by name", edit(recFrontend, `"position":2`, `"position":"TREE"`),
			"content.request_type.ADD_HTTP_FRONTEND.position: expected integer (enum command.RulePosition), found string"},
		{"string for bool", edit(recActivate, `"from_scm":false`, `"from_scm":"false"`),
			"content.request_type.ACTIVATE_LISTENER.from_scm: expected boolean, found string"},
		{"number for string", `{"id":7,"content":{}}`, "id: expected string, found number 7"},
		{"byte out of range", edit(udpCluster, `[0,255]`, `[0,256]`),
			"content.request_type.ADD_CLUSTER.udp.health.udp_probe_payload[1]: 256 out of range for 8-bit unsigned integer"},
		{"bytes as string", edit(udpCluster, `[0,255]`, `"AP8="`),
			"content.request_type.ADD_CLUSTER.udp.health.udp_probe_payload: expected array of integers 0-255, found string"},
		{"record not an object", `[]`, "expected object, found array"},
		{"duplicate field", `{"id":"a","id":"b","content":{}}`, `duplicate key "id"`},

		// JSON syntax.
		{"empty", ``, "invalid JSON at byte 0 of the record: unexpected end of record, expected a value"},
		{"trailing comma", `{"id":"x",}`, "invalid JSON at byte 10 of the record: unexpected character '}', expected an object key"},
		{"two values", `{} {}`, "invalid JSON at byte 3 of the record: unexpected character '{' after the JSON value"},
		{"leading zero", `{"id":01}`, "invalid JSON at byte 7 of the record: unexpected character '1', expected ',' or '}'"},
		{"raw control character", "{\"id\":\"a\x01\"}", "invalid JSON at byte 8 of the record: control character 0x01 in string (must be escaped)"},
		{"invalid UTF-8", "{\"id\":\"a\xff\"}", "invalid JSON at byte 8 of the record: invalid UTF-8 in string"},
		{"lone surrogate", `{"id":"\ud800"}`, `invalid JSON at byte 13 of the record: lone leading surrogate in \u escape`},
		{"bad escape", `{"id":"\x41"}`, `invalid JSON at byte 7 of the record: invalid escape "\\x"`},
		{"deep nesting", `{"x":` + strings.Repeat("[", 200), "invalid JSON at byte 132 of the record: nesting deeper than 128 levels"},
		{"single quotes", `{'id':'x'}`, "invalid JSON at byte 1 of the record: unexpected character '\\'', expected an object key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m command.WorkerRequest
			err := Unmarshal([]byte(tc.in), &m)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want error %q", tc.wantErr)
			}
			if err.Error() != tc.wantErr {
				t.Fatalf("error:\n got %q\nwant %q", err, tc.wantErr)
			}
			var fe *FieldError
			var se *SyntaxError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Errorf("error %T is neither *FieldError nor *SyntaxError", err)
			}
		})
	}
}

// TestUnmarshalLeavesTargetOnError checks the documented contract.
func TestUnmarshalLeavesTargetOnError(t *testing.T) {
	m := &command.WorkerRequest{Id: proto.String("keep")}
	if err := Unmarshal([]byte(`{"id":"new"}`), m); err == nil {
		t.Fatal("accepted a record without content")
	}
	if m.GetId() != "keep" {
		t.Fatalf("target changed to %v", m)
	}
	if err := Unmarshal([]byte(recActivate), m); err != nil || m.GetId() != "SAVE-1" {
		t.Fatalf("Unmarshal = %v, id %q", err, m.GetId())
	}
}

func TestDecodedValues(t *testing.T) {
	in := `{"id":"\u00e9\ud83d\ude00\/\"\\\b\f\n\r\t\u0000\u001F","content":{"request_type":{"ADD_CERTIFICATE":{"address":{"ip":{"inner":{"V6":{"low":1,"high":2306139568115548160}}},"port":443},"certificate":{"certificate":"c","certificate_chain":[],"key":"k","versions":[],"names":[]},"expired_at":-9223372036854775808}}}}`
	var m command.WorkerRequest
	if err := Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if want := "é😀/\"\\\b\f\n\r\t\x00\x1f"; m.GetId() != want {
		t.Errorf("id = %q, want %q", m.GetId(), want)
	}
	ac := m.GetContent().GetAddCertificate()
	if ap, _ := ac.GetAddress().AddrPort(); ap.String() != "[2001:db8::1]:443" {
		t.Errorf("address = %s, want [2001:db8::1]:443", ap)
	}
	if ac.GetExpiredAt() != -9223372036854775808 {
		t.Errorf("expired_at = %d", ac.GetExpiredAt())
	}
	out, err := Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	// Re-encoded the serde_json way: non-ASCII and '/' raw, short escapes
	// for \b \f \n \r \t, lowercase \u00xx for other control characters.
	wantID := `{"id":"é😀/\"\\\b\f\n\r\t\u0000\u001f",`
	if !strings.HasPrefix(string(out), wantID) {
		t.Errorf("Marshal = %s, want prefix %s", out, wantID)
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   *command.WorkerRequest
		want string
	}{
		{"empty record: required fields get defaults", &command.WorkerRequest{},
			`{"id":"","content":{"request_type":null}}`},
		{"scalar variant", &command.WorkerRequest{Id: proto.String("SAVE-0"), Content: &command.Request{
			RequestType: &command.Request_SetMaxConnectionsPerIp{SetMaxConnectionsPerIp: 1<<64 - 1}}},
			`{"id":"SAVE-0","content":{"request_type":{"SET_MAX_CONNECTIONS_PER_IP":18446744073709551615}}}`},
		{"capitalised field name", &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_Logging{Logging: "info"}}},
			`{"id":"a","content":{"request_type":{"LOGGING":"info"}}}`},
		{"enum variant", &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: command.MetricsConfiguration(1)}}},
			`{"id":"a","content":{"request_type":{"CONFIGURE_METRICS":1}}}`},
		{"empty message variant", &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_Status{Status: &command.Status{}}}},
			`{"id":"a","content":{"request_type":{"STATUS":{}}}}`},
		{"declared defaults of unset required fields", &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_SetHealthCheck{SetHealthCheck: &command.SetHealthCheck{ClusterId: proto.String("c")}}}},
			`{"id":"a","content":{"request_type":{"SET_HEALTH_CHECK":{"cluster_id":"c","config":{"uri":"","interval":10,"timeout":5,"healthy_threshold":3,"unhealthy_threshold":3,"expected_status":0}}}}}`},
		{"unset required enum uses declared default, unset address reads 0.0.0.0", &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_AddTcpFrontend{AddTcpFrontend: &command.RequestTcpFrontend{ClusterId: proto.String("c")}}}},
			`{"id":"a","content":{"request_type":{"ADD_TCP_FRONTEND":{"cluster_id":"c","address":{"ip":{"inner":null},"port":0},"tags":{}}}}}`},
		{"map keys sorted, IPv6", &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: &command.RequestUdpFrontend{
				ClusterId: proto.String("c"),
				Address:   mustAddr(t, "[2001:db8::1]:443"),
				Tags:      map[string]string{"b": "2", "a": "1", "B": "0", "é": "3"},
			}}}},
			`{"id":"a","content":{"request_type":{"ADD_UDP_FRONTEND":{"cluster_id":"c","address":{"ip":{"inner":{"V6":{"low":1,"high":2306139568115548160}}},"port":443},"tags":{"B":"0","a":"1","b":"2","é":"3"}}}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Marshal:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func mustAddr(t *testing.T, s string) *command.SocketAddress {
	t.Helper()
	a, err := command.ParseSocketAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMarshalErrors(t *testing.T) {
	cluster := func(c *command.Cluster) *command.WorkerRequest {
		return &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_AddCluster{AddCluster: c}}}
	}
	tests := []struct {
		name string
		in   *command.WorkerRequest
		want string
	}{
		{"nil", nil, "statefile: cannot marshal a nil WorkerRequest"},
		{"invalid UTF-8", &command.WorkerRequest{Id: proto.String("a\xff")}, "id: string is not valid UTF-8"},
		{"invalid UTF-8 map key", cluster(&command.Cluster{Answers: map[string]string{"\xfe": "x"}}),
			`content.request_type.ADD_CLUSTER.answers["\xfe"]: map key is not valid UTF-8`},
		{"unknown enum number", cluster(&command.Cluster{LoadBalancing: command.LoadBalancingAlgorithms(99).Enum()}),
			"content.request_type.ADD_CLUSTER.load_balancing: 99 is not a value of enum command.LoadBalancingAlgorithms"},
		{"record too large", cluster(&command.Cluster{ClusterId: proto.String(strings.Repeat("x", MaxRecordSize))}),
			`state file record "a" is 1048951 bytes, over the 1048576-byte limit`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := NewEncoder(&buf).Encode(tc.in)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Encode wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

// TestUint64Extremes checks that 64-bit values survive a round trip exactly
// (a float64 path would round 2^64-1 to 2^64).
func TestUint64Extremes(t *testing.T) {
	for _, v := range []uint64{0, 1<<53 + 1, 1<<63 - 1, 1 << 63, 1<<64 - 2, 1<<64 - 1} {
		in := &command.WorkerRequest{Id: proto.String("a"), Content: &command.Request{
			RequestType: &command.Request_AddBackend{AddBackend: &command.AddBackend{
				ClusterId: proto.String("c"), BackendId: proto.String("b"),
				Address: &command.SocketAddress{Ip: &command.IpAddress{Inner: &command.IpAddress_V6{
					V6: &command.Uint128{Low: proto.Uint64(v), High: proto.Uint64(^v)}}}, Port: proto.Uint32(1)},
			}}}}
		b, err := Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out command.WorkerRequest
		if err := Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(in, &out) {
			t.Errorf("%d: round trip gave %v", v, &out)
		}
	}
}

func TestDecoder(t *testing.T) {
	sep := Separator
	big := `{"id":"big","content":{"request_type":{"REMOVE_CLUSTER":"` + strings.Repeat("c", 10_000) + `"}}}`
	tests := []struct {
		name    string
		in      string
		oneByte bool
		want    []string // ids of the records read before the end
		wantErr string   // "" = clean io.EOF
	}{
		{name: "empty file", in: ""},
		{name: "upstream layout", in: recListener + sep + recActivate + sep, want: []string{"SAVE-0", "SAVE-1"}},
		{name: "NUL-only separators", in: recListener + "\x00" + recActivate + "\x00", want: []string{"SAVE-0", "SAVE-1"}},
		{name: "whitespace around records", in: "\n " + recListener + " \r\n\t\x00\n" + recActivate + "\n\n\x00", want: []string{"SAVE-0", "SAVE-1"}},
		{name: "one byte at a time, record over the read buffer", in: recListener + sep + big + sep, oneByte: true, want: []string{"SAVE-0", "big"}},
		{name: "double NUL", in: recListener + "\n\x00\x00" + recActivate + sep, want: []string{"SAVE-0"},
			wantErr: "state file record 2 (byte offset 229): empty record (two separators in a row, or whitespace only)"},
		{name: "whitespace-only record", in: recListener + sep + " \n\x00", want: []string{"SAVE-0"},
			wantErr: "state file record 2 (byte offset 229): empty record (two separators in a row, or whitespace only)"},
		{name: "NUL first", in: "\x00" + recListener + sep,
			wantErr: "state file record 1 (byte offset 0): empty record (two separators in a row, or whitespace only)"},
		{name: "newline after the final NUL", in: recListener + sep + recActivate + sep + "\n", want: []string{"SAVE-0", "SAVE-1"},
			wantErr: `state file record 3 (byte offset 372): data after the last NUL separator: "\n"`},
		{name: "lone newline", in: "\n", wantErr: `state file record 1 (byte offset 0): data after the last NUL separator: "\n"`},
		{name: "unterminated last record", in: recListener + sep + recActivate, want: []string{"SAVE-0"},
			wantErr: "state file record 2 (byte offset 229): record not terminated by a NUL byte (truncated file?)"},
		{name: "unterminated with newline", in: recListener + "\n", wantErr: "state file record 1 (byte offset 0): record not terminated by a NUL byte (truncated file?)"},
		{name: "bad record stops the load", in: recListener + sep + edit(recCluster, `"cluster_id":"shop",`, "") + sep + recActivate + sep,
			want:    []string{"SAVE-0"},
			wantErr: "state file record 2 (byte offset 229): content.request_type.ADD_CLUSTER.cluster_id: required field missing"},
		{name: "syntax error", in: recListener + sep + `{"id":` + sep, want: []string{"SAVE-0"},
			wantErr: "state file record 2 (byte offset 229): invalid JSON at byte 7 of the record: unexpected end of record, expected a value"},
		{name: "record too large", in: `{"id":"` + strings.Repeat("x", MaxRecordSize) + `"}` + sep,
			wantErr: "state file record 1 (byte offset 0): record longer than 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tc.in)
			if tc.oneByte {
				r = iotest.OneByteReader(r)
			}
			d := NewDecoder(r)
			var ids []string
			var err error
			for {
				var m *command.WorkerRequest
				if m, err = d.Next(); err != nil {
					break
				}
				ids = append(ids, m.GetId())
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Errorf("records = %q, want %q", ids, tc.want)
			}
			if tc.wantErr == "" {
				if err != io.EOF {
					t.Fatalf("error = %v, want io.EOF", err)
				}
			} else {
				var re *RecordError
				if !errors.As(err, &re) || err.Error() != tc.wantErr {
					t.Fatalf("error:\n got %T %q\nwant %q", err, err, tc.wantErr)
				}
			}
			if _, again := d.Next(); again != err {
				t.Errorf("Next after the end = %v, want the same error %v", again, err)
			}
		})
	}
}

func TestRecordErrorUnwrap(t *testing.T) {
	d := NewDecoder(strings.NewReader(recListener))
	_, err := d.Next()
	if !errors.Is(err, ErrUnterminated) {
		t.Fatalf("errors.Is(%v, ErrUnterminated) = false", err)
	}
	d = NewDecoder(strings.NewReader(`{"id":1}` + Separator))
	_, err = d.Next()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "id" {
		t.Fatalf("error %v does not wrap a FieldError for id", err)
	}
}

func TestEncoderLayout(t *testing.T) {
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for _, s := range []string{recListener, recActivate} {
		var m command.WorkerRequest
		if err := Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		if err := e.Encode(&m); err != nil {
			t.Fatal(err)
		}
	}
	if want := recListener + "\n\x00" + recActivate + "\n\x00"; buf.String() != want {
		t.Fatalf("Encoder wrote %q, want %q", buf.String(), want)
	}
}
