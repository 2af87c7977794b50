package supervisor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/sirupsen/logrus"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// TestOpenUpgradeBinary checks, on real files, directories and owners,
// which binaries a hot upgrade refuses to execute.
func TestOpenUpgradeBinary(t *testing.T) {
	const nobody = 65534
	content := []byte("#!/bin/sh\nexit 0\n")
	sum := sha256.Sum256(content)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir, bin string)
		fail  string
	}{
		{name: "root-owned 0755 in a 0755 directory", setup: func(t *testing.T, dir, bin string) {}},
		{name: "group-writable binary", setup: func(t *testing.T, dir, bin string) { os.Chmod(bin, 0o775) }, fail: "writable by its group or others"},
		{name: "world-writable binary", setup: func(t *testing.T, dir, bin string) { os.Chmod(bin, 0o757) }, fail: "writable by its group or others"},
		{name: "binary owned by another user", setup: func(t *testing.T, dir, bin string) { os.Chown(bin, nobody, nobody) }, fail: "owned by uid 65534"},
		{name: "not executable", setup: func(t *testing.T, dir, bin string) { os.Chmod(bin, 0o644) }, fail: "not executable"},
		{name: "group-writable directory", setup: func(t *testing.T, dir, bin string) { os.Chmod(dir, 0o775) }, fail: "writable by its group or others"},
		{name: "sticky world-writable directory", setup: func(t *testing.T, dir, bin string) { os.Chmod(dir, 0o1777) }, fail: "writable by its group or others"},
		{name: "directory owned by another user", setup: func(t *testing.T, dir, bin string) { os.Chown(dir, nobody, nobody) }, fail: "owned by uid 65534"},
		{name: "symbolic link", setup: func(t *testing.T, dir, bin string) {
			real := bin + ".real"
			os.Rename(bin, real)
			os.Symlink(real, bin)
		}, fail: "symbolic link"},
		{name: "a directory", setup: func(t *testing.T, dir, bin string) { os.Remove(bin); os.Mkdir(bin, 0o755) }, fail: "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			os.Chmod(top, 0o755)
			dir := filepath.Join(top, "bin")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(dir, "sozu")
			if err := os.WriteFile(bin, content, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir, bin)
			f, got, err := openUpgradeBinary(bin, 0)
			if tc.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fail) || !strings.Contains(err.Error(), bin) && !strings.Contains(err.Error(), dir) {
					t.Fatalf("err %v; want one naming the file and containing %q", err, tc.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got != hex.EncodeToString(sum[:]) {
				t.Fatalf("sha256 %s, want %x", got, sum)
			}
		})
	}
}

func validHandoff() *handoff {
	return &handoff{Version: handoffVersion, OldPID: 10, FDs: 6, Socket: 0,
		Listeners:    []handoffListener{{Kind: 0, Addr: "127.0.0.1:80", FD: 1}},
		Workers:      []handoffWorker{{ID: 3, Slot: 0, PID: 11, Channel: 2, SCM: 3, PIDFD: 4, Logs: 5}},
		NextWorkerID: 4}
}

func TestDecodeHandoff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *handoff)
		fail   string
	}{
		{"valid", func(h *handoff) {}, ""},
		{"other version", func(h *handoff) { h.Version = 2 }, "version 2"},
		{"no old pid", func(h *handoff) { h.OldPID = 0 }, "old_pid"},
		{"descriptor out of range", func(h *handoff) { h.Workers[0].PIDFD = 6 }, "out of 0..5"},
		{"descriptor used twice", func(h *handoff) { h.Listeners[0].FD = 0 }, "used twice"},
		{"negative descriptor", func(h *handoff) { h.Socket = -1 }, "out of"},
		{"worker id beyond next", func(h *handoff) { h.NextWorkerID = 3 }, "beyond next_worker_id"},
		{"duplicate worker", func(h *handoff) {
			h.FDs = 10
			h.Workers = append(h.Workers, handoffWorker{ID: 3, PID: 12, Channel: 6, SCM: 7, PIDFD: 8, Logs: 9})
		}, "duplicate id"},
		{"no descriptors", func(h *handoff) { h.FDs = 0 }, "0 descriptors"},
	} {
		h := validHandoff()
		tc.change(h)
		b, _ := json.Marshal(h)
		_, err := decodeHandoff(b)
		if tc.fail == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.fail) {
			t.Errorf("%s: %v; want an error containing %q", tc.name, err, tc.fail)
		}
	}
	if _, err := decodeHandoff([]byte(`{"version":1,"unknown":1}`)); err == nil {
		t.Error("an unknown field was accepted")
	}
}

