package main

import (
	"math"

	"github.com/sozu-go/sozu/proto/command"
)

// The UDP verbs (issue 19), in upstream's shapes: `listener udp
// add|update|remove|activate|deactivate|list` and `frontend udp
// add|remove|list`. They are added to the verb table by init (verbs.go).

var (
	fMaxRxDatagram = &flagSpec{long: "max-rx-datagram-size", kind: kindUint, max: 65507, metavar: "BYTES",
		help: "largest datagram relayed; larger ones are dropped (default 1500)"}
	fMaxFlows = &flagSpec{long: "max-flows", kind: kindUint, max: math.MaxUint32, metavar: "N",
		help: "live flows per proxy process (default 0: max_connections)"}
)

// UDP listener defaults (command.proto's).
const (
	defaultUDPTimeout      = 30
	defaultUDPMaxDatagram  = 1500
	defaultUDPListenerFlow = 0
)

// udpVerbs returns the UDP verbs, in help order.
func udpVerbs() []*verb {
	out := []*verb{
		{path: "frontend udp add", summary: "bind a cluster to a UDP listener",
			flags:   []*flagSpec{fAddress, fClusterID.withRequired(), fTags},
			example: "frontend udp add --address 0.0.0.0:53 --id dns", build: udpFrontendBuilder(true)},
		{path: "frontend udp remove", summary: "unbind a cluster from a UDP listener",
			flags:   []*flagSpec{fAddress, fClusterID.withRequired()},
			example: "frontend udp remove --address 0.0.0.0:53 --id dns", build: udpFrontendBuilder(false)},
		{path: "frontend udp list", summary: "list UDP frontends",
			example: "frontend udp list", build: frontendListBuilder("tcp"), keep: keepUDPFrontends},
		{path: "listener udp add", summary: "declare a UDP listener",
			flags: []*flagSpec{fAddress.withHelp("bind address"), fPublicAddress.withHelp("address a PROXY header names as destination"),
				fFrontTimeout.withHelp("a flow ends when its client was silent this long (and its backend back-timeout)"),
				fBackTimeout.withHelp("a flow ends when its backend was silent this long (and its client front-timeout)"),
				fMaxRxDatagram, fMaxFlows},
			example: "listener udp add --address 0.0.0.0:53 --max-flows 10000", build: buildUDPListenerAdd},
		{path: "listener udp update", summary: "change the settings of a UDP listener (new flows take them)",
			flags: []*flagSpec{fAddress.withHelp("listener address"), fPublicAddress, fFrontTimeout, fBackTimeout,
				fMaxRxDatagram, fMaxFlows},
			example: "listener udp update --address 0.0.0.0:53 --max-rx-datagram-size 4096", build: buildUDPListenerUpdate},
		{path: "listener udp list", summary: "list the UDP listeners",
			example: "listener udp list", build: buildListenerList, keep: keepListeners("udp")},
	}
	for _, op := range []string{"remove", "activate", "deactivate"} {
		out = append(out, &verb{path: "listener udp " + op,
			summary: listenerOpSummary[op] + " a UDP listener",
			flags:   []*flagSpec{fAddress},
			example: "listener udp " + op + " --address 0.0.0.0:53",
			build:   listenerOpBuilder("udp", op)})
	}
	return out
}

func udpFrontendBuilder(add bool) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		f := &command.RequestUdpFrontend{
			ClusterId: ptr(v.str("id")),
			Address:   v.addr("address"),
			Tags:      v.tags("tags"),
		}
		if add {
			return &command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: f}}, nil
		}
		return &command.Request{RequestType: &command.Request_RemoveUdpFrontend{RemoveUdpFrontend: f}}, nil
	}
}

func buildUDPListenerAdd(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_AddUdpListener{AddUdpListener: &command.UdpListenerConfig{
		Address: v.addr("address"), PublicAddress: v.addr("public-address"),
		FrontTimeout:      ptr(v.u32("front-timeout", defaultUDPTimeout)),
		BackTimeout:       ptr(v.u32("back-timeout", defaultUDPTimeout)),
		MaxRxDatagramSize: ptr(v.u32("max-rx-datagram-size", defaultUDPMaxDatagram)),
		MaxFlows:          ptr(v.u32("max-flows", defaultUDPListenerFlow)),
		Active:            ptr(false),
	}}}, nil
}

// buildUDPListenerUpdate sends only the flags given: the others keep their
// value.
func buildUDPListenerUpdate(v *values) (*command.Request, error) {
	u := &command.UpdateUdpListenerConfig{Address: v.addr("address"), PublicAddress: v.addr("public-address")}
	opt := func(name string) *uint32 {
		if !v.has(name) {
			return nil
		}
		return ptr(v.u32(name, 0))
	}
	u.FrontTimeout, u.BackTimeout = opt("front-timeout"), opt("back-timeout")
	u.MaxRxDatagramSize, u.MaxFlows = opt("max-rx-datagram-size"), opt("max-flows")
	return &command.Request{RequestType: &command.Request_UpdateUdpListener{UpdateUdpListener: u}}, nil
}

// keepUDPFrontends trims a frontend list (asked with the tcp flag, which
// lists TCP and UDP frontends) to its UDP frontends.
func keepUDPFrontends(r *command.Response) {
	if l := r.GetContent().GetFrontendList(); l != nil {
		l.HttpFrontends, l.HttpsFrontends, l.TcpFrontends = nil, nil, nil
	}
}
