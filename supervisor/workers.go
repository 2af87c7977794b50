package supervisor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// Worker file descriptors, as the worker sees them (see worker.Main).
const (
	workerChannelFD = 3 // framed WorkerRequest/WorkerResponse channel
	workerSCMFD     = 4 // listener descriptors over SCM_RIGHTS
	workerStateFD   = 5 // InitialState, raw protobuf, read once
	// workerLogFD = 6: the log channel (worklogs.go)
)

// workerQueueLen bounds the requests queued for one worker. A worker that
// lets its queue fill is killed and relaunched with the current state, so a
// stuck worker can never stall the state actor or diverge from the state.
const workerQueueLen = 4096

// workerProc is one worker process as the supervisor sees it. Fields marked
// "actor" are owned by the state actor; the rest are safe for concurrent use.
type workerProc struct {
	id      uint32
	slot    int // the worker slot it holds (backoff.go)
	pid     int
	started time.Time

	runState  command.RunState // actor
	replaced  bool             // actor: killed as hung, or upgraded: its replacement already runs
	upgrading bool             // actor: upgrade_worker is starting its replacement (upgrade_worker.go)
	probe     *call            // actor: the liveness probe waiting for an answer (watchdog.go)
	probeSent time.Time        // actor
	draining  atomic.Int64     // open connections the worker reported while draining; -1: none reported

	cmd  *exec.Cmd
	conn net.Conn // command channel
	scm  int      // SCM_RIGHTS socket, supervisor side
	out  chan outbound
	max  int

	mu      sync.Mutex
	pending map[string]*call
	exited  bool

	done chan struct{} // closed once the process has been reaped
	wait error         // the process's exit status, valid after done

	// Hot upgrade (upgrade.go). pidfd is set for a worker inherited from
	// the previous supervisor (cmd is then nil): it is not our child, so
	// it is watched and signalled through its pidfd. handedOver is set
	// once the channel belongs to a new supervisor: this process then
	// neither reads, writes, nor kills. readerDone is closed when
	// readLoop returns; unread then holds the bytes it read that no
	// complete frame consumed, which the next reader must see first.
	pidfd      *os.File
	handedOver atomic.Bool
	readerDone chan struct{}
	unread     []byte

	// logs is the supervisor's end of the worker's log channel (fd 6 in
	// the worker, worklogs.go), read until it closes or, on a hand-over,
	// until logsDone says the reader stopped at a packet boundary (the
	// packets not read yet stay queued for the successor).
	logs     net.Conn
	logsDone chan struct{}
	// accessFile: the worker writes the access log file itself and
	// reads its log channel for the reopened ones (accessfile.go).
	accessFile bool
}

// call is one request sent to one worker, waiting for its answer.
type call struct {
	worker   *workerProc
	id       string
	progress chan *command.WorkerResponse // PROCESSING answers; extra ones are dropped
	final    chan *command.WorkerResponse // the terminal answer; closed if the worker dies
}

// initialRequests are what a new worker applies before it serves: the
// state's requests, then the runtime settings that are not state
// (configure_metrics disabled; enabled is a worker's default).
func (a *actor) initialRequests() []*command.WorkerRequest {
	reqs := a.state.GenerateRequests()
	if a.clusterMetricsOff {
		reqs = append(reqs, a.metricsRequest())
	}
	return reqs
}

// handoffRequests are the state's requests and configure_metrics as in
// force, enabled too: the new main of an upgrade takes the setting in
// force, whatever its configuration file says (noteMetrics).
func (a *actor) handoffRequests() []*command.WorkerRequest {
	return append(a.state.GenerateRequests(), a.metricsRequest())
}

// metricsRequest is configure_metrics as in force: ENABLED or DISABLED.
func (a *actor) metricsRequest() *command.WorkerRequest {
	c := command.MetricsConfiguration_ENABLED
	if a.clusterMetricsOff {
		c = command.MetricsConfiguration_DISABLED
	}
	return &command.WorkerRequest{Id: proto.String("METRICS-" + c.String()),
		Content: &command.Request{RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: c}}}
}

