package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Verbs handled without the supervisor.

func runStartVerb(a *app, inv *invocation) int {
	return runStart(a.configPath(inv), inv.args)
}

func runWorkerVerb(_ *app, inv *invocation) int {
	return runWorker(inv.args)
}

// runConfigCheck loads the whole configuration (-c, $SOZU_CONFIG or the
// default), reading every file it names, and reports every problem; exit 78
// when there is one.
func runConfigCheck(a *app, inv *invocation) int {
	path := a.configPath(inv)
	warnings, notes, err := a.checkConfig(path)
	if err == nil {
		msg, status, code := "configuration OK: "+path, "OK", exitOK
		if len(warnings) > 0 {
			msg = fmt.Sprintf("configuration OK: %s, with %d %s not in force", path, len(warnings), plural(len(warnings), "key"))
			if inv.values.flag("strict") {
				msg = fmt.Sprintf("invalid configuration (--strict): %s: %d %s not in force", path, len(warnings), plural(len(warnings), "key"))
				status, code = "FAILURE", exitConfig
			}
		}
		if inv.json {
			return a.printJSON(jsonEnvelope{Status: status, Message: msg, Warnings: warnings, Notes: notes}, code)
		}
		for _, n := range notes {
			fmt.Fprintln(a.stderr, "note: "+cleanText(n, true))
		}
		for _, w := range warnings {
			fmt.Fprintln(a.stderr, "warning: "+cleanText(w, true))
		}
		if code != exitOK {
			fmt.Fprintln(a.stderr, "sozu config check: "+msg)
			return code
		}
		fmt.Fprintln(a.stdout, msg)
		return exitOK
	}
	code := a.fail(inv, &configError{path: path, err: err})
	if inv.json {
		a.printJSON(jsonEnvelope{Status: "FAILURE", Message: "invalid configuration: " + path, Errors: configErrorLines(err)}, code)
	}
	return code
}

// configErrorLines lists the problems of a configuration error, one per
// item: the items of a list error (config.Errors), else its lines.
func configErrorLines(err error) []string {
	l, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return strings.Split(err.Error(), "\n")
	}
	var lines []string
	for _, e := range l.Unwrap() {
		lines = append(lines, strings.Split(e.Error(), "\n")...)
	}
	return lines
}

func runHelp(a *app, inv *invocation) int {
	n := lookup(strings.Join(inv.args, " "))
	if n == nil || (n.verb != nil && n.verb.hidden) {
		fmt.Fprint(a.stderr, usageErrorText(&usageError{node: inv.node, msg: fmt.Sprintf("no verb %q", strings.Join(inv.args, " "))}))
		return exitUsage
	}
	fmt.Fprint(a.stdout, helpText(n))
	return exitOK
}

func runCompletion(a *app, inv *invocation) int {
	script, _ := completionScript(inv.args[0]) // parseArgs checked the choice
	fmt.Fprint(a.stdout, script)
	return exitOK
}

// version is set at link time (-ldflags "-X main.version=…"); otherwise the
// module version from the build info is used.
var version = ""

func versionString() string {
	v, rev := version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	s := "sozu " + v
	if rev != "" {
		s += " (" + rev + ")"
	}
	return s + " " + runtime.Version()
}

func runVersion(a *app, inv *invocation) int {
	if inv.json {
		return a.printJSON(jsonEnvelope{Status: "OK", Message: versionString()}, exitOK)
	}
	fmt.Fprintln(a.stdout, versionString())
	return exitOK
}

func (a *app) printJSON(env jsonEnvelope, code int) int {
	doc, err := encodeJSON(env)
	if err != nil {
		fmt.Fprintf(a.stderr, "sozu: %v\n", err)
		return exitFailure
	}
	a.stdout.Write(doc)
	return code
}
