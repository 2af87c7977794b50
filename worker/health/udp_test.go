package health

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"google.golang.org/protobuf/proto"
)

// TestUDPProbe: UDP_PROBE sends the configured payload and succeeds on any
// reply; a backend that answers nothing, or whose port is closed, fails.
// TCP_PROBE connects to tcp_port, not to the backend's UDP port.
func TestUDPProbe(t *testing.T) {
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	got := make(chan string, 4)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
			echo.WriteToUDPAddrPort([]byte("pong"), from)
		}
	}()
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closed, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	closedAddr := closed.LocalAddr().String()
	closed.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tcpPort := uint32(tcp.Addr().(*net.TCPAddr).Port)

	udpProbe := UDPConfigFrom(&command.UdpHealthConfig{Mode: command.UdpHealthMode_UDP_PROBE.Enum(),
		UdpProbePayload: []byte("ping"), ProbeTimeoutSeconds: proto.Uint32(1)})
	tcpProbe := UDPConfigFrom(&command.UdpHealthConfig{Mode: command.UdpHealthMode_TCP_PROBE.Enum(), TcpPort: proto.Uint32(tcpPort)})
	if tcpProbe.Healthy != 2 || tcpProbe.Unhealthy != 3 || tcpProbe.Interval != 5*time.Second || tcpProbe.Timeout != 2*time.Second {
		t.Fatalf("udp.health defaults: %+v, want rise 2 fall 3 interval 5 s timeout 2 s", tcpProbe)
	}
	var d net.Dialer
	for _, tc := range []struct {
		name string
		cfg  Config
		addr string
		ok   bool
	}{
		{"udp probe answered", udpProbe, echo.LocalAddr().String(), true},
		{"udp probe unanswered", udpProbe, silent.LocalAddr().String(), false},
		{"udp probe port closed", udpProbe, closedAddr, false},
		{"tcp probe on tcp_port", tcpProbe, echo.LocalAddr().String(), true},
		{"tcp probe port closed", UDPConfigFrom(&command.UdpHealthConfig{Mode: command.UdpHealthMode_TCP_PROBE.Enum(),
			TcpPort: proto.Uint32(1)}), "127.0.0.1:" + strconv.Itoa(int(tcpPort)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Probe(context.Background(), d.DialContext, tc.cfg, tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("Probe = %v, want ok %v", err, tc.ok)
			}
			var pe *ProbeError
			if err != nil && !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ProbeError", err)
			}
		})
	}
	if p := <-got; p != "ping" {
		t.Fatalf("the backend received %q, want the configured payload", p)
	}
}
