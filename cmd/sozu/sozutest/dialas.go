package sozutest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/frame"
)

// dialAsEnv, when set, makes the test binary connect to the command socket
// it names and pass the connection to its parent on fd 3 (see DialAs)
// instead of running tests.
const dialAsEnv = "SOZUTEST_DIAL_AS_CHILD"

// dialAsChild is the child side of DialAs; it never returns.
func dialAsChild(sock string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "sozutest dial-as child:", err)
		os.Exit(1)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		fail(err)
	}
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		fail(err)
	}
	parent, err := net.FileConn(os.NewFile(3, "parent"))
	if err != nil {
		fail(err)
	}
	if _, _, err := parent.(*net.UnixConn).WriteMsgUnix([]byte{0}, syscall.UnixRights(int(f.Fd())), nil); err != nil {
		fail(err)
	}
	os.Exit(0)
}

var (
	helperOnce sync.Once
	helperPath string
	helperErr  error
)

// helper copies the running test binary where every user may run it.
func helper() (string, error) {
	helperOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			helperErr = err
			return
		}
		in, err := os.Open(self)
		if err != nil {
			helperErr = err
			return
		}
		defer in.Close()
		helperPath = filepath.Join(filepath.Dir(Bin), "dial-as-helper")
		out, err := os.OpenFile(helperPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			helperErr = err
			return
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			helperErr = err
			return
		}
		helperErr = out.Close()
	})
	return helperPath, helperErr
}

// DialAs connects to the command socket sock as the user cred and returns
// a client on that connection: the supervisor sees cred's uid and gids as
// the peer (SO_PEERCRED is taken at connect), while the test drives the
// connection itself. A copy of the test binary, run as cred, connects and
// hands the connection over by SCM_RIGHTS. The socket's directory must be
// searchable by cred.
func DialAs(t testing.TB, cred *syscall.Credential, sock string) *Client {
	t.Helper()
	bin, err := helper()
	if err != nil {
		t.Fatalf("dial-as helper: %v", err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "dial-as parent"), os.NewFile(uintptr(fds[1]), "dial-as child")
	defer mine.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), dialAsEnv+"="+sock, "GORACE=atexit_sleep_ms=0")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	theirs.Close()
	if err != nil {
		t.Fatalf("connecting to %s as uid %d: %v\n%s", sock, cred.Uid, err, out)
	}
	pc, err := net.FileConn(mine)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	buf, oob := make([]byte, 1), make([]byte, syscall.CmsgSpace(4))
	_, oobn, _, _, err := pc.(*net.UnixConn).ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("receiving the connection from the dial-as child: %v", err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("dial-as child sent no descriptor: %v", err)
	}
	rights, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(rights) != 1 {
		t.Fatalf("dial-as child sent no descriptor: %v", err)
	}
	f := os.NewFile(uintptr(rights[0]), "command socket as uid")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{Conn: c, r: frame.NewReader(c, frame.DefaultMaxSize)}
}
