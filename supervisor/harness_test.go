package supervisor_test

import (
	"os"
	"testing"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" { // a copy of this binary run as another user
		os.Exit(runHelper())
	}
	sozutest.Main(m, raceEnabled)
}

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
