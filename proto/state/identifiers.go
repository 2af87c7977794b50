package state

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxIdentifierBytes bounds the length of every identifier field (cluster
// and backend ids, sticky ids, hostnames, tags...): 256 bytes of UTF-8.
// Upstream documents no bound and no character set for identifiers (a
// cluster id is any TOML key); ours are printable text of bounded size, so
// that no identifier can break the state file, a log line or a terminal.
const MaxIdentifierBytes = 256

// fieldRule says what Dispatch demands of a string field of command.proto.
type fieldRule int

const (
	// ruleText: stored text, any valid UTF-8 (the state file holds UTF-8
	// only). Fields with a syntax of their own (certificates, header
	// values, answers, paths) are checked where they are used.
	ruleText fieldRule = iota + 1
	// ruleIdentifier: stored identifier, see CheckIdentifier.
	ruleIdentifier
	// ruleNotStored: a field of a verb the state does not store (queries,
	// state-file paths, metric details); Dispatch never sees it.
	ruleNotStored
	// ruleSecret: ruleText for a field that may hold a secret (a private
	// key, basic-auth hashes, a header value, which may be an
	// Authorization or Cookie one): refused without showing any of it,
	// since the refusal reaches the client, the audit trail and the logs.
	ruleSecret
)

// stringFields classifies every string field, and every map field with
// string keys or values, reachable from command.Request. A field missing
// here fails TestStringFieldsClassified, so that a new identifier field
// cannot be forgotten; at run time an unlisted field is treated as
// ruleText.
var stringFields = map[protoreflect.FullName]fieldRule{
	// Identifiers the state stores or looks up.
	"command.Request.remove_cluster":                   ruleIdentifier,
	"command.Request.remove_health_check":              ruleIdentifier,
	"command.Cluster.cluster_id":                       ruleIdentifier,
	"command.SetHealthCheck.cluster_id":                ruleIdentifier,
	"command.AddBackend.cluster_id":                    ruleIdentifier,
	"command.AddBackend.backend_id":                    ruleIdentifier,
	"command.AddBackend.sticky_id":                     ruleIdentifier,
	"command.RemoveBackend.cluster_id":                 ruleIdentifier,
	"command.RemoveBackend.backend_id":                 ruleIdentifier,
	"command.RequestHttpFrontend.cluster_id":           ruleIdentifier,
	"command.RequestHttpFrontend.hostname":             ruleIdentifier,
	"command.RequestHttpFrontend.method":               ruleIdentifier,
	"command.RequestHttpFrontend.tags":                 ruleIdentifier, // keys and values
	"command.RequestTcpFrontend.cluster_id":            ruleIdentifier,
	"command.RequestTcpFrontend.tags":                  ruleIdentifier,
	"command.RequestUdpFrontend.cluster_id":            ruleIdentifier,
	"command.RequestUdpFrontend.tags":                  ruleIdentifier,
	"command.HttpListenerConfig.sticky_name":           ruleIdentifier,
	"command.HttpListenerConfig.sozu_id_header":        ruleIdentifier,
	"command.HttpsListenerConfig.sticky_name":          ruleIdentifier,
	"command.HttpsListenerConfig.sozu_id_header":       ruleIdentifier,
	"command.UpdateHttpListenerConfig.sticky_name":     ruleIdentifier,
	"command.UpdateHttpListenerConfig.sozu_id_header":  ruleIdentifier,
	"command.UpdateHttpsListenerConfig.sticky_name":    ruleIdentifier,
	"command.UpdateHttpsListenerConfig.sozu_id_header": ruleIdentifier,
	"command.Cluster.answer_503":                       ruleText,
	"command.Cluster.answers":                          ruleText,
	"command.Cluster.authorized_hashes":                ruleSecret,
	"command.Cluster.www_authenticate":                 ruleText,
	"command.HealthCheckConfig.uri":                    ruleText, // validateHealthCheck
	"command.PathRule.value":                           ruleText,
	"command.RequestHttpFrontend.redirect_template":    ruleText,
	"command.RequestHttpFrontend.rewrite_host":         ruleText,
	"command.RequestHttpFrontend.rewrite_path":         ruleText,
	"command.Header.key":                               ruleText,
	"command.Header.val":                               ruleSecret,
	"command.CertificateAndKey.certificate":            ruleText, // certs.go
	"command.CertificateAndKey.certificate_chain":      ruleText,
	"command.CertificateAndKey.key":                    ruleSecret,
	"command.CertificateAndKey.names":                  ruleText,
	"command.ReplaceCertificate.old_fingerprint":       ruleText,
	"command.RemoveCertificate.fingerprint":            ruleText,
	"command.CustomHttpAnswers.answer_301":             ruleText,
	"command.CustomHttpAnswers.answer_400":             ruleText,
	"command.CustomHttpAnswers.answer_401":             ruleText,
	"command.CustomHttpAnswers.answer_404":             ruleText,
	"command.CustomHttpAnswers.answer_408":             ruleText,
	"command.CustomHttpAnswers.answer_413":             ruleText,
	"command.CustomHttpAnswers.answer_421":             ruleText,
	"command.CustomHttpAnswers.answer_429":             ruleText,
	"command.CustomHttpAnswers.answer_502":             ruleText,
	"command.CustomHttpAnswers.answer_503":             ruleText,
	"command.CustomHttpAnswers.answer_504":             ruleText,
	"command.CustomHttpAnswers.answer_507":             ruleText,
	"command.HttpListenerConfig.answers":               ruleText,
	"command.HttpsListenerConfig.answers":              ruleText,
	"command.UpdateHttpListenerConfig.answers":         ruleText,
	"command.UpdateHttpsListenerConfig.answers":        ruleText,
	"command.HttpsListenerConfig.cipher_list":          ruleText,
	"command.HttpsListenerConfig.cipher_suites":        ruleText,
	"command.HttpsListenerConfig.signature_algorithms": ruleText,
	"command.HttpsListenerConfig.groups_list":          ruleText,
	"command.HttpsListenerConfig.certificate":          ruleText,
	"command.HttpsListenerConfig.certificate_chain":    ruleText,
	"command.HttpsListenerConfig.key":                  ruleSecret,
	"command.HttpsListenerConfig.alpn_protocols":       ruleText,
	"command.AlpnProtocols.values":                     ruleText,
	"command.Request.Logging":                          ruleText, // inert: accepted, not stored
	"command.Request.save_state":                       ruleNotStored,
	"command.Request.load_state":                       ruleNotStored,
	"command.Request.launch_worker":                    ruleNotStored,
	"command.Request.reload_configuration":             ruleNotStored,
	"command.Request.query_cluster_by_id":              ruleNotStored,
	"command.FrontendFilters.domain":                   ruleNotStored,
	"command.QueryClusterByDomain.hostname":            ruleNotStored,
	"command.QueryClusterByDomain.path":                ruleNotStored,
	"command.QueryMetricsOptions.cluster_ids":          ruleNotStored,
	"command.QueryMetricsOptions.backend_ids":          ruleNotStored,
	"command.QueryMetricsOptions.metric_names":         ruleNotStored,
	"command.QueryCertificatesFilters.domain":          ruleNotStored,
	"command.QueryCertificatesFilters.fingerprint":     ruleNotStored,
	"command.QueryHealthChecks.cluster_id":             ruleNotStored,
	"command.SetMetricDetail.client_id":                ruleNotStored,
	"command.SetMetricDetail.reason":                   ruleNotStored,
	"command.SetMetricDetail.peer_session_ulid":        ruleNotStored,
}

// CheckIdentifier returns why s cannot be an identifier, or nil: it must
// be valid UTF-8, at most MaxIdentifierBytes long, and hold no control
// character (Unicode Cc: C0, DEL, C1), no format character (Cf: the
// bidirectional overrides and isolates U+202A-U+202E and U+2066-U+2069,
// zero-width characters, soft hyphen, BOM...) and no line or paragraph
// separator (U+2028, U+2029). Spaces and other printable characters are
// allowed, as upstream allows them. The empty string passes (the callers
// that need a value say so).
func CheckIdentifier(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", QuoteValue(s))
	}
	if len(s) > MaxIdentifierBytes {
		return fmt.Errorf("%s is %d bytes long, over the %d-byte limit for identifiers", QuoteValue(s), len(s), MaxIdentifierBytes)
	}
	for _, r := range s {
		if what := hostileRune(r); what != "" {
			return fmt.Errorf("%s contains the %s U+%04X", QuoteValue(s), what, r)
		}
	}
	return nil
}

