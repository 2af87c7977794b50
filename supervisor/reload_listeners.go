package supervisor

import (
	"github.com/sozu-go/sozu/proto/command"
)

// bindActivation returns the socket for an activation: the one a reload
// bound beforehand (prebind), or a new one. Actor only.
func (a *actor) bindActivation(kind command.ListenerType, addr *command.SocketAddress) (*boundListener, error) {
	key := listenerKey(kind, addr.Display())
	if bl := a.prebound[key]; bl != nil {
		delete(a.prebound, key)
		return bl, nil
	}
	return bindListener(kind, addr, a.cfg.WorkerCount)
}

// prebind binds, before any step of a reload plan is applied, every
// listener the plan activates and that is not bound yet, so that a port
// already taken refuses the whole reload instead of failing it part-way.
// On error nothing stays bound. Actor only.
func (a *actor) prebind(p *reloadPlan) error {
	if a.prebound == nil {
		a.prebound = listenerTable{}
	}
	for _, st := range p.steps {
		act := st.req.GetActivateListener()
		if act == nil {
			continue
		}
		key := listenerKey(act.GetProxy(), act.GetAddress().Display())
		if _, bound := a.listeners[key]; bound || a.prebound[key] != nil {
			continue
		}
		bl, err := bindListener(act.GetProxy(), act.GetAddress(), a.cfg.WorkerCount)
		if err != nil {
			a.releasePrebound()
			return err
		}
		a.prebound[key] = bl
	}
	return nil
}

// releasePrebound closes the sockets a reload bound and did not use.
// Actor only.
func (a *actor) releasePrebound() {
	for k, bl := range a.prebound {
		bl.shut()
		delete(a.prebound, k)
	}
}
