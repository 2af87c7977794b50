package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// TestVerbTable checks the table itself: each verb is either local or a
// request, has a valid example that dispatches to it, and its flags are
// consistent with the same names elsewhere.
func TestVerbTable(t *testing.T) {
	kinds := map[string]*flagSpec{}
	for _, f := range globalFlags {
		kinds[f.long] = f
	}
	for _, v := range verbs {
		if (v.build == nil) == (v.run == nil) {
			t.Errorf("%s: exactly one of build and run must be set", v.path)
		}
		if v.summary == "" || v.example == "" {
			t.Errorf("%s: summary and example are required", v.path)
		}
		if lookup(v.path) == nil || lookup(v.path).verb != v {
			t.Errorf("%s: not in the command tree", v.path)
		}
		for _, f := range v.flags {
			if slices.ContainsFunc(globalFlags, func(g *flagSpec) bool { return g.long == f.long }) != f.shadows {
				t.Errorf("%s: flag --%s: shadows is %v, but a global flag of that name exists: %v", v.path, f.long, f.shadows, !f.shadows)
			}
			if g := v.flagByName(f.long, false); g != f {
				t.Errorf("%s: flag --%s shadowed by a global flag or listed twice", v.path, f.long)
			}
			if f.short != "" {
				if g := v.flagByName(f.short, true); g != f {
					t.Errorf("%s: short flag -%s of --%s collides", v.path, f.short, f.long)
				}
			}
			if prev, ok := kinds[f.long]; ok && (prev.kind != f.kind || prev.short != f.short && prev.short != "" && f.short != "") {
				t.Errorf("%s: --%s has another kind or short name than elsewhere", v.path, f.long)
			}
			kinds[f.long] = f
			if f.takesValue() && f.metavar == "" {
				t.Errorf("%s: --%s needs a metavar", v.path, f.long)
			}
		}
		for _, g := range v.exclusive {
			for _, name := range g {
				if v.flagByName(name, false) == nil {
					t.Errorf("%s: exclusive group names unknown flag --%s", v.path, name)
				}
			}
		}
		for _, g := range v.oneRequired {
			if !slices.ContainsFunc(v.exclusive, func(e []string) bool { return slices.Equal(e, g) }) {
				t.Errorf("%s: oneRequired group %v is not also an exclusive group", v.path, g)
			}
		}
		// A verb whose flags name files it sends (FILE metavar, not a
		// path the supervisor opens) must read them in its load step.
		if v.build != nil && v.load == nil {
			for _, f := range v.flags {
				if f.metavar == "FILE" && f != fFile {
					t.Errorf("%s: --%s names a file but the verb has no load step", v.path, f.long)
				}
			}
		}
		if v.load != nil && v.build == nil {
			t.Errorf("%s: load without build", v.path)
		}
	}
	for _, g := range groups {
		if n := lookup(g.path); n == nil || len(n.children) == 0 {
			t.Errorf("group %q has no verbs", g.path)
		}
	}
}

// TestEveryVerbDispatches runs each verb's example through parseArgs and
// checks it reaches that verb (with a request for request verbs).
func TestEveryVerbDispatches(t *testing.T) {
	for _, v := range verbs {
		inv, err := parseArgs(strings.Fields(v.example))
		if err != nil {
			t.Errorf("%s: example %q: %v", v.path, v.example, err)
			continue
		}
		if inv.verb != v {
			t.Errorf("%s: example %q dispatches to %v", v.path, v.example, inv.verb)
		}
		if v.build != nil {
			if inv.req == nil || command.VerbKey(inv.req) == "" {
				t.Errorf("%s: no request built", v.path)
			} else if _, err := proto.Marshal(inv.req); err != nil {
				t.Errorf("%s: request misses required fields: %v", v.path, err)
			}
		}
		if !strings.Contains(helpText(lookup(v.path)), "sozu "+v.example) {
			t.Errorf("%s: help lacks the example", v.path)
		}
	}
}

