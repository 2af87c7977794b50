package supervisor_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

func req[T any](set func(*command.Request, T), v T) *command.Request {
	r := &command.Request{}
	set(r, v)
	return r
}

func addCluster(id string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
		ClusterId: proto.String(id), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false),
		LoadBalancing: command.LoadBalancingAlgorithms_ROUND_ROBIN.Enum()}}}
}

func addFrontend(cluster, addr, host, path string) *command.Request {
	sa, _ := command.ParseSocketAddress(addr)
	return &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
		ClusterId: proto.String(cluster), Address: sa, Hostname: proto.String(host),
		Path:     &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String(path)},
		Position: command.RulePosition_TREE.Enum()}}}
}

func addBackend(cluster, id, addr string) *command.Request {
	sa, _ := command.ParseSocketAddress(addr)
	return &command.Request{RequestType: &command.Request_AddBackend{AddBackend: &command.AddBackend{
		ClusterId: proto.String(cluster), BackendId: proto.String(id), Address: sa,
		LoadBalancingParameters: &command.LoadBalancingParams{Weight: proto.Int32(100)}}}}
}

var (
	statusReq  = &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}}
	hashesReq  = &command.Request{RequestType: &command.Request_QueryClustersHashes{QueryClustersHashes: &command.QueryClustersHashes{}}}
	workersReq = &command.Request{RequestType: &command.Request_ListWorkers{ListWorkers: &command.ListWorkers{}}}
)

// hashes returns, per responder ("main" and each worker id), the cluster
// hashes it reports.
func hashes(t *testing.T, c *client) map[string]map[string]uint64 {
	t.Helper()
	resp := c.MustOK(t, hashesReq)
	out := map[string]map[string]uint64{}
	for who, content := range resp.GetContent().GetWorkerResponses().GetMap() {
		out[who] = content.GetClusterHashes().GetMap()
	}
	return out
}

// assertAgree checks that main and every worker report the same hashes,
// with the wanted number of workers and clusters.
func assertAgree(t *testing.T, h map[string]map[string]uint64, workers, clusters int) {
	t.Helper()
	if len(h) != workers+1 {
		t.Fatalf("hashes from %d responders, want main + %d workers: %v", len(h), workers, h)
	}
	main := h["main"]
	if len(main) != clusters {
		t.Fatalf("main has %d clusters, want %d: %v", len(main), clusters, main)
	}
	for who, m := range h {
		if fmt.Sprint(m) != fmt.Sprint(main) {
			t.Errorf("%s reports %v, main reports %v", who, m, main)
		}
	}
}

func runningPIDs(t *testing.T, c *client) map[uint32]int32 {
	t.Helper()
	resp := c.MustOK(t, statusReq)
	out := map[uint32]int32{}
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		if w.GetRunState() == command.RunState_RUNNING {
			out[w.GetId()] = w.GetPid()
		}
	}
	return out
}

