package supervisor_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
	"github.com/sozu-go/sozu/proto/statefile"
)

func loadStateReq(path string) *command.Request {
	return &command.Request{RequestType: &command.Request_LoadState{LoadState: path}}
}

func saveStateReq(path string) *command.Request {
	return &command.Request{RequestType: &command.Request_SaveState{SaveState: path}}
}

// rawConn is a command-socket connection whose answers are awaited with a
// deadline and reported as errors, so that a test can assert that an
// answer comes promptly (sozutest.Client fails the test after 30 s).
type rawConn struct {
	conn net.Conn
	r    *frame.Reader
}

func dialRaw(t *testing.T, sock string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{conn: c, r: frame.NewReader(c, frame.DefaultMaxSize)}
}

// do sends req and waits at most d for its terminal answer.
func (c *rawConn) do(req *command.Request, d time.Duration) (*command.Response, error) {
	c.conn.SetDeadline(time.Now().Add(d))
	defer c.conn.SetDeadline(time.Time{})
	if err := frame.WriteMessage(c.conn, req, frame.DefaultMaxSize); err != nil {
		return nil, fmt.Errorf("sending %s: %w", command.VerbName(req), err)
	}
	for {
		resp := &command.Response{}
		if err := c.r.ReadMessage(resp); err != nil {
			return nil, fmt.Errorf("reading the answer to %s: %w", command.VerbName(req), err)
		}
		if resp.GetStatus() != command.ResponseStatus_PROCESSING {
			return resp, nil
		}
	}
}

// workerPids returns the pid of each worker, by id, from status.
func workerPids(t *testing.T, c *rawConn) map[uint32]int32 {
	t.Helper()
	resp, err := c.do(statusReq, 10*time.Second)
	if err != nil || resp.GetStatus() != command.ResponseStatus_OK {
		t.Fatalf("status: %v %v", err, resp)
	}
	pids := map[uint32]int32{}
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		if w.GetRunState() != command.RunState_RUNNING {
			t.Errorf("worker %d is %v", w.GetId(), w.GetRunState())
		}
		pids[w.GetId()] = w.GetPid()
	}
	return pids
}

// TestLoadStateFIFORefused: load_state of a FIFO answers at once that it is
// not a regular file, whether or not a writer holds the FIFO open (with
// one, opening succeeds and a read would block forever); other clients are
// served meanwhile.
func TestLoadStateFIFORefused(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 1, "")
	p := startProxy(t, dir, cfg, sock)

	for _, tt := range []struct {
		name   string
		writer bool
	}{{"no writer", false}, {"writer holding it open", true}} {
		t.Run(tt.name, func(t *testing.T) {
			fifo := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".fifo")
			if err := unix.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.writer {
				// O_RDWR does not block, and keeps a writer on the FIFO
				// that never writes.
				f, err := os.OpenFile(fifo, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			loader := dialRaw(t, sock)
			done := make(chan struct{})
			var resp *command.Response
			var err error
			go func() {
				defer close(done)
				resp, err = loader.do(loadStateReq(fifo), 5*time.Second)
			}()
			other := dialRaw(t, sock)
			if r, err := other.do(statusReq, 3*time.Second); err != nil || r.GetStatus() != command.ResponseStatus_OK {
				t.Errorf("status during the load of a FIFO: %v %v", err, r)
			}
			<-done
			if err != nil {
				t.Fatalf("load_state of a FIFO: %v", err)
			}
			want := fifo + " is not a regular file"
			if resp.GetStatus() != command.ResponseStatus_FAILURE || !strings.Contains(resp.GetMessage(), want) {
				t.Errorf("load_state of a FIFO: %v %q; want FAILURE containing %q", resp.GetStatus(), resp.GetMessage(), want)
			}
		})
	}
	if !p.Alive() {
		t.Fatal("the supervisor died")
	}
}

