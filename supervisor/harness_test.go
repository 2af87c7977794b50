package supervisor_test

import (
	"testing"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

func TestMain(m *testing.M) { sozutest.Main(m, raceEnabled) }

// Short names for the harness, which the tests here use a lot.
type (
	proxy  = sozutest.Proxy
	client = sozutest.Client
)

var (
	writeConfig    = sozutest.WriteConfig
	startProxy     = sozutest.Start
	waitFor        = sozutest.WaitFor
	dial           = sozutest.Dial
	freePort       = sozutest.FreePort
	runWithTimeout = sozutest.RunWithTimeout
)
