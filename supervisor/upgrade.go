package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/sandbox/account"
	"github.com/sozu-go/sozu/supervisor/sdnotify"
)

// upgrade_main: the supervisor executes the binary now at its own path and
// hands it, without closing anything, what it holds: the command socket,
// the listening sockets, every worker's channel, SCM_RIGHTS socket and a
// pidfd, the state, and the audit trail (upgrade_handoff.go describes the
// exchange). Workers keep serving throughout: they are not restarted, and
// a listening socket is never closed or shut.
//
// The old supervisor stays in charge until the new one confirms; a new
// binary that is refused (openUpgradeBinary), fails to start, exits, or
// does not confirm within serveDeadline is killed, and the old one resumes
// its audit trail, its worker channels and its command socket, and answers
// the verb with why. Once the new one confirmed, the old one sends
// MAINPID=<new> to systemd, answers, and exits without shutting listeners
// or unlinking the command socket.
//
// Audit: the attempt record of the verb and a supervisor.upgrade record
// (old and new pid, binary path and SHA-256) are written by the old
// supervisor, which then suspends its trail (the sealed head is written);
// the new one opens the same files, resuming seq and chain from them, and
// writes a supervisor.upgrade record and the verb's completion record.
// `sozu audit verify` sees one unbroken chain.
//
// Workers after the hand-over are not children of the new supervisor: the
// old one's exit reparents them to the nearest child subreaper or to init.
// The new supervisor watches each through its pidfd (readable when the
// process ends) and signals it with pidfd_send_signal, so a recycled pid is
// never hit; it cannot wait(2) for them, so their exit status is unknown
// and their reaping falls to their new parent (systemd and a proper init
// reap orphans). PR_SET_CHILD_SUBREAPER on the new supervisor would not
// help: workers are its siblings, not its descendants. To end that
// situation quickly, the new supervisor upgrades the inherited workers one
// by one (as upstream does), each replaced by its own child running the
// new binary.

// upgradeMainVerb answers upgrade_main.
func (s *Supervisor) upgradeMainVerb(c *session) bool {
	c.processing("Upgrading the main process...")
	id := ""
	if c.trace != nil {
		id = c.trace.id
	}
	newPID, err := s.upgradeMain(id)
	if err != nil {
		return c.fail(err.Error())
	}
	msg := fmt.Sprintf("Main process upgraded: pid %d took over from pid %d, which exits", newPID, os.Getpid())
	s.flushEvents(time.Second)
	c.ok(msg, nil)
	if c.trace != nil {
		c.trace.finish = true
		c.trace.handedOver = true // the successor wrote the completion record
		return true
	}
	s.finish()
	return false
}

// upgradeMain runs the hand-over; it returns the new supervisor's pid once
// it took over, or why it did not (the old supervisor is then in charge).
func (s *Supervisor) upgradeMain(requestULID string) (int, error) {
	var newPID int
	var err error
	s.upgrades.note(s, command.EventKind_MAIN_UPGRADED, phaseStarted, "executing "+s.exe)
	s.do(func(a *actor) { newPID, err = a.handOver(requestULID) })
	if err != nil {
		err = fmt.Errorf("upgrade of the main process failed, pid %d stays in charge: %w", os.Getpid(), err)
		s.log.Error(err.Error())
		s.recordSystem(audit.VerbSupervisorUpgrade, audit.CodeSupervisorUpgrade, audit.ResultErr, err.Error())
		s.upgrades.note(s, command.EventKind_MAIN_UPGRADED, phaseFailed, err.Error())
		return 0, err
	}
	s.upgrades.note(s, command.EventKind_MAIN_UPGRADED, phaseFinished, fmt.Sprintf("pid %d took over from pid %d", newPID, os.Getpid()))
	return newPID, nil
}

