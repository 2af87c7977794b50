//go:build linux && cgo

package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestPolicyCoversWorkload re-derives the policy: it runs the workload victim
// without a filter under strace -f, and requires every system call made
// after the marker (that is, confined) to be named by the policy, and every
// call of checkedArgs (printed raw by strace) to be allowed with its
// arguments by the policy bound to the victim's pid. Calls the policy names
// but the workload did not make are logged: each must have a reason outside
// the workload (docs/sandbox.md). Skipped without strace.
// SOZU_SANDBOX_TRACE=path keeps the log.
func TestPolicyCoversWorkload(t *testing.T) {
	requireRoot(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed (apt-get install strace)")
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	if p := os.Getenv("SOZU_SANDBOX_TRACE"); p != "" {
		log = p
	}
	w := startWorkload(t, ModeOff, []string{strace, "-f", "-qq", "-e", "raw=" + strings.Join(checkedArgs, ","), "-o", log}, envMarker+"=1")
	w.drive(t, nil)

	tr, err := callsAfterMarker(log)
	if err != nil {
		t.Fatal(err)
	}
	counts := tr.counts
	rules := Rules()
	bound := Bind(rules, tr.pid)
	denied := map[string]int{}
	for _, c := range tr.calls {
		if ok, errno := Decide(bound, c.name, c.args); !ok && errno == 0 {
			denied[fmt.Sprintf("%s(%#x, %#x, %#x)", c.name, c.args[0], c.args[1], c.args[2])]++
		}
	}
	for call, n := range denied {
		t.Errorf("the policy (bound to pid %d) denies %s, made %d times by the workload", tr.pid, call, n)
	}
	t.Logf("%d calls with arguments checked (%s)", len(tr.calls), strings.Join(checkedArgs, " "))
	named := map[string]bool{}
	for _, r := range rules {
		named[r.Syscall] = true
	}
	var seen, missing []string
	for name := range counts {
		seen = append(seen, name)
		if !named[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(seen)
	sort.Strings(missing)
	var report []string
	for _, name := range seen {
		report = append(report, name+"="+strconv.Itoa(counts[name]))
	}
	t.Logf("confined calls (%d): %s", len(seen), strings.Join(report, " "))
	if len(missing) > 0 {
		t.Errorf("the workload made calls the policy does not name: %s", strings.Join(missing, " "))
	}
	var unused []string
	for name := range named {
		if !slices.Contains(seen, name) {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	t.Logf("named by the policy, not made by this workload: %s", strings.Join(unused, " "))
}

var (
	straceCall    = regexp.MustCompile(`^(\d+)\s+([a-z0-9_]+)\(([^)<]*)`)
	straceResumed = regexp.MustCompile(`^\d+\s+<\.\.\. ([a-z0-9_]+) resumed>`)
)

// checkedArgs are the calls the policy allows under conditions: strace
// prints their arguments as numbers (-e raw=…), and the test checks them.
// clone is not among them: strace reorders its arguments even raw.
var checkedArgs = []string{"socket", "setsockopt", "tgkill", "fcntl", "prctl", "mmap", "mprotect"}

// trace is what callsAfterMarker reads from an strace -f log.
type trace struct {
	pid    int            // the traced process (first line of the log)
	counts map[string]int // calls after the marker, by name
	calls  []tracedCall   // calls of checkedArgs after the marker
}

type tracedCall struct {
	name string
	args [6]uint64
}

// callsAfterMarker counts the system calls an strace -f log shows after the
// marker write (calls resumed after it included: a restart is checked again),
// and parses the arguments of the calls named in checkedArgs.
func callsAfterMarker(path string) (*trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := &trace{counts: map[string]int{}}
	after := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if tr.pid == 0 {
			if m := straceCall.FindStringSubmatch(line); m != nil {
				tr.pid, _ = strconv.Atoi(m[1])
			}
		}
		if !after {
			after = strings.Contains(line, `write(-1, "`+marker)
			continue
		}
		if m := straceCall.FindStringSubmatch(line); m != nil {
			tr.counts[m[2]]++
			if slices.Contains(checkedArgs, m[2]) {
				c, err := parseArgs(m[2], m[3])
				if err != nil {
					return nil, fmt.Errorf("strace log %s: %w in %q", path, err, line)
				}
				tr.calls = append(tr.calls, c)
			}
		} else if m := straceResumed.FindStringSubmatch(line); m != nil {
			tr.counts[m[1]]++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !after {
		return nil, errNoMarker
	}
	return tr, nil
}

// parseArgs parses raw strace arguments: numbers, hexadecimal or decimal,
// separated by ", ".
func parseArgs(name, s string) (tracedCall, error) {
	c := tracedCall{name: name}
	s = strings.TrimSpace(s)
	if s == "" {
		return c, nil
	}
	for i, a := range strings.Split(s, ",") {
		if i >= len(c.args) {
			return c, fmt.Errorf("%s: more than %d arguments", name, len(c.args))
		}
		v, err := strconv.ParseUint(strings.TrimSpace(a), 0, 64)
		if err != nil {
			return c, fmt.Errorf("%s: argument %d: %w", name, i, err)
		}
		c.args[i] = v
	}
	return c, nil
}

var errNoMarker = errors.New("strace log: no marker (the victim did not reach Confine's end)")
