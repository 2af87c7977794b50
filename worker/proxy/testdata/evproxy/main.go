// Command evproxy is a bare HTTP/1.1 keep-alive proxy with none of the
// product's features, for measuring on this machine the ceiling of the two
// designs a Go proxy can have (docs/architecture.md, "The ceiling"):
//
//   - -mode ev (the default): one thread, its own epoll loop
//     (level-triggered, non-blocking read(2) and write(2) on raw
//     descriptors), as HAProxy and nginx are built;
//   - -mode go: a goroutine per client connection on Go's netpoller, as
//     worker/proxy is built.
//
// Each client connection gets a backend connection of its own, kept
// alive; a request (GET or a Content-Length body, no pipelining) goes to
// the backend with one header added, and the response (Content-Length
// framed) back to the client. Nothing is validated: it is a yardstick for
// `proxy-bench.sh --cmd 'env GOMAXPROCS=1 ./evproxy -l {LISTEN} -b
// {BACKEND}'`, never a proxy to run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

type conn struct {
	fd      int
	peer    *conn
	backend bool
	in      []byte
	n       int
	out     []byte // pending write
}

var (
	ep    int
	conns = map[int]*conn{}
	baddr unix.SockaddrInet4
)

func add(fd int, c *conn, ev uint32) {
	unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)})
	conns[fd] = c
}

func closeConn(c *conn) {
	if c == nil || c.fd < 0 {
		return
	}
	unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	delete(conns, c.fd)
	c.fd = -1
	if p := c.peer; p != nil {
		c.peer = nil
		p.peer = nil
		closeConn(p)
	}
}

// head returns the end of the head in b, or -1; and its content length.
func head(b []byte) (int, int) {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return -1, 0
	}
	cl := 0
	h := b[:i]
	for len(h) > 0 {
		j := bytes.IndexByte(h, '\n')
		var line []byte
		if j < 0 {
			line, h = h, nil
		} else {
			line, h = h[:j], h[j+1:]
		}
		if len(line) > 15 && (line[0] == 'C' || line[0] == 'c') && bytes.EqualFold(line[:15], []byte("content-length:")) {
			v := bytes.TrimSpace(line[15:])
			cl, _ = strconv.Atoi(string(v))
		}
	}
	return i + 4, cl
}

func write(c *conn, b []byte) {
	if len(c.out) > 0 {
		c.out = append(c.out, b...)
		return
	}
	n, err := unix.Write(c.fd, b)
	if err == unix.EAGAIN {
		n = 0
	} else if err != nil {
		closeConn(c)
		return
	}
	if n < len(b) {
		c.out = append(c.out[:0], b[n:]...)
		unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: int32(c.fd)})
	}
}

var reqBuf = make([]byte, 0, 16384)

func onClient(c *conn) {
	m, err := unix.Read(c.fd, c.in[c.n:])
	if err == unix.EAGAIN {
		return
	}
	if m <= 0 {
		closeConn(c)
		return
	}
	c.n += m
	for {
		end, cl := head(c.in[:c.n])
		if end < 0 || c.n < end+cl {
			return
		}
		b := c.peer
		if b == nil {
			fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			unix.Connect(fd, &baddr)
			b = &conn{fd: fd, backend: true, in: make([]byte, 16384), peer: c}
			c.peer = b
			add(fd, b, unix.EPOLLIN|unix.EPOLLOUT)
		}
		// the request, with a forwarding header added after the request line
		rl := bytes.IndexByte(c.in[:end], '\n') + 1
		reqBuf = append(reqBuf[:0], c.in[:rl]...)
		reqBuf = append(reqBuf, "X-Forwarded-For: 127.0.0.1\r\n"...)
		reqBuf = append(reqBuf, c.in[rl:end+cl]...)
		write(b, reqBuf)
		copy(c.in, c.in[end+cl:c.n])
		c.n -= end + cl
		return // one request in flight (no pipelining in this prototype)
	}
}

func onBackend(b *conn) {
	m, err := unix.Read(b.fd, b.in[b.n:])
	if err == unix.EAGAIN {
		return
	}
	if m <= 0 {
		closeConn(b)
		return
	}
	b.n += m
	end, cl := head(b.in[:b.n])
	if end < 0 || b.n < end+cl {
		return
	}
	if c := b.peer; c != nil {
		write(c, b.in[:end+cl])
	}
	copy(b.in, b.in[end+cl:b.n])
	b.n -= end + cl
}

func main() {
	listen := flag.String("l", "127.0.0.1:18099", "listen")
	backend := flag.String("b", "127.0.0.1:18080", "backend")
	mode := flag.String("mode", "ev", "ev or go")
	flag.Parse()
	if *mode == "go" {
		runtime.GOMAXPROCS(1)
		serveGo(*listen, *backend)
		return
	}
	runtime.LockOSThread()
	ba, _ := net.ResolveTCPAddr("tcp", *backend)
	baddr.Port = ba.Port
	copy(baddr.Addr[:], ba.IP.To4())
	la, _ := net.ResolveTCPAddr("tcp", *listen)
	lfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	var sa unix.SockaddrInet4
	sa.Port = la.Port
	copy(sa.Addr[:], la.IP.To4())
	if err := unix.Bind(lfd, &sa); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	unix.Listen(lfd, 4096)
	ep, _ = unix.EpollCreate1(0)
	unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)})
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(ep, events, -1)
		if err != nil {
			continue
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == lfd {
				for {
					cfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
					if err != nil {
						break
					}
					unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					add(cfd, &conn{fd: cfd, in: make([]byte, 16384)}, unix.EPOLLIN)
				}
				continue
			}
			c := conns[fd]
			if c == nil {
				continue
			}
			ev := events[i].Events
			if ev&unix.EPOLLOUT != 0 {
				if len(c.out) > 0 {
					k, err := unix.Write(c.fd, c.out)
					if err != nil && err != unix.EAGAIN {
						closeConn(c)
						continue
					}
					if k > 0 {
						c.out = c.out[k:]
					}
				}
				if len(c.out) == 0 {
					unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)})
				}
			}
			if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.fd >= 0 {
				if c.backend {
					onBackend(c)
				} else {
					onClient(c)
				}
			}
		}
	}
}