// noteMetrics keeps what a configure_metrics request sets for the workers
// launched later: ENABLED and DISABLED turn cluster metrics on and off;
// CLEAR, which new workers need not know, restarts the supervisor's own
// counters.
func (a *actor) noteMetrics(c command.MetricsConfiguration) {
	switch c {
	case command.MetricsConfiguration_ENABLED:
		a.clusterMetricsOff = false
	case command.MetricsConfiguration_DISABLED:
		a.clusterMetricsOff = true
	case command.MetricsConfiguration_CLEAR:
		// The supervisor's own counters restart too, as upstream's clear
		// wipes its main process's metrics.
		a.mainCleared = a.mainCounters()
		a.metricsClears++
	}
}

// spawnWorker starts a new worker in slot with the current state, and
// hands it the listeners before it returns. Actor only.
func (a *actor) spawnWorker(slot int) (*workerProc, error) {
	id := a.nextWorkerID
	a.nextWorkerID++

	chP, chC, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("worker %d: channel: %w", id, err)
	}
	defer chC.Close()
	scmP, scmC, err := socketpair()
	if err != nil {
		chP.Close()
		return nil, fmt.Errorf("worker %d: scm socket: %w", id, err)
	}
	defer scmC.Close()
	stateFile, err := initialStateFile(&command.InitialState{Requests: a.initialRequests()})
	if err != nil {
		chP.Close()
		scmP.Close()
		return nil, fmt.Errorf("worker %d: initial state: %w", id, err)
	}
	defer stateFile.Close()
	logP, logC, err := logChannel()
	if err != nil {
		chP.Close()
		scmP.Close()
		return nil, fmt.Errorf("worker %d: log channel: %w", id, err)
	}
	defer logC.Close()

	args := []string{"worker", "--id", strconv.FormatUint(uint64(id), 10),
		"--uid", strconv.Itoa(a.account.UID), "--gid", strconv.Itoa(a.account.GID),
		"--sandbox", a.cfg.Sandbox.Mode, "--threads", strconv.Itoa(a.cfg.WorkerThreads)}
	if a.cfg.Sandbox.AllowRoot {
		args = append(args, "--allow-root")
	}
	if a.cfg.Sandbox.TLSSessionTickets {
		args = append(args, "--tls-session-tickets")
	}
	args = append(args, "--access-log-format", a.cfg.AccessLogsEncoding, "--access-log-query", a.cfg.AccessLogsQuery)
	if a.logs.AccessColored {
		args = append(args, "--access-log-colored")
	}
	if a.logs.MainColored {
		args = append(args, "--log-colored")
	}
	if a.cfg.AccessLogsTarget == "" {
		// Upstream's rule when access records share the main target:
		// they follow log_level (docs/observability.md).
		args = append(args, "--access-log-gated")
	}
	extra := []*os.File{chC, scmC, stateFile, logC}
	af := a.workerAccessFile()
	if af != nil {
		args = append(args, "--access-log-file") // fd 7
		extra = append(extra, af)
	}
	cmd := exec.Command(a.exe, args...)
	cmd.ExtraFiles = extra
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = workerEnv()
	// No Pdeathsig: a worker must outlive its supervisor across a hot
	// upgrade (upgrade.go). It exits when its channel reaches EOF, that
	// is when no supervisor holds the other end any more.
	if err := cmd.Start(); err != nil {
		chP.Close()
		scmP.Close()
		logP.Close()
		return nil, fmt.Errorf("worker %d: start %s: %w", id, a.exe, err)
	}
	conn, err := net.FileConn(chP)
	chP.Close()
	if err != nil {
		cmd.Process.Kill()
		scmP.Close()
		return nil, fmt.Errorf("worker %d: channel: %w", id, err)
	}
	w := &workerProc{
		id:       id,
		slot:     slot,
		pid:      cmd.Process.Pid,
		started:  time.Now(),
		runState: command.RunState_RUNNING,
		cmd:      cmd,
		conn:     conn,
		scm:      dupFD(scmP),
		out:      make(chan outbound, workerQueueLen),
		max:      int(a.cfg.MaxCommandBufferSize),
		pending:  make(map[string]*call),
		done:     make(chan struct{}),
		logs:     logP,

		accessFile: af != nil,
	}
	scmP.Close()
	w.draining.Store(-1)
	w.startLogReader(a.Supervisor) // until the worker's end closes

	// Bootstrap: ServerConfig first on the channel, then the listeners.
	if err := frame.WriteMessage(conn, a.serverConfig, w.max); err != nil {
		w.kill()
		return nil, fmt.Errorf("worker %d: sending ServerConfig: %w", id, err)
	}
	if err := w.sendListeners(a.listeners.sorted()); err != nil {
		w.kill()
		return nil, fmt.Errorf("worker %d: sending listeners: %w", id, err)
	}

	sup := a.Supervisor // what the goroutines below may use (never the actor)
	go w.writeLoop(sup)
	w.startReader(sup, nil)
	go func() {
		w.wait = cmd.Wait()
		w.conn.Close()
		close(w.done) // w.scm is closed by workerExited, on the actor (a hand-over may be sending it)
		sup.submit(func(a *actor) { a.workerExited(w) })
	}()
	a.workers[id] = w
	a.log.WithFields(map[string]any{"worker": id, "pid": w.pid}).Info("worker started")
	return w, nil
}

