package accesslog_test

import (
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/worker/accesslog"
)

// TestGatedLoggerFollowsLevel: upstream's rule for access records on the
// main target — successes at info, failures at error — and a dedicated
// target (ungated) keeps every record whatever the level.
func TestGatedLoggerFollowsLevel(t *testing.T) {
	ok := &accesslog.Record{Protocol: accesslog.HTTP, Status: 200}
	notFound := &accesslog.Record{Protocol: accesslog.HTTP, Status: 404}
	unanswered := &accesslog.Record{Protocol: accesslog.HTTP}
	tcp := &accesslog.Record{Protocol: accesslog.TCP}
	udpFail := &accesslog.Record{Protocol: accesslog.UDP, EndReason: "backend error"}
	for _, tc := range []struct {
		name  string
		gated bool
		level logrus.Level
		rec   *accesslog.Record
		want  bool
	}{
		{"ungated error level keeps a success", false, logrus.ErrorLevel, ok, true},
		{"ungated off keeps a failure", false, logrus.PanicLevel, notFound, true},
		{"info keeps a success", true, logrus.InfoLevel, ok, true},
		{"debug keeps a success", true, logrus.DebugLevel, ok, true},
		{"warn drops a success", true, logrus.WarnLevel, ok, false},
		{"error drops a success", true, logrus.ErrorLevel, ok, false},
		{"error drops a TCP session", true, logrus.ErrorLevel, tcp, false},
		{"error keeps a 404", true, logrus.ErrorLevel, notFound, true},
		{"error keeps an unanswered request", true, logrus.ErrorLevel, unanswered, true},
		{"error keeps a UDP backend error", true, logrus.ErrorLevel, udpFail, true},
		{"off drops a failure", true, logrus.PanicLevel, notFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &accesslog.Logger{Gated: tc.gated}
			l.SetLevel(tc.level)
			if got := l.Wants(tc.rec.Failure()); got != tc.want {
				t.Errorf("Wants = %v, want %v", got, tc.want)
			}
		})
	}
	var nilLogger *accesslog.Logger
	if nilLogger.Wants(true) {
		t.Error("a nil Logger wants records")
	}
}