// TestHelpAndCompletionCoverVerbs: every visible verb is in the root help
// and in each completion script; hidden verbs are in none.
func TestHelpAndCompletionCoverVerbs(t *testing.T) {
	help := helpText(root)
	scripts := map[string]string{}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		s, ok := completionScript(sh)
		if !ok {
			t.Fatalf("no %s script", sh)
		}
		scripts[sh] = s
	}
	for _, v := range verbs {
		words := strings.Fields(v.path)
		last := words[len(words)-1]
		parent := strings.Join(words[:len(words)-1], " ")
		inHelp := strings.Contains(help, "  "+v.path+" ")
		if inHelp == v.hidden {
			t.Errorf("%s: in root help = %v, hidden = %v", v.path, inHelp, v.hidden)
		}
		for sh, s := range scripts {
			var offered bool
			switch sh {
			case "bash":
				offered = strings.Contains(s, fmt.Sprintf("%q) words=", parent)) &&
					slices.Contains(strings.Fields(bashWords(s, parent)), last)
			case "zsh":
				offered = slices.Contains(strings.Fields(zshWords(s, parent)), last)
			case "fish":
				offered = strings.Contains(s, fmt.Sprintf("-n %s -a %s ", fishQuote("__sozu_at "+fishQuote(parent)), last))
			}
			if offered == v.hidden {
				t.Errorf("%s: offered by %s completion = %v, hidden = %v", v.path, sh, offered, v.hidden)
			}
			if v.hidden && hiddenVerbAppears(s, v.path) {
				t.Errorf("%s: hidden verb appears in the %s script", v.path, sh)
			}
		}
		if v.hidden {
			continue
		}
		for _, f := range v.flags {
			if !slices.Contains(strings.Fields(bashWords(scripts["bash"], v.path)), "--"+f.long) {
				t.Errorf("%s: bash completion lacks --%s", v.path, f.long)
			}
			if !strings.Contains(scripts["fish"], fishQuote("__sozu_at "+fishQuote(v.path))+" -l "+f.long) {
				t.Errorf("%s: fish completion lacks --%s", v.path, f.long)
			}
		}
	}
}

// bashWords extracts the words offered at path from the bash script.
func bashWords(script, path string) string {
	key := fmt.Sprintf("        %q) words=", path)
	i := strings.Index(script, key)
	if i < 0 {
		return ""
	}
	line := script[i+len(key):]
	line = line[:strings.IndexByte(line, '\n')]
	return strings.Trim(strings.TrimSuffix(line, " ;;"), `"`)
}

func zshWords(script, path string) string {
	key := fmt.Sprintf("        (%q) offer=(", path)
	i := strings.Index(script, key)
	if i < 0 {
		return ""
	}
	line := script[i+len(key):]
	return line[:strings.IndexByte(line, ')')]
}

// TestBashCompletionRuns loads the bash script into a real bash and asks
// it for completions.
func TestBashCompletionRuns(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, _ := completionScript("bash")
	tests := []struct {
		line string // words typed; the last one is being completed
		want []string
		not  []string
	}{
		{"sozu ''", []string{"status", "cluster", "listener", "completion"}, []string{"worker"}},
		{"sozu cl", []string{"cluster"}, []string{"status"}},
		{"sozu -c /etc/x.toml cluster ''", []string{"list", "add", "remove"}, nil},
		{"sozu cluster add --lo", []string{"--load-balancing-policy", "--load-metric"}, nil},
		{"sozu cluster add --load-balancing-policy ''", []string{"round_robin", "power_of_two"}, []string{"--id"}},
		{"sozu -t 10 frontend http add --id shop --ho", []string{"--hostname"}, nil},
		{"sozu completion ''", []string{"bash", "zsh", "fish"}, nil},
		{"sozu help listener ''", []string{"http", "https", "tcp", "list"}, nil},
		{"sozu certificate ''", []string{"list", "add", "replace", "remove"}, nil},
		{"sozu certificate replace --new-c", []string{"--new-certificate", "--new-certificate-chain"}, []string{"--certificate"}},
	}
	for _, tt := range tests {
		prog := script + "\nCOMP_WORDS=(" + tt.line + ")\nCOMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n_sozu\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command(bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.line, err, out)
		}
		got := strings.Fields(string(out))
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: completions %q lack %q", tt.line, got, w)
			}
		}
		for _, w := range tt.not {
			if slices.Contains(got, w) {
				t.Errorf("%s: completions %q include %q", tt.line, got, w)
			}
		}
	}
}

// TestCompletionScriptsParse checks the syntax of each script with its
// shell, when installed.
func TestCompletionScriptsParse(t *testing.T) {
	for sh, check := range map[string][]string{"bash": {"-n"}, "zsh": {"-n"}, "fish": {"--no-execute"}} {
		bin, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("%s not installed: syntax not checked", sh)
			continue
		}
		script, _ := completionScript(sh)
		cmd := exec.Command(bin, check...)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
}