// workerEnv is the environment of a worker: nothing of the supervisor's
// but what the Go runtime and logging need.
func workerEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "GOTRACEBACK", "GORACE", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// sendListeners passes listener descriptors to the worker in one sendmsg:
// a varint-delimited ListenersCount, and the descriptors as SCM_RIGHTS.
func (w *workerProc) sendListeners(ls []*boundListener) error {
	lc, fds := listenersCount(ls, w.slot)
	var buf protoBuffer
	if _, err := protodelim.MarshalTo(&buf, lc); err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	return unix.Sendmsg(w.scm, buf, oob, nil, 0)
}

type protoBuffer []byte

func (b *protoBuffer) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

// outbound is a request queued for a worker. content, when set, is the
// encoding of req.Content, shared by every worker a request is fanned out
// to: the request is encoded once, not once per worker (a 2 MB frame to 64
// workers was 128 MB).
type outbound struct {
	req     *command.WorkerRequest
	content []byte
}

// workerRequestHead is the encoding of a WorkerRequest{id, content} up to
// content's bytes: followed by content (the encoding of the Request), it is
// the message's whole deterministic encoding (TestWorkerRequestHead).
func workerRequestHead(id string, contentLen int) []byte {
	fields := (&command.WorkerRequest{}).ProtoReflect().Descriptor().Fields()
	b := protowire.AppendTag(nil, fields.ByName("id").Number(), protowire.BytesType)
	b = protowire.AppendString(b, id)
	b = protowire.AppendTag(b, fields.ByName("content").Number(), protowire.BytesType)
	return protowire.AppendVarint(b, uint64(contentLen))
}

// send queues req for the worker and returns the call that will receive its
// answer. It never blocks: a full queue means the worker is stuck, and it is
// killed (and relaunched with the current state). Actor only.
func (w *workerProc) send(req *command.WorkerRequest) (*call, error) {
	return w.sendShared(req, nil)
}

// sendShared is send for a req whose Content is encoded already: content,
// when not nil, is that encoding, written as is (see outbound).
func (w *workerProc) sendShared(req *command.WorkerRequest, content []byte) (*call, error) {
	c := &call{
		worker:   w,
		id:       req.GetId(),
		progress: make(chan *command.WorkerResponse, 8),
		final:    make(chan *command.WorkerResponse, 1),
	}
	w.mu.Lock()
	if w.exited {
		w.mu.Unlock()
		return nil, fmt.Errorf("worker %d has exited", w.id)
	}
	if w.handedOver.Load() {
		w.mu.Unlock()
		return nil, fmt.Errorf("worker %d is handed over to a new supervisor", w.id)
	}
	w.pending[c.id] = c
	w.mu.Unlock()
	select {
	case w.out <- outbound{req, content}:
		return c, nil
	default:
		w.forget(c.id)
		w.kill()
		return nil, fmt.Errorf("worker %d: request queue full (%d): worker killed", w.id, workerQueueLen)
	}
}

// forget drops a pending call; its late answer will be discarded.
func (w *workerProc) forget(id string) {
	w.mu.Lock()
	delete(w.pending, id)
	w.mu.Unlock()
}

// kill sends SIGKILL to the worker, unless its channel has been handed
// over to a new supervisor (which owns it from then on). The error says
// why it could not be sent (a supervisor without CAP_KILL facing a worker
// of another uid); a worker that already exited is not an error.
func (w *workerProc) kill() error {
	if err := w.signal(unix.SIGKILL); err != nil {
		return fmt.Errorf("SIGKILL to worker %d (pid %d): %w", w.id, w.pid, err)
	}
	return nil
}

