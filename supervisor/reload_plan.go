package supervisor

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
)

// A reload plan: the ordinary requests that turn the running state into
// the state a configuration file describes (docs/reload.md). planReload is pure: it reads two states and changes
// neither.

// reloadStep is one request of a plan and what it does, for the answer
// and the audit trail.
type reloadStep struct {
	req  *command.Request
	what string
}

// reloadPlan is the difference between two states as requests, in the
// order they must be applied: listeners first, then clusters,
// certificates, backends and frontends that are added or changed, then
// what is removed, frontends first and listeners last, so that a
// frontend never routes to a cluster, backend or certificate the plan has
// not added yet, and nothing is removed while a frontend still uses it.
type reloadPlan struct {
	steps                   []reloadStep
	added, changed, removed []string // one line per object, in step order
	// restart lists what differs but no request can change live: listener
	// settings the Update*Listener verbs cannot carry. Not applied; the
	// answer says so.
	restart []string
}

func (p *reloadPlan) step(what string, req *command.Request) {
	p.steps = append(p.steps, reloadStep{req: req, what: what})
}

// stateIndex is a state's requests (GenerateRequests) by identity.
type stateIndex struct {
	listeners   map[string]proto.Message // listenerKey → *Http/Https/Tcp/UdpListenerConfig
	active      map[string]bool
	clusters    map[string]*command.Cluster
	httpFronts  map[string]*command.RequestHttpFrontend // "http "/"https " + state.FrontendKey
	l4Fronts    map[string][]proto.Message              // "tcp "/"udp " + cluster id + " " + address
	certs       map[string]*command.AddCertificate      // address + " " + fingerprint
	backends    map[string][]*command.AddBackend        // cluster id + "/" + backend id
	certsByAddr map[string][]string                     // address → cert keys
}

func indexState(s *state.ConfigState) *stateIndex {
	ix := &stateIndex{
		listeners: map[string]proto.Message{}, active: map[string]bool{},
		clusters: map[string]*command.Cluster{}, httpFronts: map[string]*command.RequestHttpFrontend{},
		l4Fronts: map[string][]proto.Message{}, certs: map[string]*command.AddCertificate{},
		backends: map[string][]*command.AddBackend{}, certsByAddr: map[string][]string{},
	}
	for _, wr := range s.GenerateRequests() {
		switch r := wr.GetContent().GetRequestType().(type) {
		case *command.Request_AddHttpListener:
			ix.listeners[listenerKey(command.ListenerType_HTTP, r.AddHttpListener.GetAddress().Display())] = r.AddHttpListener
		case *command.Request_AddHttpsListener:
			ix.listeners[listenerKey(command.ListenerType_HTTPS, r.AddHttpsListener.GetAddress().Display())] = r.AddHttpsListener
		case *command.Request_AddTcpListener:
			ix.listeners[listenerKey(command.ListenerType_TCP, r.AddTcpListener.GetAddress().Display())] = r.AddTcpListener
		case *command.Request_ActivateListener:
			ix.active[listenerKey(r.ActivateListener.GetProxy(), r.ActivateListener.GetAddress().Display())] = true
		case *command.Request_AddUdpListener:
			ix.listeners[listenerKey(command.ListenerType_UDP, r.AddUdpListener.GetAddress().Display())] = r.AddUdpListener
		case *command.Request_AddUdpFrontend:
			f := r.AddUdpFrontend
			k := "udp " + f.GetClusterId() + " " + f.GetAddress().Display()
			ix.l4Fronts[k] = append(ix.l4Fronts[k], f)
		case *command.Request_AddCluster:
			ix.clusters[r.AddCluster.GetClusterId()] = r.AddCluster
		case *command.Request_AddHttpFrontend:
			k, _ := state.FrontendKey(r.AddHttpFrontend)
			ix.httpFronts["http "+k] = r.AddHttpFrontend
		case *command.Request_AddHttpsFrontend:
			k, _ := state.FrontendKey(r.AddHttpsFrontend)
			ix.httpFronts["https "+k] = r.AddHttpsFrontend
		case *command.Request_AddTcpFrontend:
			f := r.AddTcpFrontend
			k := "tcp " + f.GetClusterId() + " " + f.GetAddress().Display()
			ix.l4Fronts[k] = append(ix.l4Fronts[k], f)
		case *command.Request_AddCertificate:
			addr := r.AddCertificate.GetAddress().Display()
			fp, err := state.Fingerprint(r.AddCertificate.GetCertificate().GetCertificate())
			if err != nil {
				fp = "unreadable:" + fmt.Sprint(len(ix.certs)) // the state took it, so this does not happen
			}
			k := addr + " " + fp
			ix.certs[k] = r.AddCertificate
			ix.certsByAddr[addr] = append(ix.certsByAddr[addr], k)
		case *command.Request_AddBackend:
			b := r.AddBackend
			k := b.GetClusterId() + "/" + b.GetBackendId()
			ix.backends[k] = append(ix.backends[k], b)
		}
	}
	return ix
}

