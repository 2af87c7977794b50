package logfilter

import (
	"testing"

	"github.com/sirupsen/logrus"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec string
		want logrus.Level
		err  string
	}{
		{spec: "info", want: logrus.InfoLevel},
		{spec: "DEBUG", want: logrus.DebugLevel},
		{spec: " warn ", want: logrus.WarnLevel},
		{spec: "off", want: logrus.PanicLevel},
		{spec: "error,sozu=trace", want: logrus.ErrorLevel},
		{spec: "sozu=debug,sozu_lib::http=trace", want: logrus.TraceLevel},
		{spec: "sozu=info", want: logrus.InfoLevel},
		{spec: "", err: "- empty filter"},
		{spec: "loud", err: `- invalid level "loud" in directive "loud"`},
		{spec: "info,=debug,x=nope", err: "- empty target in directive \"=debug\"\n- invalid level \"nope\" in directive \"x=nope\""},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Parse(%q) error = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.spec, got, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"info", "warn,sozu=debug", "x=", "=", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		lvl, err := Parse(spec)
		if err == nil && (lvl < logrus.PanicLevel || lvl > logrus.TraceLevel) {
			t.Fatalf("Parse(%q) = out-of-range level %d", spec, lvl)
		}
		if err != nil && err.Error()[:2] != "- " {
			t.Fatalf("error does not start with \"- \": %q", err)
		}
	})
}
