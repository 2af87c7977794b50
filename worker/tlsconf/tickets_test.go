package tlsconf

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// resumed makes a connection with client (whose session cache persists
// across calls) and reports whether the session was resumed.
func resumed(t *testing.T, cfg, client *tls.Config) bool {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		defer b.Close()
		s := tls.Server(b, cfg)
		if s.Handshake() == nil {
			s.Write([]byte("x")) // TLS 1.3: the ticket travels before this
		}
		s.Close()
	}()
	c := tls.Client(a, client)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("read: %v", err)
	}
	return c.ConnectionState().DidResume
}

func TestSessionTickets(t *testing.T) {
	real := time.Now()
	c, k := gen(t, spec{names: []string{"a.example"}, notBefore: real.Add(-time.Hour), notAfter: real.Add(time.Hour)})
	cert, err := Load(c, nil, k, nil, real)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		var st Store
		cfg := st.Config("L")
		client := &tls.Config{InsecureSkipVerify: true, ServerName: "a.example", MinVersion: v, MaxVersion: v,
			ClientSessionCache: tls.NewLRUClientSessionCache(8)}

		// Default policy: no tickets, nothing resumes.
		st.Swap(map[string]*Index{"L": NewIndex([]*Cert{cert}, nil).WithPolicy(Policy{})})
		resumed(t, cfg, client)
		if resumed(t, cfg, client) {
			t.Fatalf("version %x: resumed with tickets disabled", v)
		}
		def, _ := ParsePolicy(nil, nil, nil, nil, 4)
		if !def.Tickets {
			t.Fatal("send_tls13_tickets = 4 does not enable tickets")
		}
		st.Swap(map[string]*Index{"L": NewIndex([]*Cert{cert}, nil).WithPolicy(def)})
		resumed(t, cfg, client)
		if !resumed(t, cfg, client) {
			t.Fatalf("version %x: not resumed with tickets enabled", v)
		}
		// A new snapshot (a certificate change) keeps the listener's keys.
		st.Swap(map[string]*Index{"L": NewIndex([]*Cert{cert}, nil).WithPolicy(def)})
		if !resumed(t, cfg, client) {
			t.Fatalf("version %x: not resumed across snapshots", v)
		}
		// Another listener has keys of its own.
		other := st.Config("M")
		st.Swap(map[string]*Index{"L": NewIndex([]*Cert{cert}, nil).WithPolicy(def), "M": NewIndex([]*Cert{cert}, nil).WithPolicy(def)})
		if resumed(t, other, client) {
			t.Fatalf("version %x: a ticket of listener L resumed on listener M", v)
		}
	}
}

func TestKeyringRotation(t *testing.T) {
	var r keyring
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := r.current(t0)
	if len(first.keys) != 1 {
		t.Fatalf("%d keys at start", len(first.keys))
	}
	if r.current(t0.Add(TicketKeyRotation-time.Second)) != first {
		t.Fatal("rotated before TicketKeyRotation")
	}
	second := r.current(t0.Add(TicketKeyRotation))
	if second.gen != first.gen+1 || len(second.keys) != 2 || second.keys[1] != first.keys[0] || second.keys[0] == first.keys[0] {
		t.Fatalf("after one rotation: gen %d, %d keys", second.gen, len(second.keys))
	}
	// Over two days, hourly: never more keys than fit in the lifetime, and
	// the oldest key never older than TicketKeyLifetime.
	max := int(TicketKeyLifetime / TicketKeyRotation)
	for h := 2; h < 48; h++ {
		now := t0.Add(time.Duration(h) * TicketKeyRotation)
		ks := r.current(now)
		if len(ks.keys) > max {
			t.Fatalf("hour %d: %d keys, max %d", h, len(ks.keys), max)
		}
		if age := now.Sub(ks.made[len(ks.made)-1]); age >= TicketKeyLifetime {
			t.Fatalf("hour %d: oldest key is %v old", h, age)
		}
	}
	if ks := r.current(t0.Add(47 * TicketKeyRotation)); len(ks.keys) != max {
		t.Fatalf("steady state: %d keys, want %d", len(ks.keys), max)
	}
	// A long pause drops every old key.
	if ks := r.current(t0.Add(100 * 24 * time.Hour)); len(ks.keys) != 1 {
		t.Fatalf("after a pause: %d keys", len(ks.keys))
	}
}
