package worker

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/sozu-go/sozu/proto/command"
)

// scmWait bounds how long an activation waits for its descriptor, which the
// supervisor sends just before the request.
const scmWait = 5 * time.Second

// listenerSet holds the listening sockets the supervisor passed to this
// worker: received descriptors, and the listeners made active from them.
// Workers never bind or listen themselves (docs/architecture.md §1).
type listenerSet struct {
	scm      int
	received map[string]*os.File     // key: protocol and address
	active   map[string]net.Listener // key: protocol and address
	packets  map[string]*net.UDPConn // active UDP listeners, same key
}

func newListenerSet(fd int) (*listenerSet, error) {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil, fmt.Errorf("scm fd %d: %w", fd, err)
	}
	unix.CloseOnExec(fd)
	return &listenerSet{scm: fd, received: map[string]*os.File{}, active: map[string]net.Listener{},
		packets: map[string]*net.UDPConn{}}, nil
}

func key(kind command.ListenerType, addr string) string { return kind.String() + " " + addr }

// receive reads one SCM_RIGHTS message (a varint-delimited ListenersCount
// and its descriptors). With block false it returns nil at once when no
// message is waiting; with block true it waits up to scmWait.
func (l *listenerSet) receive(block bool) error {
	flags := unix.MSG_CMSG_CLOEXEC
	if !block {
		flags |= unix.MSG_DONTWAIT
	} else {
		tv := unix.NsecToTimeval(scmWait.Nanoseconds())
		unix.SetsockoptTimeval(l.scm, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(200*4))
	n, oobn, _, _, err := unix.Recvmsg(l.scm, buf, oob, flags)
	if err != nil {
		if !block && (err == unix.EAGAIN || err == unix.EWOULDBLOCK) {
			return nil
		}
		return fmt.Errorf("recvmsg on the scm socket: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("scm socket closed by the supervisor")
	}
	fds, err := rights(oob[:oobn])
	if err != nil {
		closeFDs(fds)
		return fmt.Errorf("scm control message: %w", err)
	}
	lc := &command.ListenersCount{}
	if err := (protodelim.UnmarshalOptions{MaxSize: 4096}).UnmarshalFrom(bufio.NewReader(bytes.NewReader(buf[:n])), lc); err != nil {
		closeFDs(fds)
		return fmt.Errorf("scm ListenersCount: %w", err)
	}
	var keys []string
	for _, a := range lc.GetHttp() {
		keys = append(keys, key(command.ListenerType_HTTP, a))
	}
	for _, a := range lc.GetTls() {
		keys = append(keys, key(command.ListenerType_HTTPS, a))
	}
	for _, a := range lc.GetTcp() {
		keys = append(keys, key(command.ListenerType_TCP, a))
	}
	for _, a := range lc.GetUdp() {
		keys = append(keys, key(command.ListenerType_UDP, a))
	}
	if len(keys) != len(fds) {
		closeFDs(fds)
		return fmt.Errorf("scm message lists %d listeners but carries %d descriptors", len(keys), len(fds))
	}
	for i, k := range keys {
		if old := l.received[k]; old != nil {
			old.Close()
		}
		l.received[k] = os.NewFile(uintptr(fds[i]), k)
	}
	return nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// activate makes the listener for (kind, addr) active from the descriptor
// the supervisor sent. An already active listener is left as it is.
func (l *listenerSet) activate(kind command.ListenerType, addr string) error {
	k := key(kind, addr)
	if l.active[k] != nil || l.packets[k] != nil {
		return nil
	}
	if err := l.receive(false); err != nil {
		return err
	}
	f := l.received[k]
	if f == nil {
		if err := l.receive(true); err != nil {
			return fmt.Errorf("activating %s: no descriptor from the supervisor: %w", k, err)
		}
		if f = l.received[k]; f == nil {
			return fmt.Errorf("activating %s: the supervisor sent no descriptor for it", k)
		}
	}
	if kind == command.ListenerType_UDP {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return fmt.Errorf("activating %s: %w", k, err)
		}
		f.Close()
		delete(l.received, k)
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return fmt.Errorf("activating %s: the supervisor's descriptor is not a UDP socket", k)
		}
		l.packets[k] = uc
		return nil
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("activating %s: %w", k, err)
	}
	f.Close()
	delete(l.received, k)
	l.active[k] = ln
	return nil
}

// deactivate closes the listener for (kind, addr), if any.
func (l *listenerSet) deactivate(kind command.ListenerType, addr string) {
	k := key(kind, addr)
	if ln := l.active[k]; ln != nil {
		ln.Close()
		delete(l.active, k)
	}
	if pc := l.packets[k]; pc != nil {
		pc.Close()
		delete(l.packets, k)
	}
	if f := l.received[k]; f != nil {
		f.Close()
		delete(l.received, k)
	}
}

func (l *listenerSet) closeAll() {
	for k, ln := range l.active {
		ln.Close()
		delete(l.active, k)
	}
	for k, pc := range l.packets {
		pc.Close()
		delete(l.packets, k)
	}
	for k, f := range l.received {
		f.Close()
		delete(l.received, k)
	}
}