func TestWorkersFollowStateAndRelaunch(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, port := writeConfig(t, dir, 2, "")
	p := startProxy(t, dir, cfg, sock)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// Through the CLI, as an operator would.
	p.MustCLI("cluster", "add", "--id", "shop")
	p.MustCLI("cluster", "add", "--id", "blog", "--load-balancing-policy", "random")
	p.MustCLI("frontend", "http", "add", "--address", addr, "--hostname", "shop.example.com", "--id", "shop")
	p.MustCLI("frontend", "http", "add", "--address", addr, "--hostname", "blog.example.com", "--path-prefix", "/posts", "--id", "blog")
	p.MustCLI("backend", "add", "--id", "shop", "--backend-id", "shop-1", "--address", "127.0.0.1:9001")
	p.MustCLI("backend", "add", "--id", "blog", "--backend-id", "blog-1", "--address", "127.0.0.1:9002")

	c := dial(t, sock)
	h := hashes(t, c)
	assertAgree(t, h, 2, 2)

	// The clusters as the workers themselves answer them.
	resp := c.MustOK(t, req(func(r *command.Request, id string) {
		r.RequestType = &command.Request_QueryClusterById{QueryClusterById: id}
	}, "shop"))
	for who, content := range resp.GetContent().GetWorkerResponses().GetMap() {
		vec := content.GetClusters().GetVec()
		if len(vec) != 1 || len(vec[0].GetHttpFrontends()) != 1 || len(vec[0].GetBackends()) != 1 {
			t.Errorf("%s: cluster shop = %v", who, vec)
		}
	}
	// CLI text and JSON agree with the socket.
	out := p.MustCLI("-j", "cluster", "list")
	if !strings.Contains(out, `"cluster_hashes"`) && !strings.Contains(out, `"clusterHashes"`) {
		t.Errorf("cluster list --json: %s", out)
	}

	// kill -9 one worker: a new one, with the same state, within 2 s.
	before := runningPIDs(t, c)
	if len(before) != 2 {
		t.Fatalf("running workers before kill: %v", before)
	}
	var victimID uint32
	var victim int32
	for id, pid := range before {
		victimID, victim = id, pid
		break
	}
	killed := time.Now()
	if err := syscall.Kill(int(victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "a relaunched worker in status", func() bool {
		now := runningPIDs(t, c)
		if len(now) != 2 {
			return false
		}
		for id, pid := range now {
			if pid == victim || id == victimID {
				return false
			}
		}
		return true
	})
	t.Logf("worker relaunched %v after kill -9", time.Since(killed))
	assertAgree(t, hashes(t, c), 2, 2)
	if fmt.Sprint(hashes(t, c)["main"]) != fmt.Sprint(h["main"]) {
		t.Error("cluster hashes changed across the relaunch")
	}
}

func TestSaveLoadStateAcrossSupervisors(t *testing.T) {
	dir1 := t.TempDir()
	cfg1, sock1, port := writeConfig(t, dir1, 1, "")
	startProxy(t, dir1, cfg1, sock1)
	c1 := dial(t, sock1)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := range 5 {
		id := fmt.Sprintf("c%d", i)
		c1.MustOK(t, addCluster(id))
		c1.MustOK(t, addFrontend(id, addr, id+".example.com", "/"))
		c1.MustOK(t, addBackend(id, id+"-0", fmt.Sprintf("10.0.0.%d:80", i+1)))
		c1.MustOK(t, addBackend(id, id+"-1", fmt.Sprintf("[2001:db8::%d]:8080", i+1)))
	}
	statePath := filepath.Join(dir1, "state.json")
	resp := c1.MustOK(t, req(func(r *command.Request, s string) { r.RequestType = &command.Request_SaveState{SaveState: s} }, statePath))
	t.Log(resp.GetMessage())
	want := hashes(t, c1)["main"]

	// A fresh supervisor with the same listener loads it.
	dir2 := t.TempDir()
	sock2 := filepath.Join(dir2, "sozu.sock")
	cfg2 := filepath.Join(dir2, "config.toml")
	os.WriteFile(cfg2, []byte(fmt.Sprintf("command_socket = %q\nworker_count = 2\nworker_timeout = 5\n\n[[listeners]]\nprotocol = \"http\"\naddress = %q\n", sock2, "127.0.0.1:"+fmt.Sprint(freePort(t)))), 0o600)
	startProxy(t, dir2, cfg2, sock2)
	c2 := dial(t, sock2)
	progress, final := c2.Do(t, req(func(r *command.Request, s string) { r.RequestType = &command.Request_LoadState{LoadState: s} }, statePath))
	if final.GetStatus() != command.ResponseStatus_OK {
		t.Fatalf("load_state: %q after %q", final.GetMessage(), progress)
	}
	h := hashes(t, c2)
	if fmt.Sprint(h["main"]) != fmt.Sprint(want) {
		t.Errorf("hashes after load %v, want %v", h["main"], want)
	}
	assertAgree(t, h, 2, 5)
}

func TestLoadStateMalformedRecordKeepsEarlierRecords(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 1, "")
	startProxy(t, dir, cfg, sock)
	c := dial(t, sock)

	rec := func(id, cluster string) string {
		return fmt.Sprintf(`{"id":%q,"content":{"request_type":{"ADD_CLUSTER":{"cluster_id":%q,"sticky_session":false,"https_redirect":false,"proxy_protocol":null,"load_balancing":0,"answer_503":null,"load_metric":null,"http2":null,"answers":{},"https_redirect_port":null,"authorized_hashes":[],"www_authenticate":null,"max_connections_per_ip":null,"retry_after":null,"health_check":null,"udp":null}}}}`, id, cluster)
	}
	var b bytes.Buffer
	b.WriteString(rec("SAVE-0", "first") + "\n\x00")
	b.WriteString(rec("SAVE-1", "second") + "\n\x00")
	b.WriteString(`{"id":"SAVE-2","content":{"request_type":{"ADD_CLUSTER":{"sticky_session":"yes"}}}}` + "\n\x00")
	b.WriteString(rec("SAVE-3", "never") + "\n\x00")
	path := filepath.Join(dir, "bad.state")
	os.WriteFile(path, b.Bytes(), 0o600)

	_, final := c.Do(t, req(func(r *command.Request, s string) { r.RequestType = &command.Request_LoadState{LoadState: s} }, path))
	if final.GetStatus() != command.ResponseStatus_FAILURE {
		t.Fatalf("load of a malformed state: %v %q", final.GetStatus(), final.GetMessage())
	}
	if !strings.Contains(final.GetMessage(), "record 3") {
		t.Errorf("the failure does not name record 3: %q", final.GetMessage())
	}
	h := hashes(t, c)
	assertAgree(t, h, 1, 2)
	if _, ok := h["main"]["first"]; !ok {
		t.Errorf("record 1 was not kept: %v", h["main"])
	}
	if _, ok := h["main"]["never"]; ok {
		t.Errorf("a record after the malformed one was applied: %v", h["main"])
	}
}