// writeBigState writes a state file of n clusters, each with a frontend
// and two backends on the HTTP listener at addr: 4n records.
func writeBigState(t *testing.T, path, addr string, n int) int {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	enc := statefile.NewEncoder(bw)
	records := 0
	put := func(r *command.Request) {
		if err := enc.Encode(&command.WorkerRequest{Id: proto.String(fmt.Sprintf("SAVE-%d", records)), Content: r}); err != nil {
			t.Fatal(err)
		}
		records++
	}
	for i := range n {
		id := fmt.Sprintf("c%05d", i)
		put(addCluster(id))
		put(addFrontend(id, addr, id+".example.com", "/"))
		put(addBackend(id, id+"-0", fmt.Sprintf("10.%d.%d.1:80", i/250, i%250)))
		put(addBackend(id, id+"-1", fmt.Sprintf("10.%d.%d.2:80", i/250, i%250)))
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return records
}

// TestLoadStateLargeFileKeepsControlPlane: a 20 000-record state file loads
// fully into two workers without killing either (their queues hold 4096
// requests), and another client's status answers promptly while it loads.
func TestLoadStateLargeFileKeepsControlPlane(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, port := writeConfig(t, dir, 2, "")
	// The workers' answers are not what is timed here: under the race
	// detector on a loaded 2-core machine a window of the load took a
	// worker over writeConfig's 5 s, and the load then reports errors.
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, bytes.Replace(data, []byte("worker_timeout = 5"), []byte("worker_timeout = 30"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, dir, cfg, sock)
	path := filepath.Join(dir, "big.state")
	const clusters = 5000
	if n := writeBigState(t, path, fmt.Sprintf("127.0.0.1:%d", port), clusters); n != 20000 {
		t.Fatalf("%d records written", n)
	}

	control := dialRaw(t, sock)
	before := workerPids(t, control)
	if len(before) != 2 {
		t.Fatalf("workers before: %v", before)
	}

	// Every event of the load, to find WORKER_KILLED or WORKER_RELAUNCHED.
	events := dialRaw(t, sock)
	if err := frame.WriteMessage(events.conn, &command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}, frame.DefaultMaxSize); err != nil {
		t.Fatal(err)
	}
	var evMu sync.Mutex
	var bad []string
	go func() {
		for {
			resp := &command.Response{}
			if events.r.ReadMessage(resp) != nil {
				return
			}
			if k := resp.GetContent().GetEvent().GetKind(); k == command.EventKind_WORKER_KILLED || k == command.EventKind_WORKER_RELAUNCHED {
				evMu.Lock()
				bad = append(bad, k.String())
				evMu.Unlock()
			}
		}
	}()

	loader := dialRaw(t, sock)
	done := make(chan struct{})
	var resp *command.Response
	var loadErr error
	start := time.Now()
	go func() {
		defer close(done)
		resp, loadErr = loader.do(loadStateReq(path), 5*time.Minute)
	}()

	// While it loads, status answers within a couple of seconds. A worker
	// answers status between two snapshot rebuilds, each as large as the
	// state; the race detector makes them several times slower.
	bound := 2 * time.Second
	if raceEnabled {
		bound = 10 * time.Second
	}
	probes, slowest := 0, time.Duration(0)
probe:
	for {
		select {
		case <-done:
			break probe
		default:
		}
		t0 := time.Now()
		r, err := control.do(statusReq, bound)
		if err != nil || r.GetStatus() != command.ResponseStatus_OK {
			t.Fatalf("status %d during the load (after %v): %v %v", probes+1, time.Since(start), err, r)
		}
		probes++
		slowest = max(slowest, time.Since(t0))
		select {
		case <-done:
			break probe
		case <-time.After(100 * time.Millisecond): // pacing of the probes, not a synchronisation
		}
	}
	t.Logf("loaded in %v; %d status probes meanwhile, slowest %v", time.Since(start), probes, slowest)
	if loadErr != nil {
		t.Fatalf("load_state: %v", loadErr)
	}
	if resp.GetStatus() != command.ResponseStatus_OK || !strings.Contains(resp.GetMessage(), "20000 ok messages, 0 errors") {
		t.Fatalf("load_state: %v %q", resp.GetStatus(), resp.GetMessage())
	}
	if probes == 0 {
		t.Error("the load ended before any status probe: the test proves nothing")
	}

	// Every worker holds every cluster, and no worker was replaced.
	cl := dial(t, sock)
	assertAgree(t, hashes(t, cl), 2, clusters)
	if after := workerPids(t, control); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("worker pids changed during the load: %v, then %v", before, after)
	}
	// The subscription saw every event emitted before this status: give
	// the event stream the time of one more round trip.
	control.do(statusReq, 10*time.Second)
	evMu.Lock()
	defer evMu.Unlock()
	if len(bad) > 0 {
		t.Errorf("events during the load: %v", bad)
	}
	if out := p.Out.String(); strings.Contains(out, "request queue full") {
		t.Error("a worker queue filled up during the load (see the log)")
	}
}

