package main

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// FuzzParseArgs feeds arbitrary command lines (arguments separated by NUL)
// to the parser. Invariant: no panic, and either a usage error with a
// message and a synopsis, or an invocation that names a verb (or asks for
// help) and, for request verbs, carries a request that marshals with every
// required field set, round-trips unchanged and is built the same way
// twice. The seed corpus is in testdata/fuzz/FuzzParseArgs.
func FuzzParseArgs(f *testing.F) {
	for _, v := range verbs {
		f.Add(strings.ReplaceAll(v.example, " ", "\x00"))
	}
	f.Fuzz(func(t *testing.T, line string) {
		var args []string
		if line != "" {
			args = strings.Split(line, "\x00")
		}
		inv, err := parseArgs(args)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q: error %T is not a usage error: %v", args, err, err)
			}
			text := usageErrorText(ue)
			if ue.msg == "" || !strings.Contains(text, "usage: sozu") {
				t.Fatalf("%q: poor usage text %q", args, text)
			}
			return
		}
		if inv.help {
			if helpText(inv.node) == "" {
				t.Fatalf("%q: empty help", args)
			}
			return
		}
		if inv.verb == nil {
			t.Fatalf("%q: no verb and no error", args)
		}
		if inv.verb.build == nil {
			if inv.req != nil {
				t.Fatalf("%q: local verb with a request", args)
			}
			return
		}
		b, err := proto.Marshal(inv.req) // strict: required fields must be set
		if err != nil {
			t.Fatalf("%q: request does not marshal: %v", args, err)
		}
		back := &command.Request{}
		if err := proto.Unmarshal(b, back); err != nil || !proto.Equal(back, inv.req) {
			t.Fatalf("%q: request does not round-trip (%v)", args, err)
		}
		if command.VerbKey(inv.req) == "" {
			t.Fatalf("%q: request without a variant", args)
		}
		again, err := parseArgs(args)
		if err != nil || !proto.Equal(again.req, inv.req) {
			t.Fatalf("%q: parsing is not deterministic", args)
		}
	})
}

// FuzzHeaderFlag: parseHeaderFlag either refuses a value with a message
// naming --header, or returns a header whose name is an HTTP token and
// whose canonical spelling (where:NAME=VALUE) parses back to the same.
func FuzzHeaderFlag(f *testing.F) {
	for _, s := range []string{"response:X-Frame-Options=DENY", "both:X-Debug=", "REQUEST:X-A=b=c", "x:y=z", "request:=v", "response:X A=1", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := parseHeaderFlag(raw)
		if err != nil {
			if !strings.Contains(err.Error(), "for --header") {
				t.Fatalf("%q: error does not name the flag: %v", raw, err)
			}
			return
		}
		if h.GetKey() == "" || strings.ContainsFunc(h.GetKey(), func(r rune) bool { return !isTokenChar(r) }) {
			t.Fatalf("%q: header name %q is not a token", raw, h.GetKey())
		}
		canon := strings.ToLower(h.GetPosition().String()) + ":" + h.GetKey() + "=" + h.GetVal()
		again, err := parseHeaderFlag(canon)
		if err != nil || !proto.Equal(again, h) {
			t.Fatalf("%q: canonical %q does not parse back (%v)", raw, canon, err)
		}
	})
}