// signal sends sig to the worker: through its process when it is our
// child, through its pidfd when it was inherited on upgrade (a recycled
// pid is never hit).
func (w *workerProc) signal(sig unix.Signal) error {
	if w.handedOver.Load() {
		return nil
	}
	var err error
	switch {
	case w.cmd != nil && w.cmd.Process != nil:
		err = w.cmd.Process.Signal(sig)
		if errors.Is(err, os.ErrProcessDone) {
			err = nil
		}
	case w.pidfd != nil:
		err = unix.PidfdSendSignal(rawFD(w.pidfd), sig, nil, 0)
		if errors.Is(err, unix.ESRCH) {
			err = nil
		}
	}
	return err
}

func (w *workerProc) writeLoop(s *Supervisor) {
	for {
		select {
		case o := <-w.out:
			req := o.req
			var err error
			if o.content != nil {
				err = frame.WriteParts(w.conn, w.max, workerRequestHead(req.GetId(), len(o.content)), o.content)
			} else {
				err = frame.WriteMessage(w.conn, req, w.max)
			}
			if err != nil {
				var tl *frame.TooLargeError
				if errors.As(err, &tl) {
					w.answerLocal(req.GetId(), fmt.Sprintf("request too large for the worker channel: %v", err))
					continue
				}
				s.log.WithField("worker", w.id).Warnf("writing to worker: %v", err)
				w.kill()
				return
			}
		case <-w.done:
			return
		}
	}
}

// answerLocal completes a pending call with a FAILURE made up by the
// supervisor (the request never reached the worker).
func (w *workerProc) answerLocal(id, msg string) {
	w.deliver(&command.WorkerResponse{Id: proto.String(id), Status: command.ResponseStatus_FAILURE.Enum(), Message: proto.String(msg)})
}

// startReader starts readLoop, which reads unread (the bytes a previous
// reader left) before the channel.
func (w *workerProc) startReader(s *Supervisor, unread []byte) {
	w.readerDone = make(chan struct{})
	go w.readLoop(s, unread)
}

func (w *workerProc) readLoop(s *Supervisor, unread []byte) {
	defer close(w.readerDone)
	t := &tapReader{pending: unread, r: w.conn}
	r := frame.NewReader(t, w.max)
	for {
		resp := &command.WorkerResponse{}
		p, err := r.ReadFrame()
		if err != nil {
			if w.handedOver.Load() {
				// Stopped for a hand-over: what was read but not
				// consumed goes to the next reader.
				w.unread = t.pending
				return
			}
			break
		}
		t.consumed(frame.PrefixSize + len(p))
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(p, resp); err != nil {
			break // a frame that does not decode: the channel is out of step
		}
		if resp.GetId() == "EVENT" {
			if ev := resp.GetContent().GetEvent(); ev != nil && s.dedup.pass(w.id, ev) {
				s.emitEvent(strconv.FormatUint(uint64(w.id), 10), ev)
			}
			continue
		}
		w.deliver(resp)
	}
	// The channel is gone: the worker is dead or dying. Fail what waits.
	w.mu.Lock()
	w.exited = true
	pending := w.pending
	w.pending = map[string]*call{}
	w.mu.Unlock()
	for _, c := range pending {
		close(c.final)
	}
	w.kill()
}

// tapReader reads from r, after the bytes of pending, and keeps every
// byte read that no complete frame has consumed yet (consumed drops them),
// so that a reader stopped between frames can pass them on.
type tapReader struct {
	pending []byte // read but not consumed, oldest first
	off     int    // how many of pending were handed out by Read
	r       io.Reader
}

func (t *tapReader) Read(p []byte) (int, error) {
	if t.off < len(t.pending) {
		n := copy(p, t.pending[t.off:])
		t.off += n
		return n, nil
	}
	n, err := t.r.Read(p)
	t.pending = append(t.pending, p[:n]...)
	t.off += n
	return n, err
}

// consumed drops the first n pending bytes: a complete frame.
func (t *tapReader) consumed(n int) {
	n = min(n, len(t.pending))
	t.pending = append(t.pending[:0], t.pending[n:]...)
	t.off -= n
}

func (w *workerProc) deliver(resp *command.WorkerResponse) {
	w.mu.Lock()
	c := w.pending[resp.GetId()]
	if c != nil && resp.GetStatus() != command.ResponseStatus_PROCESSING {
		delete(w.pending, resp.GetId())
	}
	w.mu.Unlock()
	if c == nil {
		return
	}
	if resp.GetStatus() == command.ResponseStatus_PROCESSING {
		select {
		case c.progress <- resp:
		default:
		}
		return
	}
	c.final <- resp
}

