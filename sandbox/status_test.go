package sandbox

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

const sampleStatus = `Name:	sozu
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Pid:	4243
Uid:	65534	65534	65534	65534
Gid:	65534	65534	65534	65534
FDSize:	64
Groups:	 
CapInh:	0000000000000000
CapPrm:	0000000000000000
CapEff:	0000000000000000
CapBnd:	000001ffffffffff
NoNewPrivs:	1
Seccomp:	2
Seccomp_filters:	2
Speculation_Store_Bypass:	thread vulnerable
`

func TestParseThreadStatus(t *testing.T) {
	got, err := ParseThreadStatus([]byte(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	want := ThreadStatus{TID: 4243, Name: "sozu", UIDs: [4]int{65534, 65534, 65534, 65534},
		GIDs: [4]int{65534, 65534, 65534, 65534}, NoNewPrivs: true, Seccomp: 2, Filters: 2}
	if got.TID != want.TID || got.Name != want.Name || got.UIDs != want.UIDs || got.GIDs != want.GIDs ||
		len(got.Groups) != 0 || got.NoNewPrivs != want.NoNewPrivs || got.Seccomp != want.Seccomp ||
		got.Filters != want.Filters || got.CapEff != 0 || got.CapPrm != 0 || !got.Confined() {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	tests := []struct {
		name, edit, with, err string
	}{
		{"groups", "Groups:\t \n", "Groups:\t4 27\n", ""},
		{"root caps", "CapEff:\t0000000000000000", "CapEff:\t000001ffffffffff", ""},
		{"no seccomp line", "Seccomp:\t2\n", "", "field Seccomp missing"},
		{"no nnp line", "NoNewPrivs:\t1\n", "", "field NoNewPrivs missing"},
		{"short uid", "Uid:\t65534\t65534\t65534\t65534", "Uid:\t0 0", `field Uid: invalid value "0 0"`},
		{"bad seccomp", "Seccomp:\t2", "Seccomp:\tx", `field Seccomp: invalid value "x"`},
		{"bad cap", "CapEff:\t0000000000000000", "CapEff:\tzz", `field CapEff: invalid value "zz"`},
		{"bad group", "Groups:\t \n", "Groups:\t4 x\n", `field Groups: invalid value "4 x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Replace(sampleStatus, tt.edit, tt.with, 1)
			if in == sampleStatus {
				t.Fatalf("edit %q not found", tt.edit)
			}
			ts, err := ParseThreadStatus([]byte(in))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.name == "groups" && (len(ts.Groups) != 2 || ts.Groups[1] != 27) {
					t.Fatalf("groups %v", ts.Groups)
				}
				if tt.name == "root caps" && ts.CapEff != 0x1ffffffffff {
					t.Fatalf("CapEff %x", ts.CapEff)
				}
				return
			}
			if err == nil || err.Error() != tt.err {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

// TestStatusSelf reads this (unconfined) test process: every thread is
// listed, and Verify names the threads that are not confined.
func TestStatusSelf(t *testing.T) {
	threads, err := Status(0)
	if err != nil {
		t.Fatal(err)
	}
	byPid, err := Status(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) == 0 || len(byPid) == 0 || threads[0].TID != os.Getpid() {
		t.Fatalf("Status(0) = %+v; Status(pid) = %d threads", threads, len(byPid))
	}
	for _, th := range threads {
		if th.Seccomp != 0 {
			t.Skipf("the test process itself runs under seccomp (thread %d): %+v", th.TID, th)
		}
	}
	err = Verify(0)
	if err == nil || !strings.Contains(err.Error(), "thread "+strconv.Itoa(os.Getpid())+" (") ||
		!strings.Contains(err.Error(), "Seccomp 0, NoNewPrivs") {
		t.Fatalf("Verify(0) = %v; want an error naming thread %d", err, os.Getpid())
	}
	if _, err := Status(1 << 30); err == nil || !strings.Contains(err.Error(), "/proc/1073741824/task") {
		t.Fatalf("Status of a missing pid: %v", err)
	}
}