// handOver is the old supervisor's side. Actor only: no mutation can
// happen while it runs.
func (a *actor) handOver(requestULID string) (int, error) {
	if a.stopping {
		return 0, errStopping
	}
	for _, w := range a.sortedWorkers() {
		if w.upgrading {
			return 0, fmt.Errorf("worker %d is being upgraded: retry once that finished", w.id)
		}
	}
	bin, sum, err := openUpgradeBinary(a.exe, os.Geteuid())
	if err != nil {
		return 0, err
	}
	defer bin.Close()

	h := &handoff{Version: handoffVersion, OldPID: os.Getpid(), Binary: a.exe, BinarySHA256: sum,
		RequestULID: requestULID, NextWorkerID: a.nextWorkerID}
	opts := proto.MarshalOptions{AllowPartial: true, Deterministic: true}
	if h.State, err = opts.Marshal(&command.InitialState{Requests: a.handoffRequests()}); err != nil {
		return 0, fmt.Errorf("serialising the state: %w", err)
	}
	if h.ServerConfig, err = proto.Marshal(a.serverConfig); err != nil {
		return 0, fmt.Errorf("serialising the server config: %w", err)
	}
	var fds []int
	var owned []int // descriptors opened here for the hand-over, closed at the end
	defer func() {
		for _, fd := range owned {
			unix.Close(fd)
		}
	}()
	add := func(fd int) int { fds = append(fds, fd); return len(fds) - 1 }
	sf := listenerFile(a.sock)
	if sf == nil {
		return 0, errors.New("the command socket has no descriptor")
	}
	defer sf.Close()
	h.Socket = add(rawFD(sf))
	for _, l := range a.listeners.sorted() {
		h.Listeners = append(h.Listeners, handoffListener{Kind: int32(l.kind), Addr: l.addr, FD: add(rawFD(l.file))})
	}
	if a.accessFile != nil {
		i := add(rawFD(a.accessFile))
		h.AccessFile = &i
	}
	ws, pidfds, err := a.handoffWorkers(add)
	owned = append(owned, pidfds...)
	if err != nil {
		return 0, err
	}
	h.Workers = ws
	h.FDs = len(fds)
	for _, fd := range fds {
		if fd < 0 {
			return 0, errors.New("a descriptor to hand over is closed (a worker exiting?): retry")
		}
	}
	mem, err := handoffMemfd(h)
	if err != nil {
		return 0, fmt.Errorf("writing the handoff: %w", err)
	}
	defer mem.Close()
	ctlP, ctlC, err := socketpair()
	if err != nil {
		return 0, fmt.Errorf("control channel: %w", err)
	}
	cc, err := net.FileConn(ctlP)
	ctlP.Close()
	if err != nil {
		ctlC.Close()
		return 0, fmt.Errorf("control channel: %w", err)
	}
	ctlConn := cc.(*net.UnixConn)
	defer ctlConn.Close()
	ctl := newCtlConn(ctlConn)

	cmd := exec.Command("/proc/self/fd/5", "start", "-c", a.cfg.Path)
	cmd.Args[0] = a.exe
	cmd.ExtraFiles = []*os.File{ctlC, mem, bin} // fds 3, 4, 5
	cmd.Env = append(os.Environ(), UpgradeEnv+"=3")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		ctlC.Close()
		return 0, fmt.Errorf("starting %s: %w", a.exe, err)
	}
	ctlC.Close()
	newPID := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	lf := a.log.WithFields(map[string]any{"new_pid": newPID, "binary": a.exe, "sha256": sum})
	lf.Info("upgrade: new supervisor started, handing over")

	// From here on, a failure kills the new process and puts back what
	// was paused.
	var undo []func()
	fail := func(err error) (int, error) {
		cmd.Process.Kill()
		<-exited
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		select {
		case <-exited:
			if waitErr != nil {
				err = fmt.Errorf("%w (new supervisor pid %d: %s)", err, newPID, describeExit(waitErr))
			}
		default:
		}
		return 0, err
	}
	deadline := a.serveDeadline()
	if err := sendFDs(ctlConn, fds); err != nil {
		return fail(err)
	}
	if _, err := ctl.recv("ready", deadline); err != nil {
		return fail(fmt.Errorf("new supervisor pid %d did not get ready: %w", newPID, err))
	}

	// Stop accepting commands, then reading the worker channels.
	a.pauseAccept()
	undo = append(undo, a.resumeAccept)
	unread := map[uint32][]byte{}
	var stopped []*workerProc
	for _, w := range a.sortedWorkers() {
		w.handedOver.Store(true)
		w.conn.SetReadDeadline(time.Unix(1, 0))
		w.logs.SetReadDeadline(time.Unix(1, 0))
		stopped = append(stopped, w)
	}
	undo = append(undo, func() {
		for _, w := range stopped {
			w.handedOver.Store(false)
			w.conn.SetReadDeadline(time.Time{})
			w.logs.SetReadDeadline(time.Time{})
			w.startReader(a.Supervisor, w.unread)
			w.startLogReader(a.Supervisor)
			if w.accessFile && a.accessFile != nil {
				// The successor may have handed it its own file
				// after "go": ours again.
				if err := sendAccessFile(w.logs, a.accessFile); err != nil {
					a.log.WithField("worker", w.id).Warnf("handing the access log file back to the worker: %v", err)
				}
			}
		}
	})
	for _, w := range stopped {
		<-w.readerDone
		<-w.logsDone
		if len(w.unread) > 0 {
			unread[w.id] = w.unread
		}
	}

	// The record of the hand-over, then the trail is the new one's.
	msg := ctlMsg{Step: "go", Unread: unread}
	if a.audit != nil {
		a.recordSystem(audit.VerbSupervisorUpgrade, audit.CodeSupervisorUpgrade, audit.ResultOK,
			fmt.Sprintf("pid %d hands over to pid %d, binary %s sha256 %s", os.Getpid(), newPID, a.exe, sum))
		pos, err := a.audit.Suspend()
		undo = append(undo, func() {
			if err := a.audit.Resume(); err != nil {
				a.log.Errorf("upgrade: resuming the audit trail: %v", err)
			}
		})
		if err != nil {
			return fail(fmt.Errorf("suspending the audit trail: %w", err))
		}
		msg.AuditSeq, msg.AuditChain = pos.Seq, pos.Chain
	}
	if err := ctl.send(msg, deadline); err != nil {
		return fail(fmt.Errorf("new supervisor pid %d: %w", newPID, err))
	}
	if _, err := ctl.recv("done", deadline); err != nil {
		return fail(fmt.Errorf("new supervisor pid %d did not take over: %w", newPID, err))
	}

	// The new supervisor is in charge. This process forgets the listeners
	// and workers, so that nothing it still does (a signal's stop, its
	// exit) can shut a socket or signal a worker that is the successor's.
	a.handedOver.Store(true)
	a.stopping = true
	a.listeners = listenerTable{}
	a.workers = map[uint32]*workerProc{}
	a.sock.SetUnlinkOnClose(false)
	if err := sdnotify.Notify(sdnotify.MainPID(newPID)); err != nil {
		a.log.Warnf("upgrade: %v", err)
	}
	lf.Info("upgrade: the new supervisor took over; exiting")
	return newPID, nil
}

