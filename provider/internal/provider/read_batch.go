package provider

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// Terraform refreshes each object with its own ReadResource call, up to
// -parallelism of them at once, so the provider cannot ask for the objects
// of a plan in one request; but the calls that arrive together can share
// one. A readBatch collects the keys asked for within batchWindow of the
// first and reads them with one request to the server's filter route.
const (
	batchWindow = 5 * time.Millisecond
	// batchMax is the most keys one batch reads: a filter page.
	batchMax = 200
	// batchTimeout bounds one batch's request, which no single caller's
	// context may cancel for the others.
	batchTimeout = 2 * time.Minute
)

// errNotFound is what a batch answers for a key the filter did not return:
// the object does not exist. It is a 404 *prefect.APIError, so
// prefect.IsNotFound recognizes it.
func errNotFound(what string) error {
	return &prefect.APIError{StatusCode: http.StatusNotFound, Method: http.MethodPost, Path: what, Detail: "not found"}
}

// readBatch reads objects of one kind by key, a batch at a time.
type readBatch[T any] struct {
	what  string // the filter route, for errors
	read  func(ctx context.Context, keys []string) ([]T, error)
	keyOf func(T) string

	mu      sync.Mutex
	pending *batch[T]
}

// batch is one request's worth of keys and, once done is closed, its answer.
type batch[T any] struct {
	keys    []string
	done    chan struct{}
	started sync.Once
	found   map[string]T
	err     error
}

// get returns the object of key, from a batch shared with the calls that
// arrive within batchWindow.
func (b *readBatch[T]) get(ctx context.Context, key string) (T, error) {
	var zero T
	b.mu.Lock()
	p := b.pending
	if p == nil {
		p = &batch[T]{done: make(chan struct{})}
		b.pending = p
		time.AfterFunc(batchWindow, func() { b.run(ctx, p) })
	}
	p.keys = append(p.keys, key)
	if len(p.keys) >= batchMax {
		go b.run(ctx, p)
		b.pending = nil
	}
	b.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if p.err != nil {
		return zero, p.err
	}
	v, ok := p.found[key]
	if !ok {
		return zero, errNotFound(b.what)
	}
	return v, nil
}

// run reads a batch's keys once.
func (b *readBatch[T]) run(ctx context.Context, p *batch[T]) {
	p.started.Do(func() {
		b.mu.Lock()
		if b.pending == p {
			b.pending = nil
		}
		keys := append([]string(nil), p.keys...)
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
		defer cancel()
		objects, err := b.read(ctx, unique(keys))
		p.found = make(map[string]T, len(objects))
		for _, o := range objects {
			p.found[b.keyOf(o)] = o
		}
		p.err = err
		close(p.done)
	})
}

func unique(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := keys[:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// refreshReads are the batched reads of the objects Terraform refreshes
// most: flows, work pools, deployments and variables.
type refreshReads struct {
	flows       *readBatch[prefect.Flow]
	pools       *readBatch[prefect.WorkPool]
	deployments *readBatch[prefect.Deployment]
	variables   *readBatch[prefect.Variable]
}

func newRefreshReads(c *prefect.Client) *refreshReads {
	return &refreshReads{
		flows: &readBatch[prefect.Flow]{what: "/flows/filter", read: c.FilterFlowsByID,
			keyOf: func(f prefect.Flow) string { return f.ID }},
		pools: &readBatch[prefect.WorkPool]{what: "/work_pools/filter", read: c.FilterWorkPoolsByName,
			keyOf: func(p prefect.WorkPool) string { return p.Name }},
		deployments: &readBatch[prefect.Deployment]{what: "/deployments/filter", read: c.ReadDeploymentsByID,
			keyOf: func(d prefect.Deployment) string { return d.ID }},
		variables: &readBatch[prefect.Variable]{what: "/variables/filter", read: c.FilterVariablesByID,
			keyOf: func(v prefect.Variable) string { return v.ID }},
	}
}

// refreshReadsFrom returns the provider's batched reads; nil when the
// provider is not configured.
func refreshReadsFrom(data any) *refreshReads {
	if d, ok := data.(*resourceData); ok {
		return d.reads
	}
	return nil
}

// flow reads a flow by id, batched; without batched reads (nil r) or for
// an id that is not a UUID (which would fail the whole batch), alone.
func (r *refreshReads) flow(ctx context.Context, c *prefect.Client, id string) (prefect.Flow, error) {
	if r == nil || uuid.Validate(id) != nil {
		return c.ReadFlow(ctx, id)
	}
	return r.flows.get(ctx, id)
}

// pool reads a work pool by name, batched unless r is nil.
func (r *refreshReads) pool(ctx context.Context, c *prefect.Client, name string) (prefect.WorkPool, error) {
	if r == nil {
		return c.ReadWorkPool(ctx, name)
	}
	return r.pools.get(ctx, name)
}

// deployment reads a deployment by id, batched as flow is.
func (r *refreshReads) deployment(ctx context.Context, c *prefect.Client, id string) (prefect.Deployment, error) {
	if r == nil || uuid.Validate(id) != nil {
		return c.ReadDeployment(ctx, id)
	}
	return r.deployments.get(ctx, id)
}

// variable reads a variable by id, batched as flow is.
func (r *refreshReads) variable(ctx context.Context, c *prefect.Client, id string) (prefect.Variable, error) {
	if r == nil || uuid.Validate(id) != nil {
		return c.ReadVariableByID(ctx, id)
	}
	return r.variables.get(ctx, id)
}
