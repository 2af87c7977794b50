package state

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/statefile"
)

// stringFieldsOf lists every string field, and every map field with string
// keys or values, of the messages reachable from md.
func stringFieldsOf(md protoreflect.MessageDescriptor) map[protoreflect.FullName]bool {
	out := map[protoreflect.FullName]bool{}
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		fs := md.Fields()
		for i := 0; i < fs.Len(); i++ {
			fd := fs.Get(i)
			if fd.IsMap() {
				if fd.MapKey().Kind() == protoreflect.StringKind || fd.MapValue().Kind() == protoreflect.StringKind {
					out[fd.FullName()] = true
				}
				if m := fd.MapValue().Message(); m != nil {
					walk(m)
				}
				continue
			}
			if fd.Kind() == protoreflect.StringKind {
				out[fd.FullName()] = true
			}
			if m := fd.Message(); m != nil {
				walk(m)
			}
		}
	}
	walk(md)
	return out
}

// TestStringFieldsClassified is the completeness test over command.proto:
// every string field a request can carry has a rule in stringFields, and
// the table names no field that does not exist. A new field fails here
// until someone decides whether it is an identifier.
func TestStringFieldsClassified(t *testing.T) {
	all := stringFieldsOf((&command.Request{}).ProtoReflect().Descriptor())
	var missing, stale []string
	for name := range all {
		if stringFields[name] == 0 {
			missing = append(missing, string(name))
		}
	}
	for name := range stringFields {
		if !all[name] {
			stale = append(stale, string(name))
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("string fields without a rule in stringFields (identifier, text or not stored?):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(stale) > 0 {
		t.Errorf("stringFields names fields command.Request cannot reach:\n  %s", strings.Join(stale, "\n  "))
	}
}

// identifierBases returns, per state verb (Request oneof field name), a
// request the empty state accepts or refuses only after its strings were
// checked.
func identifierBases() map[string]*command.Request {
	tcp := tcpFront("c", "127.0.0.1:9000", map[string]string{"env": "prod"})
	udp := udpFront("c", "127.0.0.1:9001", map[string]string{"env": "prod"})
	httpFront := withMethod(front("c", "127.0.0.1:8080", "example.com", command.PathRuleKind_PREFIX, "/"), "GET")
	httpFront.Tags = map[string]string{"env": "prod"}
	hl := httpListener("127.0.0.1:8080")
	hl.StickyName = proto.String("SOZUBALANCEID")
	hl.SozuIdHeader = proto.String("Sozu-Id")
	hsl := httpsListener("127.0.0.1:8443")
	hsl.StickyName = proto.String("SOZUBALANCEID")
	hsl.SozuIdHeader = proto.String("Sozu-Id")
	be := backend("c", "b", "127.0.0.1:1026")
	be.StickyId = proto.String("s")
	return map[string]*command.Request{
		"add_cluster":           addCluster(cluster("c")),
		"remove_cluster":        removeCluster("c"),
		"set_health_check":      setHealthCheck("c", healthCheck("/")),
		"remove_health_check":   removeHealthCheck("c"),
		"add_backend":           addBackend(be),
		"remove_backend":        removeBackend("c", "b", "127.0.0.1:1026"),
		"add_http_frontend":     addHTTP(httpFront),
		"remove_http_frontend":  removeHTTP(httpFront),
		"add_https_frontend":    addHTTPS(httpFront),
		"remove_https_frontend": removeHTTPS(httpFront),
		"add_tcp_frontend":      addTCP(tcp),
		"remove_tcp_frontend":   removeTCP(tcp),
		"add_udp_frontend":      addUDP(udp),
		"remove_udp_frontend":   removeUDP(udp),
		"add_http_listener":     addHTTPListener(hl),
		"add_https_listener":    addHTTPSListener(hsl),
		"update_http_listener": updateHTTP(&command.UpdateHttpListenerConfig{Address: sa("127.0.0.1:8080"),
			StickyName: proto.String("S"), SozuIdHeader: proto.String("Sozu-Id")}),
		"update_https_listener": updateHTTPS(&command.UpdateHttpsListenerConfig{Address: sa("127.0.0.1:8443"),
			StickyName: proto.String("S"), SozuIdHeader: proto.String("Sozu-Id")}),
	}
}

// hostileValues are identifiers that used to be accepted and then broke
// every save_state (invalid UTF-8, oversize) or the operator's terminal
// and logs (LF, ESC, bidi override), with the reason Dispatch gives.
var hostileValues = []struct{ name, value, reason string }{
	{"LF", "a\nb", `"a\u{a}b" contains the control character U+000A`},
	{"ESC", "a\x1b[31mb", `"a\u{1b}[31mb" contains the control character U+001B`},
	{"DEL", "a\x7fb", `"a\u{7f}b" contains the control character U+007F`},
	{"C1", "a\u0085b", `"a\u{85}b" contains the control character U+0085`},
	{"invalid UTF-8", "a\xffb", `"a\x{ff}b" is not valid UTF-8`},
	{"RLO", "evil\u202egnp.exe", `"evil\u{202e}gnp.exe" contains the format character U+202E`},
	{"LRI", "a\u2066b", `"a\u{2066}b" contains the format character U+2066`},
	{"zero width space", "a\u200bb", `"a\u{200b}b" contains the format character U+200B`},
	{"line separator", "a\u2028b", `"a\u{2028}b" contains the line separator U+2028`},
	{"100 KB", strings.Repeat("x", 100<<10),
		`"` + strings.Repeat("x", 64) + `..." is 102400 bytes long, over the 256-byte limit for identifiers`},
}

// TestDispatchRefusesHostileIdentifiers is the dispatch table test: every
// identifier field of every state verb, set to each hostile value, is
// refused as InvalidValue naming the field and quoting the value escaped,
// before any lookup, and leaves the state unchanged. It also checks that
// the bases cover every identifier field of stringFields that a state
// verb carries.
func TestDispatchRefusesHostileIdentifiers(t *testing.T) {
	covered := map[protoreflect.FullName]bool{}
	bases := identifierBases()
	verbs := make([]string, 0, len(bases))
	for v := range bases {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	for _, verb := range verbs {
		base := bases[verb]
		m := base.ProtoReflect()
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(verb))
		if fd == nil || m.WhichOneof(fd.ContainingOneof()) != fd {
			t.Fatalf("base of %s does not carry that variant", verb)
		}
		type target struct {
			field protoreflect.FieldDescriptor
			path  string
			set   func(r *command.Request, v string)
		}
		var targets []target
		if fd.Kind() == protoreflect.StringKind {
			targets = append(targets, target{fd, verb, func(r *command.Request, v string) {
				r.ProtoReflect().Set(fd, protoreflect.ValueOfString(v))
			}})
		} else {
			fields := fd.Message().Fields()
			for i := 0; i < fields.Len(); i++ {
				f := fields.Get(i)
				if stringFields[f.FullName()] != ruleIdentifier {
					continue
				}
				msg := func(r *command.Request) protoreflect.Message { return r.ProtoReflect().Mutable(fd).Message() }
				if f.IsMap() {
					targets = append(targets,
						target{f, string(f.Name()) + " key", func(r *command.Request, v string) {
							msg(r).Mutable(f).Map().Set(protoreflect.ValueOfString(v).MapKey(), protoreflect.ValueOfString("ok"))
						}},
						target{f, fmt.Sprintf(`%s["k"]`, f.Name()), func(r *command.Request, v string) {
							mp := msg(r).Mutable(f).Map()
							mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { mp.Clear(k); return true })
							mp.Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString(v))
						}})
					continue
				}
				targets = append(targets, target{f, string(f.Name()), func(r *command.Request, v string) {
					msg(r).Set(f, protoreflect.ValueOfString(v))
				}})
			}
		}
		if len(targets) == 0 {
			t.Errorf("%s: no identifier field: drop it from identifierBases", verb)
		}
		for _, tg := range targets {
			covered[tg.field.FullName()] = true
			for _, hv := range hostileValues {
				t.Run(verb+"/"+tg.path+"/"+hv.name, func(t *testing.T) {
					s := New()
					before := s.GenerateRequests()
					req := proto.Clone(base).(*command.Request)
					tg.set(req, hv.value)
					err := s.Dispatch(req)
					var se *Error
					if !errors.As(err, &se) {
						t.Fatalf("accepted or not an *Error: %v", err)
					}
					want := fmt.Sprintf("Invalid value for field '%s': %s", tg.path, hv.reason)
					if se.Kind != InvalidValue || se.Text != want {
						t.Errorf("got %v %q\nwant InvalidValue %q", se.Kind, se.Text, want)
					}
					if !sameRequests(before, s.GenerateRequests()) || len(s.RequestCounts()) != 0 {
						t.Error("a refused request changed the state or was counted")
					}
				})
			}
		}
	}
	for name, rule := range stringFields {
		if rule != ruleIdentifier || covered[name] {
			continue
		}
		// Fields of verbs that are not state verbs are not identifiers
		// Dispatch enforces; every identifier field is one of a state verb.
		t.Errorf("identifier field %s is not exercised: add its verb to identifierBases", name)
	}
}