func TestBadFramesDoNotHurtTheSupervisor(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 1, "")
	p := startProxy(t, dir, cfg, sock)

	random := make([]byte, 1<<20)
	rand.Read(random)
	prefix := func(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
	cases := []struct {
		name string
		data []byte
		want string // in the FAILURE message, if one is expected
	}{
		{"1 MiB of random bytes", random, ""},
		{"length prefix of 7", prefix(7), "invalid frame"},
		{"length prefix of 2^40", prefix(1 << 40), "invalid frame"},
		{"undecodable payload", append(prefix(12), 0xff, 0xff, 0xff, 0xff), "invalid frame"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			// The supervisor may close while we still write: not an error.
			go conn.Write(tc.data)
			got, _ := io.ReadAll(conn) // it must close the connection
			if tc.want != "" && !bytes.Contains(got, []byte(tc.want)) {
				t.Errorf("answer %q lacks %q", got, tc.want)
			}
			// The next client is served.
			c := dial(t, sock)
			c.MustOK(t, workersReq)
		})
	}
	select {
	case <-p.Done:
		t.Fatalf("supervisor exited: %v", p.WaitErr)
	default:
	}
}

func TestNotImplementedAndEmptyRequests(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 1, "")
	startProxy(t, dir, cfg, sock)
	c := dial(t, sock)
	_, r := c.Do(t, &command.Request{RequestType: &command.Request_SetMetricDetail{SetMetricDetail: &command.SetMetricDetail{ClientId: proto.String("x")}}})
	if r.GetStatus() != command.ResponseStatus_FAILURE || r.GetMessage() != "not implemented: set_metric_detail" {
		t.Errorf("set_metric_detail: %v %q", r.GetStatus(), r.GetMessage())
	}
	_, r = c.Do(t, &command.Request{})
	if r.GetStatus() != command.ResponseStatus_FAILURE {
		t.Errorf("empty request: %v %q", r.GetStatus(), r.GetMessage())
	}
	// The connection is still usable, and requests are answered in order.
	c.MustOK(t, workersReq)
	_, r = c.Do(t, &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: "ghost"}})
	if want := "could not dispatch request on the main process state: Did not find Cluster with address or id 'ghost'"; r.GetMessage() != want {
		t.Errorf("remove_cluster ghost: %q, want %q", r.GetMessage(), want)
	}
}