// planReload returns the requests that turn cur into next. Listeners
// present in both keep their activation unless next activates them: a
// reload never deactivates a listener it keeps.
func planReload(cur, next *state.ConfigState) *reloadPlan {
	o, n := indexState(cur), indexState(next)
	p := &reloadPlan{}

	// Listeners: added (and activated), changed (patched), activated.
	for _, k := range sortedKeys(n.listeners) {
		nl := n.listeners[k]
		ol, had := o.listeners[k]
		kind, addr := listenerKind(nl), listenerAddr(nl)
		what := "listener " + strings.ToLower(kind.String()) + " " + addr.Display()
		if !had {
			p.step(what, addListenerRequest(nl))
			if n.active[k] {
				p.step(what+" (activate)", activateRequest(kind, addr))
			}
			p.added = append(p.added, what)
			continue
		}
		if !sameListener(ol, nl) {
			patch, fields := listenerPatch(ol, nl)
			if len(fields) > 0 {
				p.restart = append(p.restart, fmt.Sprintf("%s: %s cannot change live (remove the listener and add it again, or restart)", what, strings.Join(fields, ", ")))
			} else {
				p.step(what+" (update)", patch)
				p.changed = append(p.changed, what)
			}
		}
		if n.active[k] && !o.active[k] {
			p.step(what+" (activate)", activateRequest(kind, addr))
			p.changed = append(p.changed, what+" activated")
		}
	}

	// Clusters added or changed (AddCluster replaces the whole cluster).
	for _, id := range sortedKeys(n.clusters) {
		oc, had := o.clusters[id]
		switch {
		case !had:
			p.step("cluster "+id, &command.Request{RequestType: &command.Request_AddCluster{AddCluster: n.clusters[id]}})
			p.added = append(p.added, "cluster "+id)
		case !proto.Equal(oc, n.clusters[id]):
			p.step("cluster "+id, &command.Request{RequestType: &command.Request_AddCluster{AddCluster: n.clusters[id]}})
			p.changed = append(p.changed, "cluster "+id)
		}
	}

	// Certificates added, or changed under the same fingerprint (names,
	// versions, chain): replaced in place.
	for _, k := range sortedKeys(n.certs) {
		nc := n.certs[k]
		oc, had := o.certs[k]
		what := "certificate " + certText(k, nc)
		switch {
		case !had:
			p.step(what, &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: nc}})
			p.added = append(p.added, what)
		case !proto.Equal(oc, nc):
			_, fp, _ := strings.Cut(k, " ")
			p.step(what, &command.Request{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{
				Address: nc.GetAddress(), NewCertificate: nc.GetCertificate(), OldFingerprint: proto.String(fp),
			}}})
			p.changed = append(p.changed, what)
		}
	}

	// Backends: added or changed before any is removed, so a backend that
	// moves (same id, new address) serves from its new address before the
	// old one leaves.
	var goneBackends []*command.AddBackend
	movedFrom := map[*command.AddBackend]bool{} // removed as part of a move: reported as a change
	for _, k := range union(sortedKeys(o.backends), sortedKeys(n.backends)) {
		ob, nb := o.backends[k], n.backends[k]
		moved := len(ob) == 1 && len(nb) == 1 && !sameAddr(ob[0], nb[0])
		for _, b := range nb {
			i := slices.IndexFunc(ob, func(x *command.AddBackend) bool { return sameAddr(x, b) })
			what := "backend " + k + " " + b.GetAddress().Display()
			switch {
			case moved:
				what = "backend " + k + " " + ob[0].GetAddress().Display() + " → " + b.GetAddress().Display()
				p.changed = append(p.changed, what)
			case i < 0:
				p.added = append(p.added, what)
			case !proto.Equal(ob[i], b):
				p.changed = append(p.changed, what)
			default:
				continue
			}
			p.step(what, &command.Request{RequestType: &command.Request_AddBackend{AddBackend: b}})
		}
		for _, b := range ob {
			if !slices.ContainsFunc(nb, func(x *command.AddBackend) bool { return sameAddr(x, b) }) {
				goneBackends = append(goneBackends, b)
				if moved {
					movedFrom[b] = true
				}
			}
		}
	}

	// HTTP and HTTPS frontends: a changed one (same key, other cluster or
	// settings) is removed and added again, adjacent.
	var goneFronts []reloadStep
	for _, k := range sortedKeys(n.httpFronts) {
		nf := n.httpFronts[k]
		of, had := o.httpFronts[k]
		what := "frontend " + k + frontTarget(nf)
		switch {
		case !had:
			p.step(what, httpFrontRequest(k, nf, true))
			p.added = append(p.added, what)
		case !proto.Equal(of, nf):
			p.step("frontend "+k+frontTarget(of)+" (replaced)", httpFrontRequest(k, of, false))
			p.step(what, httpFrontRequest(k, nf, true))
			p.changed = append(p.changed, what)
		}
	}
	for _, k := range sortedKeys(o.httpFronts) {
		if _, ok := n.httpFronts[k]; !ok {
			what := "frontend " + k + frontTarget(o.httpFronts[k])
			goneFronts = append(goneFronts, reloadStep{httpFrontRequest(k, o.httpFronts[k], false), what})
		}
	}
	// TCP and UDP frontends, by cluster and address: Remove*Frontend
	// removes every frontend of the cluster at the address, whatever its
	// tags.
	for _, k := range sortedKeys(n.l4Fronts) {
		nf, of := n.l4Fronts[k], o.l4Fronts[k]
		if slices.EqualFunc(of, nf, proto.Equal) {
			continue
		}
		what := "frontend " + k
		if len(of) > 0 {
			p.step(what+" (replaced)", l4FrontRequest(of[0], false))
			p.changed = append(p.changed, what)
		} else {
			p.added = append(p.added, what)
		}
		for _, f := range nf {
			p.step(what, l4FrontRequest(f, true))
		}
	}
	for _, k := range sortedKeys(o.l4Fronts) {
		if _, ok := n.l4Fronts[k]; !ok {
			goneFronts = append(goneFronts, reloadStep{l4FrontRequest(o.l4Fronts[k][0], false), "frontend " + k})
		}
	}

	// Removals: frontends, backends, certificates, clusters, listeners.
	for _, s := range goneFronts {
		p.step(s.what, s.req)
		p.removed = append(p.removed, s.what)
	}
	for _, b := range goneBackends {
		if !movedFrom[b] {
			p.removed = append(p.removed, "backend "+b.GetClusterId()+"/"+b.GetBackendId()+" "+b.GetAddress().Display())
		}
		p.step("backend "+b.GetClusterId()+"/"+b.GetBackendId()+" "+b.GetAddress().Display()+" (remove)",
			&command.Request{RequestType: &command.Request_RemoveBackend{RemoveBackend: &command.RemoveBackend{
				ClusterId: b.ClusterId, BackendId: b.BackendId, Address: b.Address,
			}}})
	}
	for _, k := range sortedKeys(o.certs) {
		if _, ok := n.certs[k]; ok {
			continue
		}
		oc := o.certs[k]
		_, fp, _ := strings.Cut(k, " ")
		what := "certificate " + certText(k, oc)
		p.step(what, &command.Request{RequestType: &command.Request_RemoveCertificate{RemoveCertificate: &command.RemoveCertificate{
			Address: oc.GetAddress(), Fingerprint: proto.String(fp),
		}}})
		p.removed = append(p.removed, what)
	}
	for _, id := range sortedKeys(o.clusters) {
		if _, ok := n.clusters[id]; !ok {
			p.step("cluster "+id, &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: id}})
			p.removed = append(p.removed, "cluster "+id)
		}
	}
	for _, k := range sortedKeys(o.listeners) {
		if _, ok := n.listeners[k]; ok {
			continue
		}
		ol := o.listeners[k]
		kind, addr := listenerKind(ol), listenerAddr(ol)
		what := "listener " + strings.ToLower(kind.String()) + " " + addr.Display()
		if o.active[k] {
			p.step(what+" (deactivate)", &command.Request{RequestType: &command.Request_DeactivateListener{DeactivateListener: &command.DeactivateListener{
				Address: addr, Proxy: kind.Enum(), ToScm: proto.Bool(false),
			}}})
		}
		p.step(what, &command.Request{RequestType: &command.Request_RemoveListener{RemoveListener: &command.RemoveListener{
			Address: addr, Proxy: kind.Enum(),
		}}})
		p.removed = append(p.removed, what)
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// union merges two sorted key lists, without duplicates.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

func sameAddr(a, b *command.AddBackend) bool {
	return proto.Equal(a.GetAddress(), b.GetAddress())
}

func frontTarget(f *command.RequestHttpFrontend) string {
	if f.ClusterId == nil {
		return " → (deny)"
	}
	return " → " + f.GetClusterId()
}

func certText(key string, c *command.AddCertificate) string {
	addr, fp, _ := strings.Cut(key, " ")
	if len(fp) > 16 {
		fp = fp[:16]
	}
	s := addr + " " + fp
	if names := c.GetCertificate().GetNames(); len(names) > 0 {
		s += " (" + strings.Join(names, ", ") + ")"
	}
	return s
}

func httpFrontRequest(key string, f *command.RequestHttpFrontend, add bool) *command.Request {
	https := strings.HasPrefix(key, "https ")
	switch {
	case add && https:
		return &command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: f}}
	case add:
		return &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: f}}
	case https:
		return &command.Request{RequestType: &command.Request_RemoveHttpsFrontend{RemoveHttpsFrontend: f}}
	}
	return &command.Request{RequestType: &command.Request_RemoveHttpFrontend{RemoveHttpFrontend: f}}
}