// TestDispatchAcceptsPrintableIdentifiers: spaces, accents, CJK and
// emoji are printable and stay accepted; the state with them saves.
func TestDispatchAcceptsPrintableIdentifiers(t *testing.T) {
	s := New()
	long := strings.Repeat("é", MaxIdentifierBytes/2) // exactly the bound
	for _, id := range []string{"my cluster", "café", "集群", "🚀-app", long} {
		mustDispatch(t, s, addCluster(cluster(id)), addBackend(backend(id, id, "127.0.0.1:1026")))
	}
	requireRoundTrip(t, s)
	for _, wr := range s.GenerateRequests() {
		if _, err := statefile.Marshal(wr); err != nil {
			t.Fatalf("state file record %s: %v", wr.GetId(), err)
		}
	}
}

// TestDispatchRefusesInvalidUTF8Text: text fields are not identifiers,
// but a string that is not UTF-8 cannot be written to the state file, so
// every stored string is checked, with its path.
func TestDispatchRefusesInvalidUTF8Text(t *testing.T) {
	f := front("c", "127.0.0.1:8080", "example.com", command.PathRuleKind_PREFIX, "/a\xff")
	hdr := front("c", "127.0.0.1:8080", "example.com", command.PathRuleKind_PREFIX, "/")
	hdr.Headers = []*command.Header{{Position: command.HeaderPosition_REQUEST.Enum(), Key: proto.String("X-A"), Val: proto.String("ok")},
		{Position: command.HeaderPosition_REQUEST.Enum(), Key: proto.String("X-B"), Val: proto.String("\xc3")}}
	c := cluster("c")
	c.Answers = map[string]string{"503": "HTTP/1.1 503 \xfe"}
	runDispatchCases(t, []dispatchCase{
		{name: "path value", req: addHTTP(f), kind: InvalidValue,
			text: `Invalid value for field 'path.value': "/a\x{ff}" is not valid UTF-8`},
		{name: "header value", req: addHTTP(hdr), kind: InvalidValue,
			text: `Invalid value for field 'headers[1].val': is not valid UTF-8 at byte 0 (the value is not shown: it may hold a secret)`},
		{name: "answers map", req: addCluster(c), kind: InvalidValue,
			text: `Invalid value for field 'answers["503"]': "HTTP/1.1 503 \x{fe}" is not valid UTF-8`},
	})
}

