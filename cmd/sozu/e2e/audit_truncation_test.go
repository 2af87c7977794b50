package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// jsonLines returns the complete lines of the JSON audit file.
func jsonLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

// recordSeq is the seq of one JSON audit line.
func recordSeq(t *testing.T, line []byte) uint64 {
	t.Helper()
	var r struct{ Seq uint64 }
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("audit line %q: %v", line, err)
	}
	return r.Seq
}

// TestAuditTruncationAtRestartIsReported is security review item 9: the
// last records of the JSON trail are cut off at a line boundary (`head -n
// 4`) while the proxy is down. After a restart and one verb, `sozu audit
// verify` must not say "chain intact": it names the missing records and
// the audit.tamper record, and `sozu compliance` fails audit.tamper with
// that record as evidence.
func TestAuditTruncationAtRestartIsReported(t *testing.T) {
	t.Parallel()
	p := startComplianceProxy(t, 90*24*time.Hour, "")
	jsonPath := filepath.Join(p.Dir, "audit", "audit.jsonl")
	sozutest.WaitFor(t, 20*time.Second, "9 records in "+jsonPath, func() bool {
		if len(jsonLines(t, jsonPath)) >= 9 {
			return true
		}
		p.MustCLI("status")
		return false
	})
	p.Stop()
	all := jsonLines(t, jsonPath)
	lastSeq := recordSeq(t, all[len(all)-1])
	if err := os.WriteFile(jsonPath, bytes.Join(all[:4], nil), 0o640); err != nil {
		t.Fatal(err)
	}

	p2 := sozutest.Start(t, p.Dir, p.CfgPath, p.Sock)
	p2.MustCLI("status")

	out, errOut, code := p2.CLI("audit", "verify", jsonPath)
	if code != 1 || strings.Contains(out, "chain intact") {
		t.Fatalf("audit verify of the truncated file: exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	t.Logf("sozu audit verify:\n%s", errOut)
	missing := "seq 5 to " + strconv.FormatUint(lastSeq, 10) + " missing"
	for _, want := range []string{"line 5 ", missing, "audit.tamper"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("audit verify's report lacks %q:\n%s", want, errOut)
		}
	}
	text, textCode, report, jsonCode := runCompliance(t, p2)
	if textCode != 1 || jsonCode != 1 {
		t.Errorf("sozu compliance: exit %d (text) and %d (json), want 1", textCode, jsonCode)
	}
	t.Logf("sozu compliance:\n%s", text)
	if got := report.statuses()["audit.tamper"]; got != "fail" {
		t.Errorf("audit.tamper: %q, want fail\n%s", got, text)
	}
	if !regexp.MustCompile(`(?m)^  fail  audit\.tamper .*\n(?: +.*\n)* +line 5 \(seq \d+\): .*` + regexp.QuoteMeta(missing)).MatchString(text) {
		t.Errorf("the compliance report does not show the tamper record as evidence:\n%s", text)
	}
}

// TestAuditVerifyRotatedPiece: after logrotate (rename, `sozu audit
// reopen`), the new file starts at the reopen record. `sozu audit verify`
// refuses it as a whole trail (it does not start a chain) and accepts it
// with --rotated, naming the seq it starts at.
func TestAuditVerifyRotatedPiece(t *testing.T) {
	t.Parallel()
	p := startComplianceProxy(t, 90*24*time.Hour, "")
	jsonPath := filepath.Join(p.Dir, "audit", "audit.jsonl")
	if err := os.Rename(jsonPath, jsonPath+".1"); err != nil {
		t.Fatal(err)
	}
	p.MustCLI("audit", "reopen")
	p.MustCLI("status")
	first := recordSeq(t, jsonLines(t, jsonPath)[0])
	if first < 2 {
		t.Fatalf("the rotated file starts at seq %d", first)
	}
	out, errOut, code := p.CLI("audit", "verify", jsonPath)
	if code != 1 || !strings.Contains(errOut, "--rotated") {
		t.Errorf("audit verify without --rotated: exit %d, want 1 naming --rotated\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out, errOut, code = p.CLI("audit", "verify", "--rotated", jsonPath)
	want := "a rotated piece starting at seq " + strconv.FormatUint(first, 10)
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("audit verify --rotated: exit %d, want 0 and %q\nstdout: %s\nstderr: %s", code, want, out, errOut)
	}
	out, errOut, code = p.CLI("audit", "verify", jsonPath+".1")
	if code != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("audit verify of the old file: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