func TestWorkerTimeoutFailsTheVerb(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 2, "")
	// worker_timeout = 5 in writeConfig; shorten it for this test.
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(data, []byte("worker_timeout = 5"), []byte("worker_timeout = 1"), 1), 0o600)
	startProxy(t, dir, cfg, sock)
	c := dial(t, sock)
	pids := runningPIDs(t, c)
	var stoppedID uint32
	var stopped int32
	for id, pid := range pids {
		stoppedID, stopped = id, pid
		break
	}
	syscall.Kill(int(stopped), syscall.SIGSTOP)
	defer syscall.Kill(int(stopped), syscall.SIGCONT)
	// kill(2) returns before every thread of the worker has stopped: wait
	// for the kernel to say the process is stopped (state T).
	waitFor(t, 5*time.Second, fmt.Sprintf("worker pid %d stopped", stopped), func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", stopped))
		if err != nil {
			return false
		}
		_, rest, ok := strings.Cut(string(st), ") ")
		return ok && strings.HasPrefix(rest, "T")
	})

	_, r := c.Do(t, addCluster("late"))
	if r.GetStatus() != command.ResponseStatus_FAILURE || !strings.Contains(r.GetMessage(), fmt.Sprintf("worker %d did not answer", stoppedID)) {
		t.Fatalf("add_cluster with a stopped worker: %v %q", r.GetStatus(), r.GetMessage())
	}
	resp := c.MustOK(t, workersReq)
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		if w.GetId() == stoppedID && w.GetRunState() != command.RunState_NOT_ANSWERING {
			t.Errorf("worker %d is %v, want NOT_ANSWERING", stoppedID, w.GetRunState())
		}
	}
	// Resumed, it catches up (its queue kept the request) and answers again.
	syscall.Kill(int(stopped), syscall.SIGCONT)
	waitFor(t, 5*time.Second, "the resumed worker to answer status", func() bool {
		return len(runningPIDs(t, c)) == 2
	})
	assertAgree(t, hashes(t, c), 2, 1)
}

func TestAutomaticStateSave(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "saved.state")
	cfg, sock, _ := writeConfig(t, dir, 1, fmt.Sprintf("saved_state = %q\nautomatic_state_save = true", saved))
	p := startProxy(t, dir, cfg, sock)
	c := dial(t, sock)
	c.MustOK(t, addCluster("persisted"))
	data, err := os.ReadFile(saved)
	if err != nil || !bytes.Contains(data, []byte(`"cluster_id":"persisted"`)) {
		t.Fatalf("saved state after add_cluster: %v %q", err, data)
	}
	// A restart loads it back.
	c.MustOK(t, &command.Request{RequestType: &command.Request_HardStop{HardStop: &command.HardStop{}}})
	<-p.Done
	p2 := startProxy(t, dir, cfg, sock)
	_ = p2
	c2 := dial(t, sock)
	if _, ok := hashes(t, c2)["main"]["persisted"]; !ok {
		t.Error("saved_state was not loaded at start")
	}
}

func TestStopVerbs(t *testing.T) {
	for _, soft := range []bool{true, false} {
		t.Run(fmt.Sprintf("soft=%v", soft), func(t *testing.T) {
			dir := t.TempDir()
			cfg, sock, _ := writeConfig(t, dir, 2, "")
			p := startProxy(t, dir, cfg, sock)
			c := dial(t, sock)
			pids := runningPIDs(t, c)
			r := &command.Request{RequestType: &command.Request_HardStop{HardStop: &command.HardStop{}}}
			if soft {
				r = &command.Request{RequestType: &command.Request_SoftStop{SoftStop: &command.SoftStop{}}}
			}
			progress, final := c.Do(t, r)
			if final.GetStatus() != command.ResponseStatus_OK || len(progress) == 0 {
				t.Fatalf("stop: %v %q after %q", final.GetStatus(), final.GetMessage(), progress)
			}
			if !strings.HasPrefix(final.GetMessage(), "Successfully closed 2 workers, 0 errors") {
				t.Errorf("stop message %q", final.GetMessage())
			}
			// OK comes once the workers have exited.
			for _, pid := range pids {
				if err := syscall.Kill(int(pid), 0); err == nil {
					// It may still be a zombie for a moment only if unreaped;
					// the supervisor reaps before answering.
					t.Errorf("worker pid %d still exists after OK", pid)
				}
			}
			select {
			case <-p.Done:
			case <-time.After(10 * time.Second):
				t.Fatal("supervisor did not exit after the stop verb")
			}
			if _, err := os.Stat(sock); err == nil {
				t.Error("command socket left behind")
			}
		})
	}
}