// listenerFile returns the descriptor holder of the command socket.
func listenerFile(l *net.UnixListener) *os.File {
	f, err := l.File() // a dup, closed when this process exits
	if err != nil {
		return nil
	}
	return f
}

// handoffWorkers lists the workers to hand over, their descriptors added
// with add, and returns the pidfds it opened (the caller closes them). A
// draining worker that exited and was reaped before its exit reached the
// actor is left out: there is nothing left of it to hand over.
func (a *actor) handoffWorkers(add func(fd int) int) ([]handoffWorker, []int, error) {
	var ws []handoffWorker
	var owned []int
	for _, w := range a.sortedWorkers() {
		draining := w.replaced || w.runState == command.RunState_STOPPED || w.runState == command.RunState_STOPPING
		pidfd := -1
		if w.pidfd != nil {
			pidfd = rawFD(w.pidfd)
		} else {
			fd, err := unix.PidfdOpen(w.pid, 0)
			switch {
			case errors.Is(err, unix.ESRCH) && draining:
				a.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid}).Info("upgrade: a draining worker exited during the hand-over: not handed over")
				continue
			case err != nil:
				return nil, owned, fmt.Errorf("pidfd of worker %d (pid %d): %w", w.id, w.pid, err)
			}
			pidfd = fd
			owned = append(owned, fd)
		}
		// The channels are closed by the worker's own goroutines when it
		// exits, maybe while the hand-over runs: what is sent is a
		// duplicate, taken while the connection holds its descriptor, so
		// that no close meanwhile can invalidate it (or let its number
		// name another file). Its scm socket is closed by workerExited,
		// on this goroutine.
		conn, logs := dupConnFD(w.conn), dupConnFD(w.logs)
		for _, fd := range []int{conn, logs} {
			if fd >= 0 {
				owned = append(owned, fd)
			}
		}
		if conn < 0 || logs < 0 {
			if draining {
				a.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid}).Info("upgrade: a draining worker exited during the hand-over: not handed over")
				continue
			}
			return nil, owned, fmt.Errorf("worker %d (pid %d) is exiting: retry", w.id, w.pid)
		}
		ws = append(ws, handoffWorker{ID: w.id, Slot: w.slot, PID: w.pid, UID: a.account.UID, GID: a.account.GID,
			Started: w.started, Channel: add(conn), SCM: add(w.scm), PIDFD: add(pidfd), Logs: add(logs),
			Draining: draining, AccessFile: w.accessFile})
	}
	return ws, owned, nil
}

