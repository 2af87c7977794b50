package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The hand-over of a hot upgrade, between the old supervisor and the new
// one it starts. The new process gets two descriptors:
//
//	fd 3: a unix stream socket, the control channel
//	fd 4: a memfd holding the handoff (JSON, handoffVersion)
//
// and UpgradeEnv=3 in its environment. Over the control channel, the old
// supervisor first sends every other descriptor by SCM_RIGHTS, in chunks of
// at most fdChunk, each carried by one byte: the command socket, the
// listening sockets, and for each worker its channel, its SCM_RIGHTS
// socket, a pidfd and its log channel. The handoff names each by its index in that list.
// Then both sides exchange one JSON object per line (ctlMsg):
//
//	new → old  {"step":"ready"}   state, listeners and workers adopted
//	old → new  {"step":"go",…}    the old supervisor stopped reading the
//	                               worker channels (unread bytes attached)
//	                               and suspended its audit trail
//	new → old  {"step":"done"}    the new one opened the trail, wrote its
//	                               records and the PID file
//
// after which the old supervisor answers the upgrade verb and exits. Either
// side may send {"step":"error","error":…} instead, or just close the
// channel; the old supervisor then stays in charge.

// UpgradeEnv is the environment variable that tells `sozu start` it is
// the new supervisor of a hot upgrade, and which descriptor is its control
// channel (the handoff follows it).
const UpgradeEnv = "SOZU_UPGRADE_FD"

const handoffVersion = 1

// fdChunk is the most descriptors sent in one SCM_RIGHTS message (the
// kernel's SCM_MAX_FD is 253).
const fdChunk = 200

// maxHandoff bounds the handoff read by the new supervisor.
const maxHandoff = 64 << 20

// handoff is everything the new supervisor needs besides descriptors.
type handoff struct {
	Version      int               `json:"version"`
	OldPID       int               `json:"old_pid"`
	Binary       string            `json:"binary"`        // the path exec'd
	BinarySHA256 string            `json:"binary_sha256"` // of the file exec'd
	RequestULID  string            `json:"request_ulid,omitempty"`
	State        []byte            `json:"state"`         // InitialState (protobuf): the state's requests
	ServerConfig []byte            `json:"server_config"` // ServerConfig (protobuf), runtime changes included
	FDs          int               `json:"fds"`           // descriptors sent over the control channel
	Socket       int               `json:"socket"`        // index of the command socket
	Listeners    []handoffListener `json:"listeners"`
	Workers      []handoffWorker   `json:"workers"`
	NextWorkerID uint32            `json:"next_worker_id"`
	// AccessFile is the index of the access log file the workers write
	// themselves (accessfile.go), -1 or absent for none: the successor
	// keeps that one open file description rather than opening a second
	// on the same file.
	AccessFile  *int   `json:"access_file,omitempty"`
	LastUpgrade string `json:"last_upgrade,omitempty"`
}

type handoffListener struct {
	Kind int32  `json:"kind"` // command.ListenerType
	Addr string `json:"addr"`
	FD   int    `json:"fd"`
}

type handoffWorker struct {
	ID      uint32    `json:"id"`
	Slot    int       `json:"slot"`
	PID     int       `json:"pid"`
	UID     int       `json:"uid"`
	GID     int       `json:"gid"`
	Started time.Time `json:"started"`
	Channel int       `json:"channel"`
	SCM     int       `json:"scm"`
	PIDFD   int       `json:"pidfd"`
	Logs    int       `json:"logs"` // its log channel (worklogs.go)
	// AccessFile: it writes the access log file itself (accessfile.go).
	AccessFile bool `json:"access_file,omitempty"`
	Draining   bool `json:"draining,omitempty"` // upgraded or stopping: soft stop sent, takes no fan-out
}

