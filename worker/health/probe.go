package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/sozu-go/sozu/worker/logmask"
)

// maxResponseHead bounds what an HTTP probe reads: the status line must
// end within it. The rest of the answer is never read.
const maxResponseHead = 4096

// userAgent names the probe to the backend's logs.
const userAgent = "sozu-health-check"

// Dialer opens a TCP connection (a net.Dialer's DialContext).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Request returns the bytes of the HTTP probe of uri at addr ("ip:port"):
// a GET in HTTP/1.1 with Host set to the backend's address (as upstream;
// backends behind virtual hosts need a health endpoint that answers any
// Host), Connection: close, and nothing else. It is built from the
// configuration only: no header of any client ever reaches a probe.
func Request(uri, addr string) []byte {
	return []byte("GET " + uri + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: " + userAgent +
		"\r\nAccept: */*\r\nConnection: close\r\n\r\n")
}

// ProbeError says why a probe failed, and where.
type ProbeError struct {
	Addr string
	Step string // "connect", "write", "read", "status"
	Err  error
}

func (e *ProbeError) Error() string {
	return fmt.Sprintf("health probe of %s: %s: %v", e.Addr, e.Step, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe runs one probe of the backend at addr under cfg within cfg.Timeout:
// for a TCP cluster, a connect; else a GET of cfg.URI, in HTTP/1.1 or, with
// cfg.H2C, in HTTP/2 with prior knowledge (as the cluster's requests go),
// whose status must be cfg.Expected (0: any 2xx). It returns nil on
// success, else a *ProbeError.
//
// For a UDP cluster: with cfg.UDP, cfg.UDPPayload is sent from a connected
// UDP socket and any reply within the timeout succeeds (an ICMP port
// unreachable fails at once); else a TCP connect to cfg.Port when it is
// not 0, to the backend's own port otherwise.
func Probe(ctx context.Context, dial Dialer, cfg Config, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if cfg.UDP {
		return probeUDP(ctx, dial, cfg, addr)
	}
	if cfg.Port != 0 {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return &ProbeError{addr, "connect", err}
		}
		addr = net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))
	}
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return &ProbeError{addr, "connect", err}
	}
	defer c.Close()
	if cfg.TCP {
		return nil
	}
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	if cfg.H2C {
		return probeH2C(c, cfg, addr)
	}
	if _, err := c.Write(Request(cfg.URI, addr)); err != nil {
		return &ProbeError{addr, "write", err}
	}
	var buf [maxResponseHead]byte
	n := 0
	for {
		if i := bytes.Index(buf[:n], []byte("\r\n")); i >= 0 {
			code, err := ParseStatusLine(buf[:i])
			if err != nil {
				return &ProbeError{addr, "status", err}
			}
			if !statusOK(code, cfg.Expected) {
				return &ProbeError{addr, "status", fmt.Errorf("got %d, want %s", code, expectation(cfg.Expected))}
			}
			return nil
		}
		if n == len(buf) {
			return &ProbeError{addr, "read", fmt.Errorf("no status line in the first %d bytes", len(buf))}
		}
		m, err := c.Read(buf[n:])
		n += m
		if err != nil && m == 0 {
			if errors.Is(err, io.EOF) {
				err = errors.New("connection closed before a status line")
			}
			return &ProbeError{addr, "read", err}
		}
	}
}

// maxUDPReply bounds what a UDP probe reads of the reply it waits for.
const maxUDPReply = 2048

// probeUDP sends cfg.UDPPayload to addr and waits for any datagram back.
func probeUDP(ctx context.Context, dial Dialer, cfg Config, addr string) error {
	c, err := dial(ctx, "udp", addr)
	if err != nil {
		return &ProbeError{addr, "connect", err}
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	if _, err := c.Write(cfg.UDPPayload); err != nil {
		return &ProbeError{addr, "write", err}
	}
	var buf [maxUDPReply]byte
	if _, err := c.Read(buf[:]); err != nil {
		return &ProbeError{addr, "read", err}
	}
	return nil
}

func statusOK(code, expected int) bool {
	if expected == 0 {
		return code >= 200 && code <= 299
	}
	return code == expected
}

func expectation(expected int) string {
	if expected == 0 {
		return "any 2xx"
	}
	return strconv.Itoa(expected)
}

// ParseStatusLine reads the status code of an HTTP/1.x status line (without
// its CRLF): "HTTP/1.1 200 OK", strictly as RFC 9112 §4 writes it (version
// HTTP/1.0 or HTTP/1.1, one space, three digits, then end of line or a
// space and a reason).
func ParseStatusLine(line []byte) (int, error) {
	const prefix = len("HTTP/1.x ")
	if len(line) < prefix+3 || !(bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || bytes.HasPrefix(line, []byte("HTTP/1.0 "))) {
		// What a backend sent goes to the logs and events: at most 40
		// bytes of it, a PAN in them masked (PCI DSS 3.4).
		return 0, fmt.Errorf("not an HTTP/1.x status line: %.40q", logmask.AppendPANMasked(nil, line[:min(len(line), 40)]))
	}
	d := line[prefix : prefix+3]
	if d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' {
		return 0, fmt.Errorf("status code %.3q is not three digits 100-599", d)
	}
	if len(line) > prefix+3 && line[prefix+3] != ' ' {
		return 0, fmt.Errorf("status code followed by %q, not a space", line[prefix+3])
	}
	return int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0'), nil
}

// compile-time check that a net.Dialer fits.
var _ Dialer = (&net.Dialer{}).DialContext
