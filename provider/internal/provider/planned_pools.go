package provider

import (
	"sync"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// plannedPools records the base job templates that the work pools changed
// by the current plan will have after apply, so that a deployment's job
// variables are checked against the template the apply leaves rather than
// the one on the server. Terraform plans a work pool before the deployments
// that reference it (work_pool_name = prefect_work_pool.<name>.name), in the
// same provider process; the provider makes a new one for each plan or
// apply (Configure), so nothing outlives it.
type plannedPools struct {
	mu    sync.Mutex
	pools map[string]plannedTemplate
}

// plannedTemplate is a pool's base job template as a plan leaves it.
type plannedTemplate struct {
	// known is false when the template is known only after apply.
	known    bool
	template map[string]any
}

func newPlannedPools() *plannedPools {
	return &plannedPools{pools: map[string]plannedTemplate{}}
}

// record notes the planned template of a pool whose template the plan
// changes; a nil template with known false is one known only after apply.
func (p *plannedPools) record(pool string, t plannedTemplate) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pools[pool] = t
}

// forget drops a pool the plan does not change after all.
func (p *plannedPools) forget(pool string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pools, pool)
}

// lookup returns the planned template of a pool the plan changes; ok is
// false for a pool it leaves as it is on the server.
func (p *plannedPools) lookup(pool string) (t plannedTemplate, ok bool) {
	if p == nil {
		return plannedTemplate{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok = p.pools[pool]
	return t, ok
}

// apply returns the pool with the planned template; server is the pool as
// it is on the server, nil when the plan creates it.
func (t plannedTemplate) apply(name string, server *prefect.WorkPool) prefect.WorkPool {
	wp := prefect.WorkPool{Name: name}
	if server != nil {
		wp = *server
	}
	wp.BaseJobTemplate = t.template
	return wp
}
