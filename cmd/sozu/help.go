package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	catalogue "github.com/sozu-go/sozu/proto/verbs"
)

// Help and usage text, generated from the verb table.

const usageWidth = 80

// usageLine is the one-line (wrapped) synopsis of a node.
func usageLine(n *node) string {
	prefix := "usage: sozu"
	if n.path != "" {
		prefix += " " + n.path
	}
	var words []string
	switch {
	case n == root:
		words = []string{"[-c FILE]", "[-t MS]", "[-j]", "VERB", "[flags]"}
	case n.verb == nil:
		words = []string{strings.Join(childNames(n), "|"), "[flags]"}
	default:
		words = synopsis(n.verb)
	}
	return wrapWords(prefix, words)
}

// synopsis lists a verb's flags and arguments as usage words: required
// flags bare, optional ones in brackets, exclusive ones joined with "|".
func synopsis(v *verb) []string {
	var words []string
	done := map[string]bool{}
	for _, f := range v.flags {
		if done[f.long] {
			continue
		}
		if g := exclusiveGroup(v, f.long); g != nil {
			var alts []string
			for _, name := range g {
				done[name] = true
				alts = append(alts, flagWord(v.flagByName(name, false)))
			}
			if slices.ContainsFunc(v.oneRequired, func(r []string) bool { return slices.Equal(r, g) }) {
				words = append(words, "("+strings.Join(alts, " | ")+")")
			} else {
				words = append(words, "["+strings.Join(alts, " | ")+"]")
			}
			continue
		}
		done[f.long] = true
		if f.required {
			words = append(words, flagWord(f))
		} else {
			words = append(words, "["+flagWord(f)+"]")
		}
	}
	if a := v.args; a != nil {
		name := a.name
		if a.choices != nil {
			name = strings.Join(a.choices, "|")
		}
		if a.max != 1 {
			name += "..."
		}
		if a.min == 0 {
			name = "[" + name + "]"
		}
		words = append(words, name)
	}
	if v.passthrough {
		words = append(words, "[-c FILE]")
	}
	return words
}

func exclusiveGroup(v *verb, name string) []string {
	for _, g := range v.exclusive {
		for _, n := range g {
			if n == name {
				return g
			}
		}
	}
	return nil
}

func flagWord(f *flagSpec) string {
	if f.takesValue() {
		return "--" + f.long + " " + f.metavar
	}
	return "--" + f.long
}

// wrapWords joins words after prefix, wrapping under the first word.
func wrapWords(prefix string, words []string) string {
	var b strings.Builder
	b.WriteString(prefix)
	col := len(prefix)
	indent := strings.Repeat(" ", min(len(prefix)+1, 24))
	for _, w := range words {
		if col+1+len(w) > usageWidth && col > len(indent) {
			b.WriteString("\n" + indent[:len(indent)-1])
			col = len(indent) - 1
		}
		b.WriteString(" " + w)
		col += 1 + len(w)
	}
	return b.String()
}

// helpText is the full help of a node (what `sozu help X` prints).
func helpText(n *node) string {
	var b strings.Builder
	if n == root {
		fmt.Fprintf(&b, "sozu: %s\n\n%s\n\nverbs:\n", n.summary, usageLine(n))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		var walk func(n *node)
		walk = func(n *node) {
			for _, c := range n.visibleChildren() {
				if c.verb != nil {
					fmt.Fprintf(tw, "  %s\t%s\n", c.path, c.summary)
				}
				walk(c)
			}
		}
		walk(root)
		tw.Flush()
		fmt.Fprintf(&b, "\n%s\n%s\n\n%s\n\nRun 'sozu help VERB' for the flags of a verb.\n", globalFlagsHelp(), exitCodeDoc, jsonDoc)
		return b.String()
	}
	fmt.Fprintf(&b, "sozu %s: %s\n\n%s\n", n.path, n.summary, usageLine(n))
	if n.verb == nil {
		b.WriteString("\nverbs:\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, c := range n.visibleChildren() {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name(), c.summary)
		}
		tw.Flush()
		fmt.Fprintf(&b, "\nRun 'sozu help %s VERB' for the flags of a verb.\n", n.path)
		return b.String()
	}
	v := n.verb
	if len(v.flags) > 0 {
		b.WriteString("\nflags:\n")
		b.WriteString(flagTable(v.flags))
	}
	if v.args != nil && v.args.choices != nil {
		fmt.Fprintf(&b, "\n%s: one of %s\n", v.args.name, strings.Join(v.args.choices, ", "))
	}
	if v.noDeadline {
		b.WriteString("\nWithout -t this verb waits for its answer as long as it takes.\n")
	}
	if v.stream {
		b.WriteString("\n" + eventsDoc + "\n")
	}
	if e := catalogueEntry(v); e != nil {
		fmt.Fprintf(&b, "\nSends %s (%s); needs the %s role.\n", e.Field, e.Name, e.Role)
		if !e.Implemented {
			b.WriteString("This proxy does not implement it yet: it answers \"not implemented\".\n")
		}
	}
	fmt.Fprintf(&b, "\nexample:\n  sozu %s\n\n%s", v.example, globalFlagsHelp())
	return b.String()
}

// catalogueEntry returns the verb catalogue's entry of the request a CLI
// verb sends (found by building its example, which a test keeps valid),
// or nil for a verb answered without the supervisor.
func catalogueEntry(v *verb) *catalogue.Verb {
	if v.build == nil {
		return nil
	}
	inv, err := parseArgs(strings.Fields(v.example))
	if err != nil || inv.req == nil {
		return nil
	}
	return catalogue.Of(inv.req)
}

func globalFlagsHelp() string {
	return "global flags (before or after the verb):\n" + flagTable(globalFlags)
}

func flagTable(flags []*flagSpec) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, f := range flags {
		short := "    "
		if f.short != "" {
			short = "-" + f.short + ", "
		}
		help := f.help
		if f.choices != nil {
			help += ": " + strings.Join(f.choices, ", ")
		}
		if f.required {
			help += " (required)"
		}
		if f.repeatable {
			help += " (repeatable)"
		}
		fmt.Fprintf(tw, "  %s%s\t%s\n", short, flagWord(f), help)
	}
	tw.Flush()
	return b.String()
}

// usageErrorText is what a usage error prints on stderr: the message, the
// synopsis of the verb (or group) and where to read more.
func usageErrorText(e *usageError) string {
	n := e.node
	if n == nil {
		n = root
	}
	more := "sozu help"
	if n != root {
		more += " " + n.path
	}
	return fmt.Sprintf("%s\n%s\nRun '%s' for details.\n", e.Error(), usageLine(n), more)
}
