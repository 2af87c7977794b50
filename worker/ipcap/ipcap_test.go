package ipcap

import (
	"net/netip"
	"sync"
	"testing"
)

func TestCapsPerClusterAndIP(t *testing.T) {
	l := New(2, 5)
	a := Slot{"shop", netip.MustParseAddr("192.0.2.1")}
	b := Slot{"shop", netip.MustParseAddr("192.0.2.2")}
	other := Slot{"blog", a.IP}
	for i := range 2 {
		if ok, held := l.Acquire(a, l.Cap(nil)); !ok || !held {
			t.Fatalf("slot %d refused", i)
		}
	}
	if ok, _ := l.Acquire(a, l.Cap(nil)); ok {
		t.Fatal("third connection from one IP to one cluster admitted")
	}
	if ok, _ := l.Acquire(b, l.Cap(nil)); !ok {
		t.Fatal("another IP refused")
	}
	if ok, _ := l.Acquire(other, l.Cap(nil)); !ok {
		t.Fatal("another cluster refused: clusters never share a counter")
	}
	l.Release(a)
	if ok, _ := l.Acquire(a, l.Cap(nil)); !ok {
		t.Fatal("a freed slot does not admit the next connection")
	}
	if l.Rejected.Load() != 1 {
		t.Fatalf("Rejected = %d", l.Rejected.Load())
	}
	// Overrides: 0 is unlimited for that cluster; nil inherits.
	zero, one := uint64(0), uint64(1)
	if l.Cap(&zero) != 0 || l.Cap(&one) != 1 || l.Cap(nil) != 2 {
		t.Fatal("Cap override rules")
	}
	if ok, held := l.Acquire(a, l.Cap(&zero)); !ok || held {
		t.Fatal("an unlimited cluster counts connections")
	}
	l.SetGlobal(0)
	if ok, held := l.Acquire(a, l.Cap(nil)); !ok || held {
		t.Fatal("no global cap, yet counted")
	}
	r := uint32(0)
	if l.RetryAfter(nil) != 5 || l.RetryAfter(&r) != 0 {
		t.Fatal("RetryAfter override rules")
	}
	// IPv4-mapped IPv6 and IPv4 are one client.
	l.SetGlobal(1)
	v4 := Slot{"x", netip.MustParseAddr("198.51.100.7")}
	mapped := Slot{"x", netip.MustParseAddr("::ffff:198.51.100.7")}
	if ok, _ := l.Acquire(v4, 1); !ok {
		t.Fatal("first")
	}
	if ok, _ := l.Acquire(mapped, 1); ok {
		t.Fatal("an IPv4-mapped address escaped the cap of its IPv4 form")
	}
}

func TestConcurrentAcquireRelease(t *testing.T) {
	l := New(3, 0)
	s := Slot{"c", netip.MustParseAddr("2001:db8::1")}
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxHeld := uint64(0)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if ok, held := l.Acquire(s, 3); ok && held {
					mu.Lock()
					maxHeld = max(maxHeld, l.Held(s))
					mu.Unlock()
					l.Release(s)
				}
			}
		}()
	}
	wg.Wait()
	if maxHeld > 3 || l.Held(s) != 0 {
		t.Fatalf("held at most %d, %d left", maxHeld, l.Held(s))
	}
}
