package supervisor_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// This file drives the supervisor with a client built only from
// docs/protocol.md (§1, §3): every byte of every request is written by hand
// here, and the answers are decoded by hand, without our generated code.

// pb is a minimal protobuf writer: tags, varints, length-delimited fields.
type pb []byte

func (b pb) varint(v uint64) pb {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func (b pb) tag(field, wire int) pb { return b.varint(uint64(field<<3 | wire)) }

func (b pb) uint(field int, v uint64) pb { return b.tag(field, 0).varint(v) }

func (b pb) bytes(field int, v []byte) pb {
	return append(b.tag(field, 2).varint(uint64(len(v))), v...)
}

func (b pb) str(field int, s string) pb { return b.bytes(field, []byte(s)) }

func (b pb) fixed32(field int, v uint32) pb {
	b = b.tag(field, 5)
	return binary.LittleEndian.AppendUint32(b, v)
}

// socketAddress is SocketAddress{ip: IpAddress{v4}, port} (docs/protocol.md §3.2).
func socketAddress(a, bb, c, d byte, port uint32) []byte {
	ip := pb{}.fixed32(1, uint32(a)<<24|uint32(bb)<<16|uint32(c)<<8|uint32(d))
	return pb{}.bytes(1, ip).uint(2, uint64(port))
}

// field is one decoded protobuf field.
type field struct {
	num   int
	wire  int
	u     uint64
	bytes []byte
}

// parse decodes one protobuf message into its fields, by hand.
func parse(t *testing.T, b []byte) []field {
	t.Helper()
	var out []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("bad varint in % x", b)
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			f.u, n = binary.Uvarint(b)
			if n <= 0 {
				t.Fatalf("bad varint value")
			}
			b = b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				t.Fatalf("bad length")
			}
			f.bytes = b[n : n+int(l)]
			b = b[n+int(l):]
		case 5:
			f.u = uint64(binary.LittleEndian.Uint32(b))
			b = b[4:]
		case 1:
			f.u = binary.LittleEndian.Uint64(b)
			b = b[8:]
		default:
			t.Fatalf("unexpected wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out
}

// wireResponse is a Response decoded by hand: status (1), message (2),
// content (3).
type wireResponse struct {
	status  uint64
	message string
	content []byte
}

// rawExchange writes one frame (8-byte little-endian length including the
// prefix, then the payload) and reads frames until a terminal status.
func rawExchange(t *testing.T, c net.Conn, payload []byte) (progress []string, final wireResponse) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	frame := binary.LittleEndian.AppendUint64(nil, uint64(8+len(payload)))
	frame = append(frame, payload...)
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	for {
		var prefix [8]byte
		if _, err := io.ReadFull(c, prefix[:]); err != nil {
			t.Fatalf("reading a response prefix: %v", err)
		}
		n := binary.LittleEndian.Uint64(prefix[:])
		if n < 8 || n > 2_000_000 {
			t.Fatalf("response length %d", n)
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		var r wireResponse
		r.status = 2 // proto default of Response.status is FAILURE
		for _, f := range parse(t, body) {
			switch f.num {
			case 1:
				r.status = f.u
			case 2:
				r.message = string(f.bytes)
			case 3:
				r.content = f.bytes
			}
		}
		if r.status == 1 { // PROCESSING
			progress = append(progress, r.message)
			continue
		}
		return progress, r
	}
}

func TestWireContractClient(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, port := writeConfig(t, dir, 2, "")
	startProxy(t, dir, cfg, sock)

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	expectOK := func(name string, payload []byte) wireResponse {
		t.Helper()
		_, r := rawExchange(t, c, payload)
		if r.status != 0 {
			t.Fatalf("%s: status %d, message %q", name, r.status, r.message)
		}
		return r
	}

	// Request.add_cluster (13) = Cluster{cluster_id 1, sticky_session 2,
	// https_redirect 3, load_balancing 5}.
	cluster := pb{}.str(1, "wire").uint(2, 0).uint(3, 0).uint(5, 0)
	expectOK("add_cluster", pb{}.bytes(13, cluster))

	// Request.add_http_frontend (15) = RequestHttpFrontend{cluster_id 1,
	// address 2, hostname 3, path 4 = PathRule{kind 1, value 2}, position 6}.
	front := pb{}.str(1, "wire").bytes(2, socketAddress(127, 0, 0, 1, uint32(port))).
		str(3, "wire.example.com").bytes(4, pb{}.uint(1, 0).str(2, "/")).uint(6, 2)
	expectOK("add_http_frontend", pb{}.bytes(15, front))

	// Request.add_backend (24) = AddBackend{cluster_id 1, backend_id 2,
	// address 3, load_balancing_parameters 5 = {weight 1}}.
	backend := pb{}.str(1, "wire").str(2, "wire-0").bytes(3, socketAddress(10, 0, 0, 10, 8000)).
		bytes(5, pb{}.uint(1, 100))
	expectOK("add_backend", pb{}.bytes(24, backend))

	// A duplicate frontend is refused by the state, with upstream's text.
	_, dup := rawExchange(t, c, pb{}.bytes(15, front))
	want := fmt.Sprintf("could not dispatch request on the main process state: HttpFrontend '127.0.0.1:%d;wire.example.com;P/' already exists", port)
	if dup.status != 2 || dup.message != want {
		t.Errorf("duplicate frontend: status %d message %q, want FAILURE %q", dup.status, dup.message, want)
	}

	// Request.status (12) = Status{}: PROCESSING, then OK with
	// ResponseContent.workers (1) = WorkerInfos{vec 1 = WorkerInfo{id 1,
	// pid 2, run_state 3}}.
	progress, st := rawExchange(t, c, pb{}.bytes(12, nil))
	if st.status != 0 || len(progress) == 0 {
		t.Fatalf("status: %d %q after %q", st.status, st.message, progress)
	}
	var workers int
	for _, f := range parse(t, st.content) {
		if f.num != 1 {
			t.Fatalf("status content has field %d, want workers (1)", f.num)
		}
		for _, info := range parse(t, f.bytes) {
			var pid, runState uint64
			runState = 0
			for _, wf := range parse(t, info.bytes) {
				switch wf.num {
				case 2:
					pid = wf.u
				case 3:
					runState = wf.u
				}
			}
			if pid == 0 || runState != 0 {
				t.Errorf("worker info pid %d run_state %d, want a pid and RUNNING (0)", pid, runState)
			}
			workers++
		}
	}
	if workers != 2 {
		t.Fatalf("status lists %d workers, want 2", workers)
	}

	// Request.save_state (1) = path. The file holds upstream's JSON records,
	// each followed by "\n\0".
	path := filepath.Join(dir, "wire-state.json")
	r := expectOK("save_state", pb{}.str(1, path))
	if !strings.HasPrefix(r.message, "Saved ") || !strings.HasSuffix(r.message, " config messages to "+path) {
		t.Errorf("save_state message %q", r.message)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"ADD_CLUSTER":{"cluster_id":"wire","sticky_session":false,"https_redirect":false,"proxy_protocol":null,"load_balancing":0,`,
		`"hostname":"wire.example.com","path":{"kind":0,"value":"/"},"method":null,"position":2,"tags":{}`,
		`{"ADD_BACKEND":{"cluster_id":"wire","backend_id":"wire-0","address":{"ip":{"inner":{"V4":167772170}},"port":8000},"sticky_id":null,"load_balancing_parameters":{"weight":100},"backup":null}}`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("state file lacks %s\n%s", want, data)
		}
	}
	if !strings.HasSuffix(string(data), "}\n\x00") {
		t.Errorf("state file does not end with a record and \\n\\0: %q", data[max(0, len(data)-8):])
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %04o, want 0600 (it holds private keys)", fi.Mode().Perm())
	}
}
