package supervisor

import (
	"os/exec"
	"testing"
)

func TestSandboxViolationIsSIGSYS(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   bool
	}{
		{"kill -SYS $$", true},
		{"kill -KILL $$", false},
		{"exit 3", false},
		{"exit 0", false},
	} {
		err := exec.Command("/bin/sh", "-c", tc.script).Run()
		if got := sandboxViolation(err); got != tc.want {
			t.Errorf("%q: sandboxViolation(%v) = %v, want %v", tc.script, err, got, tc.want)
		}
	}
}
