package supervisor

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/command"
)

// boundListener is a listening socket the supervisor bound and hands to
// workers. The supervisor keeps its own descriptor so that a relaunched
// worker receives the same socket.
type boundListener struct {
	kind command.ListenerType
	addr string // Display() form, the key workers use
	file *os.File
	// slots, for a UDP listener, holds one socket per worker slot (file is
	// slots[0]): see bindUDP.
	slots []*os.File
}

// fileFor returns the descriptor the worker in slot receives: the one
// socket of a TCP listener, the slot's own socket of a UDP listener.
func (l *boundListener) fileFor(slot int) *os.File {
	if len(l.slots) == 0 {
		return l.file
	}
	return l.slots[slot%len(l.slots)]
}

// shut makes the socket refuse new connections for every process holding
// a copy of it, then closes the supervisor's descriptor. shutdown(2) on a
// listening socket acts on the socket, not on one descriptor: the kernel
// stops listening (a SYN is answered RST, the client gets "connection
// refused" at once), the connections waiting in its accept queue are
// reset, and the workers' accept calls fail. Connections already accepted
// are separate sockets and go on. Used from the first instant of a stop,
// and when a listener is deactivated or removed: closing descriptors alone
// would leave the socket listening while any copy remains (a draining or
// hung worker's), completing handshakes nobody will accept.
//
// A UDP socket has no accept queue and no connection to refuse: its
// descriptor is closed, and the workers close theirs when the verb reaches
// them. (shutdown(2) would make every worker's receive return 0 bytes at
// once, forever, which a worker cannot tell from an empty datagram.)
func (l *boundListener) shut() {
	if l.kind == command.ListenerType_UDP {
		for _, f := range l.slots {
			f.Close()
		}
		return
	}
	if fd := rawFD(l.file); fd >= 0 {
		unix.Shutdown(fd, unix.SHUT_RD)
	}
	l.file.Close()
}

// listenerKey identifies a listener by protocol and address.
func listenerKey(kind command.ListenerType, addr string) string {
	return kind.String() + " " + addr
}

// listenerTable is owned by the state actor.
type listenerTable map[string]*boundListener

// bind opens a listening TCP socket for addr. Binding happens in the
// supervisor only: workers never call bind or listen (docs/architecture.md §1).
func bindTCP(kind command.ListenerType, sa *command.SocketAddress) (*boundListener, error) {
	ap, err := sa.AddrPort()
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", sa.Display(), err)
	}
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("cannot bind %s listener %s: %w", kind, sa.Display(), err)
	}
	f, err := l.File()
	l.Close()
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", sa.Display(), err)
	}
	return &boundListener{kind: kind, addr: sa.Display(), file: f}, nil
}

// bindListener opens the socket of a listener of kind: UDP sockets, one per
// worker slot (workers workers), for a UDP listener; a listening TCP socket
// otherwise.
func bindListener(kind command.ListenerType, sa *command.SocketAddress, workers int) (*boundListener, error) {
	if kind == command.ListenerType_UDP {
		return bindUDP(sa, workers)
	}
	return bindTCP(kind, sa)
}

// bindUDP opens the sockets of a UDP listener at sa: one per worker slot,
// in one SO_REUSEPORT group, so that the kernel hands all the datagrams of
// one client address (its 4-tuple hash) to the same socket, hence the same
// worker, and a flow never splits over two workers' flow tables (two
// backends). A relaunched worker gets its slot's socket back; datagrams
// wait in it meanwhile. Bound in the supervisor like every listening
// socket (workers never call bind).
func bindUDP(sa *command.SocketAddress, workers int) (*boundListener, error) {
	ap, err := sa.AddrPort()
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", sa.Display(), err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	bl := &boundListener{kind: command.ListenerType_UDP, addr: sa.Display()}
	for i := range max(workers, 1) {
		pc, err := lc.ListenPacket(context.Background(), "udp", net.UDPAddrFromAddrPort(ap).String())
		if err != nil {
			bl.shut()
			return nil, fmt.Errorf("cannot bind UDP listener %s (socket %d of %d): %w", sa.Display(), i+1, max(workers, 1), err)
		}
		ap = pc.LocalAddr().(*net.UDPAddr).AddrPort() // port 0: the next sockets join the same port
		f, err := pc.(*net.UDPConn).File()
		pc.Close()
		if err != nil {
			bl.shut()
			return nil, fmt.Errorf("listener %s: %w", sa.Display(), err)
		}
		bl.slots = append(bl.slots, f)
	}
	bl.file = bl.slots[0]
	return bl, nil
}

// sorted returns the listeners in a stable order (protocol, then address),
// the order in which they are announced to a new worker.
func (t listenerTable) sorted() []*boundListener {
	out := make([]*boundListener, 0, len(t))
	for _, l := range t {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind < out[j].kind
		}
		return out[i].addr < out[j].addr
	})
	return out
}

// listenersCount describes ls in the order of their descriptors, as the
// ListenersCount message carried with them over SCM_RIGHTS to the worker
// in slot.
func listenersCount(ls []*boundListener, slot int) (*command.ListenersCount, []int) {
	lc := &command.ListenersCount{}
	fds := make([]int, 0, len(ls))
	// The message lists addresses per protocol, and the descriptors follow
	// in the order http, tls, tcp, udp (docs/protocol.md §2.4).
	for _, kind := range []command.ListenerType{command.ListenerType_HTTP, command.ListenerType_HTTPS, command.ListenerType_TCP, command.ListenerType_UDP} {
		for _, l := range ls {
			if l.kind != kind {
				continue
			}
			switch kind {
			case command.ListenerType_HTTP:
				lc.Http = append(lc.Http, l.addr)
			case command.ListenerType_HTTPS:
				lc.Tls = append(lc.Tls, l.addr)
			case command.ListenerType_TCP:
				lc.Tcp = append(lc.Tcp, l.addr)
			case command.ListenerType_UDP:
				lc.Udp = append(lc.Udp, l.addr)
			}
			fds = append(fds, rawFD(l.fileFor(slot)))
		}
	}
	return lc, fds
}

// rawFD returns f's descriptor without switching it to blocking mode, as
// (*os.File).Fd would: the open file description is shared with the workers,
// whose accept loops need it non-blocking.
func rawFD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}
