package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// invocation is a parsed command line: the global settings, the verb it
// names and, for verbs answered by the supervisor, the request to send.
// It is the product of parseArgs, a pure function (no environment, no
// files, no clock), so it is table-tested and fuzzed.
type invocation struct {
	configPath string        // -c; "" = not given
	timeout    time.Duration // -t; meaningful when timeoutSet
	timeoutSet bool          //
	json       bool          // -j
	help       bool          // -h given: show help for node instead
	node       *node         // deepest node reached (verb, group or root)
	verb       *verb         // nil when help is set on a group or the root
	values     values        // verb flags
	args       []string      // positional, passed-through or raw arguments
	req        *command.Request
}

// usageError is a command line the CLI refuses (exit 2). node says whose
// usage line to print with the message.
type usageError struct {
	node *node
	msg  string
}

func (e *usageError) Error() string {
	if e.node == nil || e.node.path == "" {
		return "sozu: " + e.msg
	}
	return "sozu " + e.node.path + ": " + e.msg
}

// parseArgs parses the arguments after the program name. Global flags
// (-c, -t, -j, -h) may appear before or after the verb; "--" ends flag
// parsing. On error it returns a *usageError; with -h anywhere it returns
// the deepest node reached with help set instead of an error.
func parseArgs(args []string) (*invocation, error) {
	inv := &invocation{node: root}
	var gv values
	helpWanted := slices.ContainsFunc(args[:endOfFlags(args)], func(a string) bool { return a == "-h" || a == "--help" })
	fail := func(format string, a ...any) (*invocation, error) {
		if helpWanted {
			inv.help, inv.verb = true, inv.node.verb
			return inv, nil
		}
		return nil, &usageError{node: inv.node, msg: fmt.Sprintf(format, a...)}
	}

	var v *verb
	onlyArgs := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !onlyArgs && a == "--" {
			onlyArgs = true
			continue
		}
		if !onlyArgs && len(a) > 1 && a[0] == '-' {
			short := !strings.HasPrefix(a, "--")
			body := a[1:]
			if !short {
				body = a[2:]
			}
			name, val, explicit := strings.Cut(body, "=")
			var f *flagSpec
			if name != "" && name[0] != '-' {
				f = v.flagByName(name, short)
			}
			if f == nil {
				if v != nil && v.passthrough {
					inv.args = append(inv.args, a)
					continue
				}
				if v == nil && inv.node != root {
					return fail("unknown flag %s (verb flags go after the verb: %s)", quoteArg(a), strings.Join(childNames(inv.node), ", "))
				}
				return fail("unknown flag %s", quoteArg(a))
			}
			if f.takesValue() && !explicit {
				if i+1 >= len(args) {
					return fail("flag %s needs a value (%s)", f.display(), f.metavar)
				}
				i++
				val = args[i]
			}
			target := &inv.values
			if slices.Contains(globalFlags, f) {
				target = &gv
			}
			if err := target.store(f, val, explicit); err != nil {
				return fail("%v", err)
			}
			continue
		}
		if v == nil {
			c := inv.node.child(a)
			if c == nil {
				if inv.node == root {
					return fail("unknown verb %s", quoteArg(a))
				}
				return fail("unknown verb %s (want one of %s)", quoteArg(a), strings.Join(childNames(inv.node), ", "))
			}
			inv.node = c
			if c.verb != nil {
				v = c.verb
				inv.verb = v
				if v.raw {
					inv.args = slices.Clone(args[i+1:])
					break
				}
			}
			continue
		}
		inv.args = append(inv.args, a)
	}

	inv.configPath = gv.str("config")
	inv.json = gv.flag("json")
	if gv.has("timeout") {
		inv.timeoutSet = true
		inv.timeout = time.Duration(gv.u64("timeout")) * time.Millisecond
	}
	if gv.flag("help") {
		inv.help = true
		return inv, nil
	}
	if v == nil {
		if inv.node == root {
			return fail("missing verb")
		}
		return fail("missing verb: want one of %s", strings.Join(childNames(inv.node), ", "))
	}
	if err := checkArgs(v, inv.args); err != nil {
		return fail("%s", err)
	}
	for _, f := range v.flags {
		if f.required && !inv.values.has(f.long) {
			return fail("missing required flag %s %s", f.display(), f.metavar)
		}
	}
	for _, group := range v.exclusive {
		var given []string
		for _, name := range group {
			if inv.values.has(name) {
				given = append(given, "--"+name)
			}
		}
		if len(given) > 1 {
			return fail("%s cannot be used together", strings.Join(given, " and "))
		}
	}
	for _, group := range v.oneRequired {
		if !slices.ContainsFunc(group, inv.values.has) {
			var alts []string
			for _, name := range group {
				alts = append(alts, flagWord(v.flagByName(name, false)))
			}
			return fail("missing %s: one of them is required", strings.Join(alts, " or "))
		}
	}
	if v.build != nil {
		inv.values.args = inv.args
		req, err := v.build(&inv.values)
		if err != nil {
			return fail("%s", err)
		}
		inv.req = req
	}
	return inv, nil
}

// checkArgs validates positional arguments against the verb's argSpec.
func checkArgs(v *verb, args []string) error {
	if v.raw || v.passthrough {
		return nil
	}
	spec := v.args
	if spec == nil {
		if len(args) > 0 {
			return fmt.Errorf("unexpected argument %s", quoteArg(args[0]))
		}
		return nil
	}
	if len(args) < spec.min {
		if spec.choices != nil {
			return fmt.Errorf("missing %s: want one of %s", spec.name, strings.Join(spec.choices, ", "))
		}
		return fmt.Errorf("missing %s", spec.name)
	}
	if spec.max >= 0 && len(args) > spec.max {
		return fmt.Errorf("unexpected argument %s", quoteArg(args[spec.max]))
	}
	for _, a := range args {
		if spec.choices != nil && !slices.Contains(spec.choices, a) {
			return fmt.Errorf("invalid %s %s: want one of %s", spec.name, quoteArg(a), strings.Join(spec.choices, ", "))
		}
	}
	return nil
}

// endOfFlags is the index of the first "--" in args, or len(args).
func endOfFlags(args []string) int {
	if i := slices.Index(args, "--"); i >= 0 {
		return i
	}
	return len(args)
}

func childNames(n *node) []string {
	var names []string
	for _, c := range n.visibleChildren() {
		names = append(names, c.name())
	}
	return names
}

// quoteArg quotes an argument for a message when it is not plain.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r >= 0x7f }) {
		return s
	}
	return fmt.Sprintf("%q", s)
}