func FuzzDecodeHandoff(f *testing.F) {
	b, _ := json.Marshal(validHandoff())
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"old_pid":1,"fds":1,"socket":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHandoff(data)
		if err != nil {
			return
		}
		// Invariant: every index an accepted handoff names is in range
		// and used once.
		seen := map[int]bool{}
		idx := []int{h.Socket}
		for _, l := range h.Listeners {
			idx = append(idx, l.FD)
		}
		for _, w := range h.Workers {
			idx = append(idx, w.Channel, w.SCM, w.PIDFD, w.Logs)
		}
		for _, i := range idx {
			if i < 0 || i >= h.FDs || seen[i] {
				t.Fatalf("accepted handoff with index %d (fds %d, seen %v)", i, h.FDs, seen[i])
			}
			seen[i] = true
		}
	})
}

// TestWorkerChannelHandOver stops a worker channel's reader in the middle
// of a frame, as a hand-over does, and checks that a second reader given
// the unread bytes decodes every frame, none lost or duplicated.
func TestWorkerChannelHandOver(t *testing.T) {
	supEnd, workerEnd := net.Pipe()
	defer supEnd.Close()
	defer workerEnd.Close()
	s := &Supervisor{}
	w := &workerProc{id: 1, conn: supEnd, max: 1 << 20, pending: map[string]*call{}, done: make(chan struct{})}
	var frames [][]byte
	for i := range 6 {
		resp := &command.WorkerResponse{Id: proto.String("id-" + strings.Repeat("x", i*300)), Status: command.ResponseStatus_OK.Enum()}
		var buf bytes.Buffer
		if err := frame.WriteMessage(&buf, resp, 1<<20); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, buf.Bytes())
	}
	all := bytes.Join(frames, nil)
	got := make(chan string, 16)
	for i := range frames {
		id := "id-" + strings.Repeat("x", i*300)
		w.pending[id] = &call{worker: w, id: id, final: make(chan *command.WorkerResponse, 1), progress: make(chan *command.WorkerResponse, 1)}
		go func(c *call) { r := <-c.final; got <- r.GetId() }(w.pending[id])
	}
	w.startReader(s, nil)
	// Two whole frames and half of the third, then the hand-over.
	cut := len(frames[0]) + len(frames[1]) + len(frames[2])/2
	if _, err := workerEnd.Write(all[:cut]); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("the first reader did not deliver the whole frames")
		}
	}
	w.handedOver.Store(true)
	w.conn.SetReadDeadline(time.Unix(1, 0))
	<-w.readerDone
	if len(w.unread) != len(frames[2])/2 {
		t.Fatalf("unread %d bytes, want %d", len(w.unread), len(frames[2])/2)
	}
	w.handedOver.Store(false)
	w.conn.SetReadDeadline(time.Time{})
	w.startReader(s, w.unread)
	go workerEnd.Write(all[cut:])
	for range 4 {
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("the second reader did not deliver the remaining frames")
		}
	}
	select {
	case id := <-got:
		t.Fatalf("an extra answer %q", id)
	default:
	}
	if w.exited {
		t.Fatal("the hand-over ended the worker's channel")
	}
}

// TestHandoffSkipsReapedDrainingWorker: a replaced worker that exited and
// was reaped before the actor saw it go is left out of the hand-over; an
// active worker in that state fails it (retry), as before. Seen in
// TestOperationsUnderLoad: "pidfd of worker 2 (pid …): no such process".
func TestHandoffSkipsReapedDrainingWorker(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil { // started and reaped: its pid is free
		t.Fatal(err)
	}
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	conn := func() net.Conn { // a channel end, as a worker's
		p, c, err := socketpair()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		nc, err := net.FileConn(p)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	a := &actor{Supervisor: &Supervisor{log: logrus.New()}, workers: map[uint32]*workerProc{
		1: {id: 1, pid: gone.Process.Pid, replaced: true, scm: -1, conn: conn(), logs: conn()},
		2: {id: 2, pid: live.Process.Pid, scm: -1, conn: conn(), logs: conn()},
	}}
	a.log.SetOutput(io.Discard)
	add := func(fd int) int { return fd }
	ws, owned, err := a.handoffWorkers(add)
	for _, fd := range owned {
		unix.Close(fd)
	}
	if err != nil {
		t.Fatalf("handoffWorkers: %v", err)
	}
	if len(ws) != 1 || ws[0].ID != 2 || ws[0].PIDFD < 0 {
		t.Fatalf("handed over %+v, want worker 2 alone with a pidfd", ws)
	}
	a.workers[1].replaced = false // an active worker gone the same way: the hand-over fails
	if _, owned, err = a.handoffWorkers(add); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Fatalf("active reaped worker: %v", err)
	}
	for _, fd := range owned {
		unix.Close(fd)
	}
	// A worker whose channel its exit closed during the hand-over: not
	// handed over when draining, a failure (retry) when active.
	a.workers[1].replaced = true
	a.workers[2].conn.Close()
	if _, owned, err = a.handoffWorkers(add); err == nil || !strings.Contains(err.Error(), "is exiting") {
		t.Fatalf("active worker with its channel closed: %v", err)
	}
	for _, fd := range owned {
		unix.Close(fd)
	}
}