// decodeHandoff parses and checks a handoff: every descriptor index in
// range and used once, pids positive, a known version.
func decodeHandoff(data []byte) (*handoff, error) {
	var h handoff
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	if h.Version != handoffVersion {
		return nil, fmt.Errorf("handoff: version %d, this binary reads version %d", h.Version, handoffVersion)
	}
	if h.OldPID <= 0 {
		return nil, fmt.Errorf("handoff: old_pid %d", h.OldPID)
	}
	if h.FDs < 1 || h.FDs > 1<<16 {
		return nil, fmt.Errorf("handoff: %d descriptors", h.FDs)
	}
	used := make([]bool, h.FDs)
	use := func(what string, i int) error {
		if i < 0 || i >= h.FDs {
			return fmt.Errorf("handoff: %s: descriptor index %d out of 0..%d", what, i, h.FDs-1)
		}
		if used[i] {
			return fmt.Errorf("handoff: %s: descriptor index %d used twice", what, i)
		}
		used[i] = true
		return nil
	}
	if err := use("command socket", h.Socket); err != nil {
		return nil, err
	}
	for _, l := range h.Listeners {
		if err := use("listener "+l.Addr, l.FD); err != nil {
			return nil, err
		}
	}
	if h.AccessFile != nil && *h.AccessFile >= 0 {
		if err := use("access file", *h.AccessFile); err != nil {
			return nil, err
		}
	}
	ids := map[uint32]bool{}
	for _, w := range h.Workers {
		what := fmt.Sprintf("worker %d", w.ID)
		if ids[w.ID] || w.PID <= 0 || w.Slot < 0 || w.Slot > 1<<16 || w.ID >= h.NextWorkerID {
			return nil, fmt.Errorf("handoff: %s: duplicate id, bad pid %d, slot %d or id beyond next_worker_id %d", what, w.PID, w.Slot, h.NextWorkerID)
		}
		ids[w.ID] = true
		for _, i := range []int{w.Channel, w.SCM, w.PIDFD, w.Logs} {
			if err := use(what, i); err != nil {
				return nil, err
			}
		}
	}
	return &h, nil
}

// ctlMsg is one line of the control channel.
type ctlMsg struct {
	Step   string            `json:"step"`             // ready, go, done, error
	Error  string            `json:"error,omitempty"`  // step error
	Unread map[uint32][]byte `json:"unread,omitempty"` // go: per worker, channel bytes read but not consumed
	// go: where the audit trail stands, for the new supervisor's record.
	AuditSeq   uint64 `json:"audit_seq,omitempty"`
	AuditChain string `json:"audit_chain,omitempty"`
}

// ctlConn is one side of the control channel.
type ctlConn struct {
	c *net.UnixConn
	r *bufio.Reader
}

func newCtlConn(c *net.UnixConn) *ctlConn { return &ctlConn{c: c} }

// send writes m as one line.
func (c *ctlConn) send(m ctlMsg, d time.Duration) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.c.SetWriteDeadline(time.Now().Add(d))
	_, err = c.c.Write(append(b, '\n'))
	return err
}

// recv reads one line within d; step names what is expected.
func (c *ctlConn) recv(step string, d time.Duration) (ctlMsg, error) {
	if c.r == nil {
		c.r = bufio.NewReaderSize(c.c, 64<<10)
	}
	c.c.SetReadDeadline(time.Now().Add(d))
	var m ctlMsg
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return m, fmt.Errorf("waiting for %q: the other supervisor closed the control channel", step)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return m, fmt.Errorf("waiting for %q: no answer within %v", step, d)
		}
		return m, fmt.Errorf("waiting for %q: %w", step, err)
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("waiting for %q: undecodable control message: %w", step, err)
	}
	if m.Step == "error" {
		return m, fmt.Errorf("the other supervisor failed: %s", m.Error)
	}
	if m.Step != step {
		return m, fmt.Errorf("waiting for %q: got %q", step, m.Step)
	}
	return m, nil
}

// sendFDs sends fds over c in chunks of fdChunk, one byte each.
func sendFDs(c *net.UnixConn, fds []int) error {
	for len(fds) > 0 {
		n := min(len(fds), fdChunk)
		if _, _, err := c.WriteMsgUnix([]byte{'F'}, unix.UnixRights(fds[:n]...), nil); err != nil {
			return fmt.Errorf("sending descriptors: %w", err)
		}
		fds = fds[n:]
	}
	return nil
}

// recvFDs receives want descriptors sent by sendFDs, within d. They are
// made close-on-exec.
func recvFDs(c *net.UnixConn, want int, d time.Duration) ([]*os.File, error) {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for len(files) < want {
		buf := make([]byte, 1)
		oob := make([]byte, unix.CmsgSpace(fdChunk*4))
		n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return fail(fmt.Errorf("receiving descriptors (%d of %d): %w", len(files), want, err))
		}
		if n != 1 || flags&unix.MSG_CTRUNC != 0 {
			return fail(fmt.Errorf("receiving descriptors (%d of %d): truncated message", len(files), want))
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return fail(fmt.Errorf("receiving descriptors: %w", err))
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				return fail(fmt.Errorf("receiving descriptors: %w", err))
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("handoff-%d", len(files))))
			}
		}
	}
	if len(files) != want {
		return fail(fmt.Errorf("received %d descriptors, want %d", len(files), want))
	}
	return files, nil
}

// handoffMemfd writes h into an anonymous memory file, positioned at 0.
func handoffMemfd(h *handoff) (*os.File, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	return memfdWith("sozu-handoff", b)
}
