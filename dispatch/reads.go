package dispatch

import (
	"context"
	"math"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// readAPI is what a pass reads about the runs it starts, besides the runs
// themselves: the pool, deployments, flows, and the variables and blocks
// job templates name.
type readAPI interface {
	ReadWorkPool(ctx context.Context, name string) (prefect.WorkPool, error)
	ReadDeployment(ctx context.Context, id string) (prefect.Deployment, error)
	ReadFlow(ctx context.Context, id string) (prefect.Flow, error)
	Lookups
}

// cachedReads answers readAPI from memos in front of next. A Dispatcher
// keeps one in front of the API, reusing answers for Config.ReadCacheTTL;
// each pass keeps one in front of that for the pass's lifetime, so every
// object a pass needs is read at most once by it, whatever the number of
// its runs.
type cachedReads struct {
	next        readAPI
	pools       *memo[prefect.WorkPool]
	deployments *memo[prefect.Deployment]
	flows       *memo[prefect.Flow]
	variables   *memo[prefect.Variable]
	blocks      *memo[prefect.BlockDocument]
}

// forever is the ttl of a pass's memos: the pass's lifetime.
const forever = time.Duration(math.MaxInt64)

func newCachedReads(next readAPI, ttl time.Duration, now func() time.Time) *cachedReads {
	return &cachedReads{
		next:        next,
		pools:       newMemo[prefect.WorkPool](ttl, now),
		deployments: newMemo[prefect.Deployment](ttl, now),
		flows:       newMemo[prefect.Flow](ttl, now),
		variables:   newMemo[prefect.Variable](ttl, now),
		blocks:      newMemo[prefect.BlockDocument](ttl, now),
	}
}

// sweep forgets expired answers.
func (c *cachedReads) sweep() {
	c.pools.sweep()
	c.deployments.sweep()
	c.flows.sweep()
	c.variables.sweep()
	c.blocks.sweep()
}

func (c *cachedReads) ReadWorkPool(ctx context.Context, name string) (prefect.WorkPool, error) {
	return c.pools.get(ctx, name, func(ctx context.Context) (prefect.WorkPool, error) { return c.next.ReadWorkPool(ctx, name) })
}

func (c *cachedReads) ReadDeployment(ctx context.Context, id string) (prefect.Deployment, error) {
	return c.deployments.get(ctx, id, func(ctx context.Context) (prefect.Deployment, error) { return c.next.ReadDeployment(ctx, id) })
}

func (c *cachedReads) ReadFlow(ctx context.Context, id string) (prefect.Flow, error) {
	return c.flows.get(ctx, id, func(ctx context.Context) (prefect.Flow, error) { return c.next.ReadFlow(ctx, id) })
}

func (c *cachedReads) ReadVariable(ctx context.Context, name string) (prefect.Variable, error) {
	return c.variables.get(ctx, name, func(ctx context.Context) (prefect.Variable, error) { return c.next.ReadVariable(ctx, name) })
}

func (c *cachedReads) ReadBlockDocument(ctx context.Context, id string) (prefect.BlockDocument, error) {
	return c.blocks.get(ctx, "id/"+id, func(ctx context.Context) (prefect.BlockDocument, error) { return c.next.ReadBlockDocument(ctx, id) })
}

func (c *cachedReads) ReadBlockDocumentByName(ctx context.Context, typeSlug, name string) (prefect.BlockDocument, error) {
	return c.blocks.get(ctx, "name/"+typeSlug+"/"+name, func(ctx context.Context) (prefect.BlockDocument, error) {
		return c.next.ReadBlockDocumentByName(ctx, typeSlug, name)
	})
}
