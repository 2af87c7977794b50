package config

import (
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

// TestAccessLogKeys: access_logs_format takes json besides upstream's two
// (the ServerConfig keeps a value of its enumeration), access_logs_query
// masks by default.
func TestAccessLogKeys(t *testing.T) {
	for _, tt := range []struct {
		toml           string
		encoding       string
		format         command.ProtobufAccessLogFormat
		query, errText string
	}{
		{"", "ascii", command.ProtobufAccessLogFormat_Ascii, "mask", ""},
		{`access_logs_format = "protobuf"`, "protobuf", command.ProtobufAccessLogFormat_Protobuf, "mask", ""},
		{`access_logs_format = "json"`, "json", command.ProtobufAccessLogFormat_Ascii, "mask", ""},
		{`access_logs_query = "drop"`, "ascii", command.ProtobufAccessLogFormat_Ascii, "drop", ""},
		{`access_logs_query = "keep"`, "ascii", command.ProtobufAccessLogFormat_Ascii, "keep", ""},
		{`access_logs_query = "all"`, "", 0, "", `invalid access log query mode "all": want one of "mask", "keep", "drop"`},
		{`access_logs_format = "xml"`, "", 0, "", `invalid access log format "xml": want one of "ascii", "protobuf", "json"`},
	} {
		c, err := Parse([]byte(tt.toml), "/etc/sozu/config.toml")
		if tt.errText != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("%q: error %v, want %q", tt.toml, err, tt.errText)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.toml, err)
			continue
		}
		if c.AccessLogsEncoding != tt.encoding || c.AccessLogsFormat != tt.format || c.AccessLogsQuery != tt.query ||
			c.ServerConfig().GetAccessLogFormat() != tt.format {
			t.Errorf("%q: encoding %q format %v query %q", tt.toml, c.AccessLogsEncoding, c.AccessLogsFormat, c.AccessLogsQuery)
		}
	}
}