func TestCommandSocketRefusals(t *testing.T) {
	t.Run("world-writable directory", func(t *testing.T) {
		dir := t.TempDir()
		sockDir := filepath.Join(dir, "open")
		os.Mkdir(sockDir, 0o777)
		os.Chmod(sockDir, 0o777)
		cfg, _, _ := writeConfig(t, dir, 1, "")
		data, _ := os.ReadFile(cfg)
		data = bytes.Replace(data, []byte(filepath.Join(dir, "sozu.sock")), []byte(filepath.Join(sockDir, "sozu.sock")), 1)
		os.WriteFile(cfg, data, 0o600)
		out, code := runStartExpectExit(t, dir, cfg)
		if code == 0 || !strings.Contains(out, "world-writable") {
			t.Errorf("exit %d, output:\n%s", code, out)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		cfg, sock, _ := writeConfig(t, dir, 1, "")
		os.Symlink(filepath.Join(dir, "elsewhere"), sock)
		out, code := runStartExpectExit(t, dir, cfg)
		if code == 0 || !strings.Contains(out, "symbolic link") {
			t.Errorf("exit %d, output:\n%s", code, out)
		}
	})
	t.Run("socket mode", func(t *testing.T) {
		dir := t.TempDir()
		cfg, sock, _ := writeConfig(t, dir, 1, "")
		startProxy(t, dir, cfg, sock)
		fi, err := os.Stat(sock)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode: %v %v", fi.Mode(), err)
		}
	})
}

func runStartExpectExit(t *testing.T, dir, cfg string) (string, int) {
	t.Helper()
	var out sozutest.SyncBuffer
	cmd := exec.Command(sozutest.Bin, "start", "-c", cfg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	err := runWithTimeout(cmd, 20*time.Second)
	code := 0
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return out.String(), code
}

func TestListenersAtRuntime(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 2, "")
	p := startProxy(t, dir, cfg, sock)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	p.MustCLI("listener", "http", "add", "--address", addr)
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatal("an added but inactive listener accepts connections")
	}
	p.MustCLI("listener", "http", "activate", "--address", addr)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("activated listener %s: %v", addr, err)
	}
	conn.Close()

	c := dial(t, sock)
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}})
	l := resp.GetContent().GetListenersList().GetHttpListeners()[addr]
	if l == nil || !l.GetActive() {
		t.Fatalf("list_listeners: %v", resp.GetContent().GetListenersList())
	}

	// A worker relaunched now receives the runtime listener too, and the
	// state it starts from says it is active.
	pids := runningPIDs(t, c)
	for _, pid := range pids {
		syscall.Kill(int(pid), syscall.SIGKILL)
		break
	}
	waitFor(t, 2*time.Second, "the relaunched worker", func() bool {
		now := runningPIDs(t, c)
		if len(now) != 2 {
			return false
		}
		same := 0
		for id := range now {
			if _, ok := pids[id]; ok {
				same++
			}
		}
		return same == 1
	})
	assertAgree(t, hashes(t, c), 2, 0)

	if out := p.MustCLI("listener", "http", "list"); !strings.Contains(out, addr) {
		t.Errorf("listener http list lacks %s:\n%s", addr, out)
	}
	if out := p.MustCLI("listener", "tcp", "list"); strings.Contains(out, addr) {
		t.Errorf("listener tcp list shows the HTTP listener %s:\n%s", addr, out)
	}
	p.MustCLI("listener", "http", "deactivate", "--address", addr)
	waitFor(t, 2*time.Second, "the deactivated listener to refuse connections", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})

	// Binding a port someone else holds fails the verb and leaves the
	// listener inactive.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	p.MustCLI("listener", "http", "add", "--address", busyAddr)
	_, errOut, code := p.CLI("listener", "http", "activate", "--address", busyAddr)
	if code != 1 || !strings.Contains(errOut, "address already in use") {
		t.Errorf("activating a busy address: exit %d, %s", code, errOut)
	}
	resp = c.MustOK(t, &command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}})
	if resp.GetContent().GetListenersList().GetHttpListeners()[busyAddr].GetActive() {
		t.Error("a listener that could not be bound is marked active")
	}
}