// hostileRune names the class of a rune an identifier must not hold, or
// returns "".
func hostileRune(r rune) string {
	switch {
	case unicode.Is(unicode.Cc, r):
		return "control character"
	case unicode.Is(unicode.Cf, r):
		return "format character"
	case r == '\u2028' || r == '\u2029':
		return "line separator"
	}
	return ""
}

// maxQuoted is how many bytes of a value QuoteValue shows.
const maxQuoted = 64

// QuoteValue returns s between double quotes for an error message: '"'
// and '\\' escaped, control, format and separator characters as \u{hex},
// bytes that are not UTF-8 as \x{hex}; past 64 bytes the rest is cut and
// replaced by "...".
func QuoteValue(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	appendEscaped(&b, s, maxQuoted, true)
	b.WriteByte('"')
	return b.String()
}

// escapeText returns s with control, format and separator characters as
// \u{hex} and bytes that are not UTF-8 as \x{hex}, nothing cut: an id
// echoed in an error message stays on one line and cannot reorder the
// text around it.
func escapeText(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || hostileRune(r) != "" {
			var b strings.Builder
			appendEscaped(&b, s, -1, false)
			return b.String()
		}
	}
	return s
}

// appendEscaped writes s to b escaped as QuoteValue says (quotes and
// backslashes only when quoting), cut after limit bytes unless limit < 0.
func appendEscaped(b *strings.Builder, s string, limit int, quoting bool) {
	for i := 0; i < len(s); {
		if limit >= 0 && i >= limit {
			b.WriteString("...")
			return
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(b, `\x{%02x}`, s[i])
		case quoting && (r == '"' || r == '\\'):
			b.WriteByte('\\')
			b.WriteRune(r)
		case hostileRune(r) != "":
			fmt.Fprintf(b, `\u{%x}`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
}

// checkStrings walks the set fields of m, a request's variant message,
// and refuses the first string that breaks its rule (stringFields):
// invalid UTF-8 anywhere, or an identifier that CheckIdentifier refuses.
// The error names the field by its path in m ("tags", "path.value",
// "names[2]").
func checkStrings(m protoreflect.Message, prefix string) *Error {
	var e *Error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		e = checkField(fd, v, prefix+string(fd.Name()))
		return e == nil
	})
	return e
}

func checkField(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) *Error {
	rule := stringFields[fd.FullName()]
	switch {
	case fd.IsMap():
		var e *Error
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			if fd.MapKey().Kind() == protoreflect.StringKind {
				if e = checkString(rule, k.String(), path+" key"); e != nil {
					return false
				}
			}
			switch {
			case fd.MapValue().Kind() == protoreflect.StringKind:
				e = checkString(rule, mv.String(), fmt.Sprintf("%s[%s]", path, QuoteValue(k.String())))
			case fd.MapValue().Message() != nil:
				e = checkStrings(mv.Message(), fmt.Sprintf("%s[%s].", path, QuoteValue(k.String())))
			}
			return e == nil
		})
		return e
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			var e *Error
			switch {
			case fd.Kind() == protoreflect.StringKind:
				e = checkString(rule, l.Get(i).String(), p)
			case fd.Message() != nil:
				e = checkStrings(l.Get(i).Message(), p+".")
			}
			if e != nil {
				return e
			}
		}
		return nil
	case fd.Kind() == protoreflect.StringKind:
		return checkString(rule, v.String(), path)
	case fd.Message() != nil:
		return checkStrings(v.Message(), path+".")
	}
	return nil
}

// checkRequestStrings applies checkStrings to the variant of req; a string
// variant (remove_cluster...) is named by its own field name.
func checkRequestStrings(req protoreflect.Message) *Error {
	fd := req.WhichOneof(req.Descriptor().Oneofs().ByName("request_type"))
	if fd == nil {
		return nil
	}
	if fd.Message() != nil {
		return checkStrings(req.Get(fd).Message(), "")
	}
	return checkField(fd, req.Get(fd), string(fd.Name()))
}

func checkString(rule fieldRule, s, path string) *Error {
	switch rule {
	case ruleIdentifier:
		if err := CheckIdentifier(s); err != nil {
			return invalidValue(path, err.Error())
		}
	case ruleNotStored:
	case ruleSecret:
		if !utf8.ValidString(s) {
			return invalidValue(path, fmt.Sprintf("is not valid UTF-8 at byte %d (the value is not shown: it may hold a secret)", invalidAt(s)))
		}
	default:
		if !utf8.ValidString(s) {
			return invalidValue(path, QuoteValue(s)+" is not valid UTF-8")
		}
	}
	return nil
}

// invalidAt returns the offset of the first byte of s that is not UTF-8,
// len(s) when there is none.
func invalidAt(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(s)
}
