// Package sdnotify tells systemd about the supervisor's state through the
// datagram socket named by $NOTIFY_SOCKET (the sd_notify(3) protocol):
// READY=1 once workers serve, RELOADING=1 around a reload, MAINPID= when a
// new supervisor takes over, STOPPING=1 at shutdown.
//
// Without $NOTIFY_SOCKET every call is a no-op that returns nil, so the
// supervisor calls it unconditionally. A name starting with '@' is an
// abstract socket, as systemd documents.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Env is the environment variable systemd sets for Type=notify units.
const Env = "NOTIFY_SOCKET"

// Well-known states (sd_notify(3)).
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
)

// MainPID is the state that names pid as the unit's main process (sent by
// the supervisor that hands over on upgrade, naming its successor).
func MainPID(pid int) string { return "MAINPID=" + strconv.Itoa(pid) }

// Status is a free-text status line systemctl shows.
func Status(s string) string { return "STATUS=" + s }

// Socket returns the notification socket's address, "" when systemd did
// not ask for notifications.
func Socket() string { return os.Getenv(Env) }

// Notify sends one datagram holding states joined by newlines. It returns
// nil when $NOTIFY_SOCKET is unset, and an error naming the socket when it
// is set but the datagram cannot be sent. It never blocks longer than one
// second.
func Notify(states ...string) error {
	addr := Socket()
	if addr == "" || len(states) == 0 {
		return nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return fmt.Errorf("sdnotify: %s=%q: neither an absolute path nor an abstract name", Env, addr)
	}
	name := addr
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %s=%q: %w", Env, addr, err)
	}
	defer c.Close()
	var msg []byte
	for i, s := range states {
		if s == "" {
			return errors.New("sdnotify: empty state")
		}
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, s...)
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("sdnotify: %s=%q: %w", Env, addr, err)
	}
	return nil
}