// TestInvalidUTF8SecretNotShown: a field that may hold a secret (a
// private key, basic-auth hashes, a header value such as an Authorization
// one) refused for bytes that are not UTF-8 is named with the offset of
// the first, never shown: the refusal reaches the client, the audit
// trail (its reason) and the logs, and the first 64 bytes of an EC
// private key's PEM hold 17 bytes of its scalar.
func TestInvalidUTF8SecretNotShown(t *testing.T) {
	const key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBqSecretScalarBytesAreHere0123456789abcdef\xff\n-----END EC PRIVATE KEY-----\n"
	cert := addCert("127.0.0.1:8443", "cert")
	cert.GetAddCertificate().Certificate.Key = proto.String(key)
	c := cluster("c")
	c.AuthorizedHashes = []string{"admin:SecretHashValue\xfe"}
	hdr := front("c", "127.0.0.1:8080", "example.com", command.PathRuleKind_PREFIX, "/")
	hdr.Headers = []*command.Header{{Position: command.HeaderPosition_REQUEST.Enum(), Key: proto.String("Authorization"), Val: proto.String("Basic SecretCredential\xc3")}}
	for _, tc := range []struct {
		req    *command.Request
		field  string
		secret string
	}{
		{cert, "certificate.key", "SecretScalar"},
		{addCluster(c), "authorized_hashes[0]", "SecretHash"},
		{addHTTP(hdr), "headers[0].val", "SecretCredential"},
	} {
		err := New().Dispatch(tc.req)
		if err == nil {
			t.Fatalf("%s: accepted", tc.field)
		}
		if msg := err.Error(); strings.Contains(msg, tc.secret) || strings.Contains(msg, "MHcC") || !strings.Contains(msg, "'"+tc.field+"'") ||
			!strings.Contains(msg, "not valid UTF-8 at byte") {
			t.Errorf("%s: %q, want the field named, the value not shown", tc.field, msg)
		}
	}
}

func TestQuoteValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{`say "hi" \o/`, `"say \"hi\" \\o/"`},
		{"tab\there", `"tab\u{9}here"`},
		{"\u202e", `"\u{202e}"`},
		{"\xe2\x80", `"\x{e2}\x{80}"`},
		{"über", `"über"`},
		{strings.Repeat("ab", 40), `"` + strings.Repeat("ab", 32) + `..."`},
	} {
		if got := QuoteValue(tc.in); got != tc.want {
			t.Errorf("QuoteValue(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzCheckIdentifier: QuoteValue always yields valid UTF-8 free of the
// characters it escapes, and what CheckIdentifier accepts is bounded,
// valid UTF-8 without them.
func FuzzCheckIdentifier(f *testing.F) {
	for _, hv := range hostileValues {
		f.Add(hv.value)
	}
	f.Add("café au lait")
	f.Fuzz(func(t *testing.T, s string) {
		q := QuoteValue(s)
		if !utf8.ValidString(q) || strings.IndexFunc(q, func(r rune) bool { return hostileRune(r) != "" }) >= 0 {
			t.Fatalf("QuoteValue(%q) = %q", s, q)
		}
		if CheckIdentifier(s) == nil {
			if len(s) > MaxIdentifierBytes || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return hostileRune(r) != "" }) >= 0 {
				t.Fatalf("CheckIdentifier accepted %q", s)
			}
		}
		if e := escapeText(s); !utf8.ValidString(e) || strings.IndexFunc(e, func(r rune) bool { return hostileRune(r) != "" }) >= 0 {
			t.Fatalf("escapeText(%q) = %q", s, e)
		}
	})
}