// dupConnFD returns a close-on-exec duplicate of c's descriptor, taken
// while c holds it, or -1 when c is closed.
func dupConnFD(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(u uintptr) {
		if d, err := unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0); err == nil {
			fd = d
		}
	})
	return fd
}

// acceptGate pauses the command socket's accept loop during a hand-over.
type acceptGate struct {
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

// pauseAccept makes the accept loop stop taking connections (they wait in
// the socket's queue, for whichever supervisor accepts next).
func (s *Supervisor) pauseAccept() {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	if s.gate.paused {
		return
	}
	s.gate.paused = true
	s.gate.resume = make(chan struct{})
	s.sock.SetDeadline(time.Unix(1, 0))
}

// resumeAccept undoes pauseAccept.
func (s *Supervisor) resumeAccept() {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	if !s.gate.paused {
		return
	}
	s.gate.paused = false
	s.sock.SetDeadline(time.Time{})
	close(s.gate.resume)
}

// acceptPaused blocks while accepting is paused; it is called by the
// accept loop when Accept times out.
func (s *Supervisor) acceptPaused() {
	s.gate.mu.Lock()
	ch := s.gate.resume
	paused := s.gate.paused
	s.gate.mu.Unlock()
	if !paused {
		return
	}
	select {
	case <-ch:
	case <-s.stopped:
	}
}

// inheritance is what the new supervisor of a hot upgrade received.
type inheritance struct {
	ctl   *ctlConn
	conn  *net.UnixConn
	h     *handoff
	files []*os.File
}

// Inherit makes Run take over from the supervisor that started this
// process (UpgradeEnv): fd is the control channel's descriptor, and the
// handoff memfd follows it. Call it before Run. It reads the handoff and
// receives the descriptors; on error the caller must exit, which leaves the
// old supervisor in charge.
func (s *Supervisor) Inherit(fdText string) error {
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return fmt.Errorf("%s=%q: not a descriptor number", UpgradeEnv, fdText)
	}
	unix.Close(fd + 2) // the binary we were executed through
	// Executed as /proc/self/fd/5, the kernel named us "5": take our
	// name back, for ps and for peers reading /proc/PID/comm.
	os.WriteFile("/proc/self/comm", []byte("sozu"), 0)
	memf := os.NewFile(uintptr(fd+1), "sozu-handoff")
	defer memf.Close()
	data := make([]byte, 0, 64<<10)
	buf := make([]byte, 64<<10)
	for {
		n, err := memf.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil || n == 0 || len(data) > maxHandoff {
			break
		}
	}
	if len(data) > maxHandoff {
		return fmt.Errorf("handoff: larger than %d bytes", maxHandoff)
	}
	h, err := decodeHandoff(data)
	if err != nil {
		return err
	}
	cf := os.NewFile(uintptr(fd), "sozu-upgrade-control")
	c, err := net.FileConn(cf)
	cf.Close()
	if err != nil {
		return fmt.Errorf("upgrade control channel: %w", err)
	}
	uc := c.(*net.UnixConn)
	files, err := recvFDs(uc, h.FDs, s.serveDeadline())
	if err != nil {
		uc.Close()
		return err
	}
	s.inherit = &inheritance{ctl: newCtlConn(uc), conn: uc, h: h, files: files}
	return nil
}