// l4FrontRequest adds TCP or UDP frontend f, or removes every frontend of
// its cluster at its address.
func l4FrontRequest(f proto.Message, add bool) *command.Request {
	switch f := f.(type) {
	case *command.RequestUdpFrontend:
		if add {
			return &command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: f}}
		}
		return &command.Request{RequestType: &command.Request_RemoveUdpFrontend{RemoveUdpFrontend: &command.RequestUdpFrontend{
			ClusterId: f.ClusterId, Address: f.Address,
		}}}
	}
	t := f.(*command.RequestTcpFrontend)
	if add {
		return &command.Request{RequestType: &command.Request_AddTcpFrontend{AddTcpFrontend: t}}
	}
	return &command.Request{RequestType: &command.Request_RemoveTcpFrontend{RemoveTcpFrontend: &command.RequestTcpFrontend{
		ClusterId: t.ClusterId, Address: t.Address,
	}}}
}

func listenerKind(l proto.Message) command.ListenerType {
	switch l.(type) {
	case *command.HttpsListenerConfig:
		return command.ListenerType_HTTPS
	case *command.TcpListenerConfig:
		return command.ListenerType_TCP
	case *command.UdpListenerConfig:
		return command.ListenerType_UDP
	}
	return command.ListenerType_HTTP
}

