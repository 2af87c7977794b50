//go:build linux && cgo

package sandbox

import (
	"bufio"
	"errors"
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
// after the marker (that is, confined) to be named by the policy. Calls the
// policy names but the workload did not make are logged: each must have a
// reason outside the workload (docs/sandbox.md). Skipped without strace.
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
	w := startWorkload(t, ModeOff, []string{strace, "-f", "-qq", "-o", log}, envMarker+"=1")
	w.drive(t, nil)

	counts, err := callsAfterMarker(log)
	if err != nil {
		t.Fatal(err)
	}
	rules := Rules()
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
	straceCall    = regexp.MustCompile(`^\d+\s+([a-z0-9_]+)\(`)
	straceResumed = regexp.MustCompile(`^\d+\s+<\.\.\. ([a-z0-9_]+) resumed>`)
)

// callsAfterMarker counts the system calls an strace -f log shows after the
// marker write (calls resumed after it included: a restart is checked again).
func callsAfterMarker(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := map[string]int{}
	after := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !after {
			after = strings.Contains(line, `write(-1, "`+marker)
			continue
		}
		if m := straceCall.FindStringSubmatch(line); m != nil {
			counts[m[1]]++
		} else if m := straceResumed.FindStringSubmatch(line); m != nil {
			counts[m[1]]++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !after {
		return nil, errNoMarker
	}
	return counts, nil
}

var errNoMarker = errors.New("strace log: no marker (the victim did not reach Confine's end)")