// takeOver is the new supervisor's side of the hand-over, run by Run in
// place of the fresh start: it adopts the state, listeners and workers,
// says ready, waits for go, opens the audit trail, starts talking to the
// workers, writes its records and the PID file, and says done. It returns
// the command socket. On error nothing has been shut: the caller returns
// and the process exits, leaving the old supervisor in charge.
func (s *Supervisor) takeOver() (*net.UnixListener, error) {
	in := s.inherit
	h := in.h
	failed := func(err error) (*net.UnixListener, error) {
		in.ctl.send(ctlMsg{Step: "error", Error: err.Error()}, time.Second)
		in.conn.Close()
		return nil, fmt.Errorf("taking over from pid %d: %w", h.OldPID, err)
	}
	c, err := net.FileListener(in.files[h.Socket])
	if err != nil {
		return failed(fmt.Errorf("command socket: %w", err))
	}
	sock, ok := c.(*net.UnixListener)
	if !ok {
		return failed(errors.New("the command socket is not a unix socket"))
	}
	s.sock = sock
	var adoptErr error
	s.do(func(a *actor) { adoptErr = a.adopt(in) })
	if adoptErr != nil {
		return failed(adoptErr)
	}
	if err := in.ctl.send(ctlMsg{Step: "ready"}, s.serveDeadline()); err != nil {
		return failed(err)
	}
	gomsg, err := in.ctl.recv("go", 2*s.serveDeadline())
	if err != nil {
		return failed(err)
	}
	if err := s.openAudit(); err != nil {
		return failed(err)
	}
	s.do(func(a *actor) {
		for _, w := range a.sortedWorkers() {
			a.runInherited(w, gomsg.Unread[w.id])
		}
	})
	reason := fmt.Sprintf("pid %d took over from pid %d, binary %s sha256 %s; %d workers inherited; audit chain continues after seq %d",
		os.Getpid(), h.OldPID, h.Binary, h.BinarySHA256, len(h.Workers), gomsg.AuditSeq)
	s.recordSystem(audit.VerbSupervisorUpgrade, audit.CodeSupervisorUpgrade, audit.ResultOK, reason)
	if h.RequestULID != "" && s.audit != nil {
		rec := &audit.Record{Actor: audit.SystemActor(), Verb: audit.VerbSupervisorUpgrade, Code: audit.CodeCommandCompleted,
			RequestULID: h.RequestULID, Result: audit.ResultOK, Reason: reason}
		if err := s.record(rec); err != nil {
			s.log.Errorf("completion record of supervisor.upgrade lost: %v", err)
		}
	}
	if err := s.claimPIDFile(h.OldPID); err != nil {
		s.log.Errorf("upgrade: %v", err)
	}
	if err := in.ctl.send(ctlMsg{Step: "done"}, s.serveDeadline()); err != nil {
		return failed(err)
	}
	s.upgrades.restore(command.EventKind_MAIN_UPGRADED, fmt.Sprintf("main process upgrade %s at %s: %s",
		phaseFinished, time.Now().UTC().Format(time.RFC3339), reason))
	s.log.WithField("old_pid", h.OldPID).Info("upgrade: took over")
	// The old supervisor answers its client and exits, closing the
	// channel; the workers are then upgraded one by one.
	go func() {
		in.ctl.recv("exit", 2*s.serveDeadline())
		in.conn.Close()
		s.upgradeInherited()
	}()
	return sock, nil
}

