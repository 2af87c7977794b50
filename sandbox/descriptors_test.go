//go:build linux && cgo

package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inheritedFD is where descriptor victims find the file their parent left
// open without close-on-exec.
const inheritedFD = 7

// descriptorsMain runs in a victim started with /dev/null on 3-5 and a
// file on inheritedFD. "inherited": CloseInherited(3, 4, 5); "cloexec" and
// "cloexec-listed": SetCloseOnExecFrom(3) and its /proc fallback. It
// reports the closed descriptors, the close-on-exec flag of 3, 4, 5 and
// inheritedFD, and whether the network poller still works (the runtime's
// own descriptors were left alone).
func descriptorsMain(name string) int {
	var closed []int
	var err error
	switch name {
	case "inherited":
		closed, err = CloseInherited(3, 4, 5)
	case "cloexec":
		err = SetCloseOnExecFrom(3)
	case "cloexec-listed":
		err = setCloseOnExecListed(3)
	}
	if err != nil {
		fmt.Println("error:", err)
		return 0
	}
	var flags []string
	for _, fd := range []int{3, 4, 5, inheritedFD} {
		f, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		switch {
		case err != nil:
			flags = append(flags, fmt.Sprintf("%d:%s", fd, errnoName(err.(unix.Errno))))
		case f&unix.FD_CLOEXEC != 0:
			flags = append(flags, fmt.Sprintf("%d:cloexec", fd))
		default:
			flags = append(flags, fmt.Sprintf("%d:inherit", fd))
		}
	}
	// Above inheritedFD: whatever the test process itself inherited from
	// its environment (a CI runner's pipe), closed as well.
	var mine []int
	for _, fd := range closed {
		if fd <= inheritedFD {
			mine = append(mine, fd)
		}
	}
	fmt.Printf("closed=%v %s net=%s\n", mine, strings.Join(flags, " "), loopback())
	return 0
}

// loopback exchanges a byte over a TCP loopback connection, through the
// runtime's network poller.
func loopback() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err.Error()
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte{'!'})
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "!" {
		return fmt.Sprintf("read %q, %v", b, err)
	}
	return "ok"
}

// TestInheritedDescriptors (security review item 11): a worker started
// with a root-only file open on descriptor 7 closes it and keeps its
// bootstrap descriptors and the runtime's; the supervisor's start-up marks
// every descriptor above 2 close-on-exec (close_range, and the /proc
// fallback).
func TestInheritedDescriptors(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"inherited", "closed=[7] 3:inherit 4:inherit 5:inherit 7:EBADF net=ok"},
		{"cloexec", "closed=[] 3:cloexec 4:cloexec 5:cloexec 7:cloexec net=ok"},
		{"cloexec-listed", "closed=[] 3:cloexec 4:cloexec 5:cloexec 7:cloexec net=ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.OpenFile(secret, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			null, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			defer null.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := victimCmd(ctx, t, "fd:"+tt.name, ModeOff, true)
			cmd.ExtraFiles = []*os.File{null, null, null, nil, f} // 3, 4, 5; 6 closed; 7
			out, err := cmd.Output()
			if got := strings.TrimSpace(string(out)); err != nil || got != tt.want {
				t.Fatalf("victim: %q, %v (stderr %s); want %q", got, err, cmd.Stderr, tt.want)
			}
		})
	}
}
