package main

import (
	"strings"
	"testing"
)

// TestRunTopRefusesNonTerminal: without a terminal `sozu top` is a usage
// error that points to the script-friendly verbs; nothing is dialled.
func TestRunTopRefusesNonTerminal(t *testing.T) {
	a, out, errOut := testApp(t)
	a.isTTY = func() bool { return false }
	if code := a.run([]string{"top"}); code != exitUsage || out.Len() != 0 || !strings.Contains(errOut.String(), "needs a terminal") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

// TestRunTopUnreachable: an unreachable socket is reported before the
// terminal is taken over (exit 69).
func TestRunTopUnreachable(t *testing.T) {
	a, _, errOut := testApp(t)
	a.isTTY = func() bool { return true }
	withSocket(a, socketPath(t))
	if code := a.run([]string{"top"}); code != exitUnavailable || !strings.Contains(errOut.String(), "unreachable") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestRunTopRefusesJSON: -j means nothing to the terminal view; it is
// refused rather than ignored.
func TestRunTopRefusesJSON(t *testing.T) {
	a, _, errOut := testApp(t)
	a.isTTY = func() bool { return true }
	if code := a.run([]string{"top", "-j"}); code != exitUsage || !strings.Contains(errOut.String(), "--json does not apply") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
