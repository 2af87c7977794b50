package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestAccessLogQueryKey: access_logs_query, from the configuration file to
// the workers' records: "keep" writes the query as sent, "drop" leaves it
// out; the PAN is masked in both (the default "mask" is
// TestAccessLogASCIIToFile's). The key had unit tests only.
func TestAccessLogQueryKey(t *testing.T) {
	for mode, want := range map[string]string{
		"keep": " GET /pay/411111******1111?card=411111******1111&n=1 200",
		"drop": " GET /pay/411111******1111 200",
	} {
		t.Run(mode, func(t *testing.T) {
			r := startAccessRig(t, func(dir string) string {
				return fmt.Sprintf("access_logs_query = %q\naccess_logs_target = \"file://%s/access.log\"", mode, dir)
			})
			if got := get(t, r.front, "/pay/"+pan+"?card="+pan+"&n=1"); got != "HTTP/1.1 200 OK" {
				t.Fatalf("GET: %s", got)
			}
			var b []byte
			sozutest.WaitFor(t, 10*time.Second, "the access line", func() bool {
				b, _ = os.ReadFile(filepath.Join(r.dir, "access.log"))
				return strings.Contains(string(b), " 200")
			})
			if !strings.Contains(string(b), want) || strings.Contains(string(b), pan) {
				t.Fatalf("access_logs_query = %q: want %q and no full PAN in:\n%s", mode, want, b)
			}
		})
	}
}
