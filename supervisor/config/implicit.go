package config

import (
	"fmt"
	"sort"
)

// Note is something the configuration does that the file does not spell
// out, and that is not a problem: a listener created for a frontend whose
// address no [[listeners]] entry declares. `config check` and `start`
// print notes; `config check --strict` does not fail on them. Its text reads
//
//	<file>:<line>:<col>: <key path>: <message>
type Note struct {
	File      string
	Line, Col int    // 1-based; 0 when unknown
	Key       string // dotted key path, as in Error
	Msg       string
}

func (n Note) String() string {
	e := Error{File: n.File, Line: n.Line, Col: n.Col, Key: n.Key, Msg: n.Msg}
	return e.Error()
}

// implicitListeners does what upstream Sōzu does for a frontend whose
// address has no listener: it creates one with every default (the global
// timeouts, no certificate, no PROXY protocol). For a frontend of an http
// cluster it is an https listener when the frontend has a certificate, an
// http one otherwise; for a tcp cluster, a tcp listener, unless a udp
// listener is declared there (the frontend is then a UDP one). A udp
// cluster gets none (it must declare its listener). Frontends are taken in
// cluster id order, then file order: the first at an address decides the
// protocol, and a later one that needs another protocol is refused there
// as it would be with a declared listener.
//
// The listeners are appended to c.Listeners, before defaults are applied;
// origin maps each to the key path of its frontend, which names it in
// messages. One note per listener, at the frontend's address, says so.
func implicitListeners(errs *errorList, c *rawConfig) (origin map[*rawListener]string, notes []Note) {
	known, udp := map[address]bool{}, map[address]bool{}
	for _, l := range c.Listeners {
		if l != nil && l.Address != nil && (l.Protocol == nil || *l.Protocol != ProtocolUDP) {
			known[*l.Address] = true
		} else if l != nil && l.Address != nil {
			udp[*l.Address] = true
		}
	}
	ids := make([]string, 0, len(c.Clusters))
	for id := range c.Clusters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	origin = map[*rawListener]string{}
	for _, id := range ids {
		cl := c.Clusters[id]
		if cl == nil || cl.Protocol == nil || *cl.Protocol == clusterUDP {
			continue
		}
		for i, f := range cl.Frontends {
			if f == nil || f.Address == nil || known[*f.Address] {
				continue
			}
			if *cl.Protocol == clusterTCP && udp[*f.Address] {
				continue // upstream's UDP shape: a tcp cluster on a declared udp listener
			}
			known[*f.Address] = true
			proto := ProtocolTCP
			if *cl.Protocol == clusterHTTP {
				proto = ProtocolHTTP
				if f.Certificate != nil {
					proto = ProtocolHTTPS
				}
			}
			addr := *f.Address
			l := &rawListener{Protocol: &proto, Address: &addr}
			c.Listeners = append(c.Listeners, l)
			fp := joinIndex(joinKey(joinKey("clusters", id), "frontends"), i)
			origin[l] = fp
			kp := joinKey(fp, "address")
			at := errs.pos.key(kp)
			article := "an"
			if proto == ProtocolTCP {
				article = "a"
			}
			notes = append(notes, Note{File: errs.file, Line: at.line, Col: at.col, Key: kp,
				Msg: fmt.Sprintf("no [[listeners]] entry at %s: %s %s listener with default settings is created for it, as upstream does", addr.AddrPort, article, proto)})
		}
	}
	return origin, notes
}
