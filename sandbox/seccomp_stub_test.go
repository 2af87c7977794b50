//go:build !linux || !cgo

package sandbox

import (
	"strings"
	"testing"
)

// TestStubRefuses: a build that cannot load a filter refuses to pretend.
func TestStubRefuses(t *testing.T) {
	if Supported {
		t.Fatal("Supported in a stub build")
	}
	for _, m := range []Mode{ModeKill, ModeErrno} {
		if err := Load(m); err == nil || !strings.Contains(err.Error(), "built without cgo") {
			t.Errorf("Load(%s) = %v; want a refusal", m, err)
		}
	}
	if err := Load(ModeOff); err != nil {
		t.Errorf("Load(off) = %v", err)
	}
	if err := Load("bogus"); err == nil {
		t.Error("Load(bogus) = nil")
	}
}