// fileID is a file's device and inode, to tell it was not replaced.
func fileID(t *testing.T, path string) [2]uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{st.Dev, st.Ino}
}

// TestLoadStateRecordsEachRecord: a client's load_state changes the
// state as the requests of the file would one by one; each is in the
// audit trail as that request, with an attempt and a completion record
// naming the load (its ULID) and the record's place in the file, the
// state's refusal of a record included. A load is not a way to add a
// cluster that the trail does not name.
func TestLoadStateRecordsEachRecord(t *testing.T) {
	_, sock, jsonPath := auditStart(t, "")
	root := sozutest.Dial(t, sock)
	addCluster := func(id string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: proto.String(id)}}}
	}
	root.MustOK(t, addCluster("kept"))
	root.MustOK(t, &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
		ClusterId: proto.String("kept"), Address: command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:9")), Hostname: proto.String("kept.test")}}})
	root.MustOK(t, addCluster("slipped"))
	path := filepath.Join(t.TempDir(), "state.json")
	root.MustOK(t, &command.Request{RequestType: &command.Request_SaveState{SaveState: path}})
	root.MustOK(t, &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: "slipped"}})
	root.MustOK(t, &command.Request{RequestType: &command.Request_LoadState{LoadState: path}})

	var loadULID string
	attempts, completions := map[string]map[string]any{}, map[string]map[string]any{}
	for _, r := range auditLines(t, jsonPath) {
		if r["verb"] == "state.load" && r["code"] == "SZ1000" {
			loadULID, _ = r["request_ulid"].(string)
		}
		reason, _ := r["reason"].(string)
		if !strings.HasPrefix(reason, "state load ") {
			continue
		}
		id, _ := r["cluster_id"].(string)
		if r["verb"] == "frontend.http.add" {
			id = "frontend " + id
		}
		switch r["code"] {
		case "SZ1000":
			attempts[id] = r
		case "SZ1001":
			completions[id] = r
		}
	}
	if loadULID == "" {
		t.Fatal("no attempt record of the load")
	}
	for _, id := range []string{"kept", "slipped"} {
		a, c := attempts[id], completions[id]
		if a == nil || c == nil {
			t.Errorf("cluster %s of the state file: attempt %v, completion %v; want both", id, a, c)
			continue
		}
		if a["verb"] != "cluster.add" || a["request_ulid"] != c["request_ulid"] || !strings.HasPrefix(a["reason"].(string), "state load "+loadULID+" record ") {
			t.Errorf("cluster %s: attempt %v, completion %v", id, a, c)
		}
	}
	// The frontend was there already: the state refused it, and says so.
	if c := completions["frontend kept"]; c == nil || c["result"] != "err" || !strings.Contains(fmt.Sprint(c["reason"]), "skipped") {
		t.Errorf("the refused record's completion: %v", c)
	}
	if c := completions["slipped"]; c != nil && c["result"] != "ok" {
		t.Errorf("the applied record's completion: %v", c)
	}
}
