package supervisor

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// opsLog keeps the outcome of the last operation of each kind the
// supervisor ran on itself ("reload"; the upgrade verbs add "upgrade"),
// for the status verb. Safe for concurrent use.
type opsLog struct {
	mu   sync.Mutex
	last map[string]opOutcome
}

// opOutcome is one finished operation.
type opOutcome struct {
	At     time.Time // when it finished
	OK     bool
	Detail string // one line: counts, or why it failed
}

// note records the outcome of an operation of kind (a lowercase word).
func (l *opsLog) note(kind string, ok bool, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]opOutcome{}
	}
	l.last[kind] = opOutcome{At: time.Now().UTC(), OK: ok, Detail: oneLine(detail)}
}

// lines renders one line per kind, in kind order:
// "last reload: 2026-12-06T08:00:00Z ok: 2 added, 1 changed, 1 removed".
// Without reasons, a failure's detail is left out: it may quote the
// file reloaded (a TOML syntax error quotes a token of it, a header value
// left unquoted), which only the admin who named it may read.
func (l *opsLog) lines(reasons bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds := make([]string, 0, len(l.last))
	for k := range l.last {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		o := l.last[k]
		result := "failed"
		if o.OK {
			result = "ok"
		}
		detail := o.Detail
		if !o.OK && !reasons {
			detail = "the reason is shown to admins"
		}
		out = append(out, fmt.Sprintf("last %s: %s %s: %s", k, o.At.Format(time.RFC3339), result, detail))
	}
	return out
}

// statusMessage is the status verb's message: upstream's sentence, then
// one line per operation of opsLog, with why one failed when reasons.
func (s *Supervisor) statusMessage(reasons bool) string {
	msg := "Successfully collected the status of workers"
	if lines := s.ops.lines(reasons); len(lines) > 0 {
		msg += "\n" + strings.Join(lines, "\n")
	}
	return msg
}

// oneLine keeps the first line of s, for a status line.
func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
