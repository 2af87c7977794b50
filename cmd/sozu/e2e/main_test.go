// Package e2e runs the real sozu binary, with two workers, in front of real
// backends, and drives it with curl and raw sockets: the HTTP/1.1 data plane end to end.
package e2e

import (
	"testing"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

func TestMain(m *testing.M) { sozutest.Main(m, raceEnabled) }