// adopt builds the actor's tables from the handoff. Actor only.
func (a *actor) adopt(in *inheritance) error {
	h := in.h
	acct, err := account.Lookup(a.cfg.Sandbox.User, a.cfg.Sandbox.Group)
	if err != nil {
		return fmt.Errorf("configuration %s: worker_user/worker_group: %w", a.cfg.Path, err)
	}
	a.account = acct
	var st command.InitialState
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(h.State, &st); err != nil {
		return fmt.Errorf("handoff state: %w", err)
	}
	for _, wr := range st.GetRequests() {
		if cm, ok := wr.GetContent().GetRequestType().(*command.Request_ConfigureMetrics); ok {
			a.noteMetrics(cm.ConfigureMetrics)
		}
		if err := a.state.Dispatch(wr.GetContent()); err != nil {
			return fmt.Errorf("handoff state: request %s (%s) refused: %w", wr.GetId(), command.VerbName(wr.GetContent()), err)
		}
	}
	sc := &command.ServerConfig{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(h.ServerConfig, sc); err != nil {
		return fmt.Errorf("handoff server config: %w", err)
	}
	a.serverConfig = sc
	for _, l := range h.Listeners {
		kind := command.ListenerType(l.Kind)
		a.listeners[listenerKey(kind, l.Addr)] = &boundListener{kind: kind, addr: l.Addr, file: in.files[l.FD]}
	}
	var inherited *os.File
	if h.AccessFile != nil && *h.AccessFile >= 0 {
		inherited = in.files[*h.AccessFile]
	}
	defer func() { a.adoptAccessFile(inherited) }()
	for _, hw := range h.Workers {
		conn, err := net.FileConn(in.files[hw.Channel])
		in.files[hw.Channel].Close()
		if err != nil {
			return fmt.Errorf("worker %d: channel: %w", hw.ID, err)
		}
		logs, err := net.FileConn(in.files[hw.Logs])
		in.files[hw.Logs].Close()
		if err != nil {
			conn.Close()
			return fmt.Errorf("worker %d: log channel: %w", hw.ID, err)
		}
		for hw.Slot >= len(a.slots) {
			a.slots = append(a.slots, slot{})
		}
		w := &workerProc{
			id:       hw.ID,
			slot:     hw.Slot,
			pid:      hw.PID,
			started:  hw.Started,
			runState: command.RunState_RUNNING,
			conn:     conn,
			scm:      dupFD(in.files[hw.SCM]),
			pidfd:    in.files[hw.PIDFD],
			logs:     logs,
			out:      make(chan outbound, workerQueueLen),

			accessFile: hw.AccessFile,
			max:        int(a.cfg.MaxCommandBufferSize),
			pending:    make(map[string]*call),
			done:       make(chan struct{}),
		}
		in.files[hw.SCM].Close()
		w.draining.Store(-1)
		if hw.Draining {
			w.replaced, w.runState = true, command.RunState_STOPPED
		}
		a.workers[w.id] = w
	}
	a.nextWorkerID = h.NextWorkerID
	return nil
}

// runInherited starts talking to an inherited worker: its reader (after
// the bytes the old supervisor read but did not consume), its writer, and
// the watch of its pidfd in place of wait(2). Actor only.
func (a *actor) runInherited(w *workerProc, unread []byte) {
	sup := a.Supervisor
	go w.writeLoop(sup)
	w.startReader(sup, unread)
	w.startLogReader(sup)
	if w.accessFile {
		// It writes the access log file itself: make it ours, should the
		// configuration have named another one.
		if f := a.workerAccessFile(); f == nil {
			a.log.WithField("worker", w.id).Warn("the inherited worker writes the access log file its previous supervisor gave it: this one writes no access file")
		} else if err := sendAccessFile(w.logs, f); err != nil {
			a.log.WithField("worker", w.id).Warnf("handing the access log file to the inherited worker: %v", err)
		}
	}
	go func() {
		w.wait = waitPidfd(w.pidfd)
		w.conn.Close()
		close(w.done) // w.scm is closed by workerExited
		sup.submit(func(a *actor) { a.workerExited(w) })
	}()
	if w.replaced { // it was draining: bound its drain again
		go sup.drainUpgraded(w, nil, a.cfg.SoftStopDeadline)
	}
	a.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid}).Info("worker inherited")
}

// errInheritedExit is the exit "status" of an inherited worker: it is not
// our child, so its status cannot be read.
var errInheritedExit = errors.New("exited (status unknown: inherited from the previous supervisor, not our child)")

// waitPidfd blocks until the process of pidfd has ended.
func waitPidfd(f *os.File) error {
	fd := rawFD(f)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("watching pidfd: %w", err)
		}
		if n > 0 {
			return errInheritedExit
		}
	}
}

// upgradeInherited upgrades, one by one, the workers inherited from the
// previous supervisor, so that every worker runs the new binary and is our
// child again.
func (s *Supervisor) upgradeInherited() {
	var ids []uint32
	s.do(func(a *actor) {
		for _, w := range a.sortedWorkers() {
			if w.pidfd != nil && !w.replaced {
				ids = append(ids, w.id)
			}
		}
	})
	for _, id := range ids {
		select {
		case <-s.stopped:
			return
		default:
		}
		if _, err := s.upgradeWorker(id); err != nil {
			s.log.Warnf("upgrade of inherited worker %d: %v", id, err)
		}
	}
}

// claimPIDFile writes the PID file, if one is configured; predecessor is
// the pid of the supervisor handing over (0 at a fresh start).
func (s *Supervisor) claimPIDFile(predecessor int) error {
	if s.cfg.PidFilePath == "" {
		return nil
	}
	warning, err := claimPIDFile(s.cfg.PidFilePath, os.Getpid(), predecessor, func(pid int) pidHolder { return classifyPID(pid, s.exe) })
	if warning != "" {
		s.log.Warn(warning)
	}
	return err
}
