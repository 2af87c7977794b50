package settings

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/answers"
)

// CheckListenerAnswers reports the answer templates of a listener (the
// legacy http_answers merged under the answers map) that workers would
// leave out, answering with the default instead.
func CheckListenerAnswers(legacy *command.CustomHttpAnswers, m map[string]string) []Issue {
	merged := MergeAnswers(legacy, m)
	if len(merged) == 0 {
		return nil
	}
	var out []Issue
	_, errs := answers.NewSet(merged)
	for _, err := range errs {
		is := Issue{Field: "answers", Index: -1, Msg: err.Error(), Effect: effectDefault}
		var ke *answers.KeyError
		if errors.As(err, &ke) {
			is.Key = ke.Key
		}
		out = append(out, is)
	}
	return out
}

// MergeAnswers merges the legacy http_answers bodies of h under answersMap,
// whose entries win (as upstream does).
func MergeAnswers(h *command.CustomHttpAnswers, answersMap map[string]string) map[string]string {
	m := map[string]string{}
	if h != nil {
		for code, v := range map[string]*string{
			"301": h.Answer_301, "400": h.Answer_400, "401": h.Answer_401, "404": h.Answer_404,
			"408": h.Answer_408, "413": h.Answer_413, "421": h.Answer_421, "429": h.Answer_429,
			"502": h.Answer_502, "503": h.Answer_503, "504": h.Answer_504, "507": h.Answer_507,
		} {
			if v != nil {
				m[code] = *v
			}
		}
	}
	for k, v := range answersMap {
		m[k] = v
	}
	return m
}

// CheckListenerH2 reports the h2_* knobs of listener configuration m stated
// out of their range (state.H2KnobIssues), with what a worker does instead:
// on an HTTPS listener it clamps the value into range as upstream does (an
// absent or 0 stream idle timeout is the listener's back_timeout, at least
// 30 s); an HTTP listener serves no HTTP/2.
func CheckListenerH2(m proto.Message, https bool) []Issue {
	var out []Issue
	for _, k := range state.H2KnobIssues(m) {
		effect := fmt.Sprintf("a worker uses %d", k.Use)
		switch {
		case !https:
			effect = "it is kept as stated: HTTP/2 is served on HTTPS listeners only"
		case k.Field == "h2_stream_idle_timeout_seconds":
			effect = "a worker uses back_timeout, at least 30 s"
		}
		out = append(out, Issue{Field: k.Field, Index: -1, Msg: k.Reason, Effect: effect})
	}
	return out
}