// workerExited runs in the actor once a worker process has been reaped.
func (a *actor) workerExited(w *workerProc) {
	unix.Close(w.scm)
	if a.workers[w.id] != w {
		return
	}
	delete(a.workers, w.id)
	a.dedup.forget(w.id)
	status := describeExit(w.wait)
	lf := a.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid, "slot": w.slot, "status": status})
	if a.stopping || w.replaced {
		lf.Info("worker exited")
		return
	}
	reason := fmt.Sprintf("worker %d (pid %d) exited: %s", w.id, w.pid, status)
	if sandboxViolation(w.wait) {
		reason = fmt.Sprintf("SANDBOX VIOLATION: worker %d (pid %d) killed by SIGSYS: it made a system call its seccomp filter forbids", w.id, w.pid)
		lf.Error(reason)
	} else {
		lf.Warn("worker exited unexpectedly")
	}
	a.recordSystem(audit.VerbWorkerExit, audit.CodeWorkerExit, audit.ResultErr, reason)
	a.emitEvent("main", &command.Event{Kind: command.EventKind_WORKER_KILLED.Enum()})
	if !a.cfg.WorkerAutomaticRestart {
		return
	}
	// A quick crash delays the relaunch of this slot only (backoff.go),
	// so a crash loop cannot turn into a fork loop, nor hold back the
	// other slots.
	sl := &a.slots[w.slot]
	delay := sl.exited(time.Since(w.started))
	relaunch := func(a *actor) {
		a.slots[w.slot].waiting = false
		if a.stopping || a.slotHeld(w.slot) {
			return
		}
		nw, err := a.spawnWorker(w.slot)
		if err != nil {
			a.log.Errorf("relaunching worker slot %d: %v", w.slot, err)
			return
		}
		a.log.WithFields(map[string]any{"worker": nw.id, "pid": nw.pid, "slot": w.slot, "replaces": w.id}).Info("worker relaunched")
		a.recordSystem(audit.VerbWorkerRelaunch, audit.CodeWorkerRelaunch, audit.ResultOK,
			fmt.Sprintf("worker %d (pid %d) replaces worker %d in slot %d", nw.id, nw.pid, w.id, w.slot))
		a.emitEvent("main", &command.Event{Kind: command.EventKind_WORKER_RELAUNCHED.Enum()})
	}
	if delay == 0 {
		relaunch(a)
		return
	}
	if sl.waiting {
		return
	}
	sl.waiting = true
	lf.Infof("slot %d: quick crash %d in a row: relaunching in %v", w.slot, sl.crashes, delay)
	sup := a.Supervisor
	time.AfterFunc(delay, func() { sup.submit(relaunch) })
}

// slotHeld reports whether a live worker (not one being replaced) holds
// slot. Actor only.
func (a *actor) slotHeld(slot int) bool {
	for _, w := range a.workers {
		if w.slot == slot && !w.replaced {
			return true
		}
	}
	return false
}

// sandboxViolation reports whether a worker was killed by SIGSYS, which is
// how the kernel ends a process that breaks its seccomp filter (kill mode).
func sandboxViolation(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal() == syscall.SIGSYS
		}
	}
	return false
}

// describeExit names how a process ended: "exit status 1", "signal: killed".
func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal " + ws.Signal().String()
		}
	}
	return err.Error()
}

// socketpair returns a connected pair of unix stream sockets, close-on-exec.
// The child end loses close-on-exec when passed through ExtraFiles.
func socketpair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "worker-parent"), os.NewFile(uintptr(fds[1]), "worker-child"), nil
}

// dupFD duplicates f's descriptor (close-on-exec) so that f can be closed.
func dupFD(f *os.File) int {
	fd, err := unix.FcntlInt(uintptr(rawFD(f)), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// initialStateFile writes st into an anonymous memory file for the worker.
func initialStateFile(st *command.InitialState) (*os.File, error) {
	b, err := proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(st)
	if err != nil {
		return nil, err
	}
	return memfdWith("sozu-initial-state", b)
}

// memfdWith returns an anonymous memory file (close-on-exec) holding b,
// positioned at 0, for a child to read from an inherited descriptor.
func memfdWith(name string, b []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