func listenerAddr(l proto.Message) *command.SocketAddress {
	return l.(interface{ GetAddress() *command.SocketAddress }).GetAddress()
}

func addListenerRequest(l proto.Message) *command.Request {
	switch l := l.(type) {
	case *command.HttpsListenerConfig:
		return &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: l}}
	case *command.TcpListenerConfig:
		return &command.Request{RequestType: &command.Request_AddTcpListener{AddTcpListener: l}}
	case *command.UdpListenerConfig:
		return &command.Request{RequestType: &command.Request_AddUdpListener{AddUdpListener: l}}
	}
	return &command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: l.(*command.HttpListenerConfig)}}
}

func activateRequest(kind command.ListenerType, addr *command.SocketAddress) *command.Request {
	return &command.Request{RequestType: &command.Request_ActivateListener{ActivateListener: &command.ActivateListener{
		Address: addr, Proxy: kind.Enum(), FromScm: proto.Bool(false),
	}}}
}

// withoutActive is l with its active flag cleared: activation is planned
// apart from the listener's settings.
func withoutActive(l proto.Message) proto.Message {
	c := proto.Clone(l)
	r := c.ProtoReflect()
	if fd := r.Descriptor().Fields().ByName("active"); fd != nil {
		r.Clear(fd)
	}
	return c
}