func TestRunHelpAndCompletion(t *testing.T) {
	a, out, errOut := testApp(t)
	if code := a.run([]string{"help", "cluster", "add"}); code != exitOK || out.String() != helpText(lookup("cluster add")) {
		t.Errorf("help cluster add: exit %d", code)
	}
	out.Reset()
	if code := a.run([]string{"cluster", "add", "-h"}); code != exitOK || out.String() != helpText(lookup("cluster add")) {
		t.Errorf("cluster add -h: exit %d", code)
	}
	out.Reset()
	if code := a.run([]string{"help", "worker"}); code != exitUsage || out.Len() != 0 || !strings.Contains(errOut.String(), `no verb "worker"`) {
		t.Errorf("help worker: exit %d stderr %q", code, errOut)
	}
	out.Reset()
	if code := a.run([]string{"completion", "fish"}); code != exitOK || !strings.HasPrefix(out.String(), "# fish completion") {
		t.Errorf("completion fish: exit %d", code)
	}
	out.Reset()
	if code := a.run([]string{"version", "-j"}); code != exitOK || !strings.Contains(out.String(), `"message": "sozu `) {
		t.Errorf("version -j: exit %d %q", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"usage", &usageError{msg: "x"}, exitUsage},
		{"config", &configError{path: "/x", err: errors.New("bad")}, exitConfig},
		{"config unreadable", &configError{path: "/x", err: fmt.Errorf("read: %w", os.ErrPermission)}, exitNoPerm},
		{"no socket", &ConnError{Op: "connect", Path: "/s", Err: syscall.ENOENT}, exitUnavailable},
		{"refused", &ConnError{Op: "connect", Path: "/s", Err: syscall.ECONNREFUSED}, exitUnavailable},
		{"socket permission", &ConnError{Op: "connect", Path: "/s", Err: syscall.EACCES}, exitNoPerm},
		{"timeout", &ConnError{Op: "receive", Err: context.DeadlineExceeded}, exitUnavailable},
		{"eof", &ConnError{Op: "receive", Err: io.EOF}, exitUnavailable},
		{"reset", &ConnError{Op: "send", Err: syscall.ECONNRESET}, exitUnavailable},
		{"bad frame", &ConnError{Op: "receive", Err: &frame.DecodeError{Err: errors.New("x")}}, exitFailure},
		{"too large", &ConnError{Op: "receive", Err: &frame.TooLargeError{Length: 9, Max: 8}}, exitFailure},
		{"other", errors.New("x"), exitFailure},
	}
	for _, tt := range tests {
		if got := exitCodeFor(tt.err); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
	}
	for msg, want := range map[*command.Response]int{
		resp(ok, "done", nil):                                  exitOK,
		resp(failure, "Did not find Cluster", nil):             exitFailure,
		resp(failure, "unauthorized: actor UID 1000 not", nil): exitNoPerm,
		resp(failure, "not unauthorized: x", nil):              exitFailure,
	} {
		if got := exitCodeForResponse(msg); got != want {
			t.Errorf("%q: exit %d, want %d", msg.GetMessage(), got, want)
		}
	}
}

// TestHelpNamesRoleFromCatalogue: a verb's help says which request it
// sends and the role it needs, as the verb catalogue has them.
func TestHelpNamesRoleFromCatalogue(t *testing.T) {
	for path, want := range map[string]string{
		"cluster add": "Sends add_cluster (cluster.add); needs the admin role.",
		"status":      "Sends status (status.get); needs the read-only role.",
	} {
		if h := helpText(lookup(path)); !strings.Contains(h, want) {
			t.Errorf("help %s lacks %q:\n%s", path, want, h)
		}
	}
	if h := helpText(lookup("config check")); strings.Contains(h, "Sends ") {
		t.Errorf("config check is answered locally, yet its help says:\n%s", h)
	}
}

// hiddenVerbAppears reports whether path appears in a completion script
// elsewhere than in a flag's completion line (a flag may share a hidden
// verb's name: upgrade --worker and the hidden worker verb).
func hiddenVerbAppears(script, path string) bool {
	for _, line := range strings.Split(script, "\n") {
		if strings.Contains(line, " -l "+path+" ") {
			continue // fish: the completion of a --path flag
		}
		if strings.Contains(line, " "+path+" ") || strings.Contains(line, "("+path+" ") {
			return true
		}
	}
	return false
}
