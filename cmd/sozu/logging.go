package main

import (
	"fmt"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/logfilter"
)

// buildLogging sends the Logging verb with its FILTER, after checking the
// filter with the parser the supervisor and the workers use
// (worker/logfilter): a filter they would refuse is a usage error here,
// with the same list of problems, and nothing is sent.
func buildLogging(v *values) (*command.Request, error) {
	filter := v.args[0]
	if _, err := logfilter.Parse(filter); err != nil {
		return nil, fmt.Errorf("invalid FILTER %q: a comma-separated list of LEVEL or TARGET=LEVEL (levels: off, error, warn, info, debug, trace):\n%v", filter, err)
	}
	return &command.Request{RequestType: &command.Request_Logging{Logging: filter}}, nil
}