func sameListener(a, b proto.Message) bool {
	return proto.Equal(withoutActive(a), withoutActive(b))
}

// listenerPatch builds the Update*Listener request that turns listener
// old into new, and checks it the only way that cannot drift from the
// state's own rules: it applies the patch to old in a scratch state and
// compares. fields names the settings the patch could not carry (none:
// the patch is exact).
func listenerPatch(old, new proto.Message) (*command.Request, []string) {
	addr := listenerAddr(new)
	var req *command.Request
	var patch protoreflect.Message
	switch listenerKind(new) {
	case command.ListenerType_HTTPS:
		u := &command.UpdateHttpsListenerConfig{Address: addr}
		req, patch = &command.Request{RequestType: &command.Request_UpdateHttpsListener{UpdateHttpsListener: u}}, u.ProtoReflect()
	case command.ListenerType_TCP:
		u := &command.UpdateTcpListenerConfig{Address: addr}
		req, patch = &command.Request{RequestType: &command.Request_UpdateTcpListener{UpdateTcpListener: u}}, u.ProtoReflect()
	case command.ListenerType_UDP:
		u := &command.UpdateUdpListenerConfig{Address: addr}
		req, patch = &command.Request{RequestType: &command.Request_UpdateUdpListener{UpdateUdpListener: u}}, u.ProtoReflect()
	default:
		u := &command.UpdateHttpListenerConfig{Address: addr}
		req, patch = &command.Request{RequestType: &command.Request_UpdateHttpListener{UpdateHttpListener: u}}, u.ProtoReflect()
	}
	o, n := old.ProtoReflect(), new.ProtoReflect()
	pf := patch.Descriptor().Fields()
	for i := range pf.Len() {
		fd := pf.Get(i)
		lf := n.Descriptor().Fields().ByName(fd.Name())
		if fd.Name() == "address" || lf == nil || !n.Has(lf) {
			continue
		}
		if o.Has(lf) && o.Get(lf).Equal(n.Get(lf)) {
			continue
		}
		switch {
		case fd.Name() == "alpn_protocols": // a list in the listener, a message in the patch
			var vals []string
			l := n.Get(lf).List()
			for j := range l.Len() {
				vals = append(vals, l.Get(j).String())
			}
			patch.Set(fd, protoreflect.ValueOfMessage((&command.AlpnProtocols{Values: vals}).ProtoReflect()))
		case fd.Kind() == lf.Kind() && fd.IsList() == lf.IsList() && fd.IsMap() == lf.IsMap():
			if fd.Message() != nil && lf.Message() != nil && fd.Message().FullName() != lf.Message().FullName() {
				continue
			}
			patch.Set(fd, n.Get(lf))
		}
	}
	scratch := state.New()
	if err := scratch.Dispatch(addListenerRequest(proto.Clone(old))); err != nil {
		return nil, []string{"(the running listener: " + err.Error() + ")"}
	}
	if err := scratch.Dispatch(req); err != nil {
		return nil, []string{"(update refused: " + err.Error() + ")"}
	}
	var got proto.Message
	switch listenerKind(new) {
	case command.ListenerType_HTTPS:
		got = scratch.HTTPSListener(addr)
	case command.ListenerType_TCP:
		got = scratch.TCPListener(addr)
	case command.ListenerType_UDP:
		got = scratch.UDPListener(addr)
	default:
		got = scratch.HTTPListener(addr)
	}
	if sameListener(got, new) {
		return req, nil
	}
	// Name the settings that still differ.
	g, w := withoutActive(got).ProtoReflect(), withoutActive(new).ProtoReflect()
	var fields []string
	lfs := w.Descriptor().Fields()
	for i := range lfs.Len() {
		fd := lfs.Get(i)
		if g.Has(fd) != w.Has(fd) || (w.Has(fd) && !g.Get(fd).Equal(w.Get(fd))) {
			fields = append(fields, string(fd.Name()))
		}
	}
	if len(fields) == 0 {
		fields = []string{"(unknown field)"}
	}
	return nil, fields
}
