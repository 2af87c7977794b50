package proxy

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// TestMainLogMasksPANsOfFailedHandshakes: a failed TLS handshake is
// logged at debug with crypto/tls's error, which quotes what the client
// offered (the ALPN protocols it asked for): a client can put a PAN
// there, and the main log must not write it whole, as no access record
// does.
func TestMainLogMasksPANsOfFailedHandshakes(t *testing.T) {
	var out lockedBuffer
	l := logrus.New()
	l.SetOutput(&out)
	l.SetLevel(logrus.DebugLevel)
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": nil}, func(ln *Listener) { ln.TLS = conf }, Options{Log: logrus.NewEntry(l)})
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", f.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"4111111111111111"}})
	if err == nil {
		c.Close()
		t.Fatal("handshake with no protocol in common succeeded")
	}
	waitFor(t, "the failed handshake's log line", func() bool { return strings.Contains(out.String(), "TLS handshake with") })
	line := out.String()
	if strings.Contains(line, "4111111111111111") || !strings.Contains(line, "411111******1111") {
		t.Errorf("main log: %s", line)
	}
}
