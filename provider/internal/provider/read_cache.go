package provider

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// readCacheTTL bounds how long a read object is reused. The provider lives
// for one terraform walk (a plan, or the apply after it), so entries are
// normally dropped with it long before; the bound only keeps a long walk
// from using an old read.
const readCacheTTL = 2 * time.Minute

// readCache remembers the work pools, flows and deployments this provider
// process read, created or changed, so that a plan reads each of them once:
// every deployment's plan checks its job variables against its work pool,
// which the pool's own refresh has just read; a deployment's create reads
// its flow, which the same apply has just created; and a schedule's refresh
// finds its schedule in the deployment its deployment's refresh has just
// read (Terraform refreshes an object before the ones that refer to it). A
// pool that does not exist is remembered too, for the deployments a plan
// creates on a pool it creates. Writes through the provider update or drop
// the entries they change. A nil *readCache caches nothing.
type readCache struct {
	pools       objectCache[prefect.WorkPool]
	flows       objectCache[prefect.Flow]
	deployments objectCache[prefect.Deployment]
}

func newReadCache() *readCache {
	return &readCache{pools: newObjectCache[prefect.WorkPool](), flows: newObjectCache[prefect.Flow](),
		deployments: newObjectCache[prefect.Deployment]()}
}

// readCacheFrom returns the provider's read cache; nil when the provider is
// not configured.
func readCacheFrom(data any) *readCache {
	if d, ok := data.(*resourceData); ok {
		return d.cache
	}
	return nil
}

// putPool remembers a pool as the server has it.
func (c *readCache) putPool(p prefect.WorkPool) {
	if c != nil {
		c.pools.put(p.Name, p)
	}
}

// forgetPool drops a pool.
func (c *readCache) forgetPool(name string) {
	if c != nil {
		c.pools.forget(name)
	}
}

// pool returns the named pool, read with read unless this process has it
// already.
func (c *readCache) pool(name string, read func() (prefect.WorkPool, error)) (prefect.WorkPool, error) {
	if c == nil {
		return read()
	}
	return c.pools.fetch(name, read)
}

// putFlow remembers a flow as the server has it.
func (c *readCache) putFlow(f prefect.Flow) {
	if c != nil {
		c.flows.put(f.ID, f)
	}
}

// forgetFlow drops a flow.
func (c *readCache) forgetFlow(id string) {
	if c != nil {
		c.flows.forget(id)
	}
}

// flow returns the flow with the id, read with read unless this process
// has it already.
func (c *readCache) flow(id string, read func() (prefect.Flow, error)) (prefect.Flow, error) {
	if c == nil {
		return read()
	}
	return c.flows.fetch(id, read)
}

// putDeployment remembers a deployment as the server has it.
func (c *readCache) putDeployment(d prefect.Deployment) {
	if c != nil {
		c.deployments.put(d.ID, d)
	}
}

// forgetDeployment drops a deployment, e.g. when its schedules change.
func (c *readCache) forgetDeployment(id string) {
	if c != nil {
		c.deployments.forget(id)
	}
}

// deployment returns a deployment this process read, created or changed;
// ok is false when it has none fresh.
func (c *readCache) deployment(id string) (prefect.Deployment, bool) {
	if c == nil {
		return prefect.Deployment{}, false
	}
	return c.deployments.get(id)
}

// objectCache is one kind of object of a readCache, by key.
type objectCache[T any] struct {
	mu      *sync.Mutex
	entries map[string]cached[T]
	flight  *singleflight.Group
	now     func() time.Time
}

// cached is an object, or the server's not-found answer for its key.
type cached[T any] struct {
	value    T
	notFound error
	at       time.Time
}

func newObjectCache[T any]() objectCache[T] {
	return objectCache[T]{mu: new(sync.Mutex), entries: map[string]cached[T]{}, flight: new(singleflight.Group), now: time.Now}
}

func (c objectCache[T]) put(key string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = cached[T]{value: v, at: c.now()}
}

func (c objectCache[T]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// lookup returns the fresh entry of key.
func (c objectCache[T]) lookup(key string) (cached[T], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || c.now().Sub(e.at) >= readCacheTTL {
		return cached[T]{}, false
	}
	return e, true
}

// get returns the object of key when it is cached and exists.
func (c objectCache[T]) get(key string) (T, bool) {
	e, ok := c.lookup(key)
	if !ok || e.notFound != nil {
		var zero T
		return zero, false
	}
	return e.value, true
}

// fetch returns the object of key, calling read (once for concurrent
// callers) unless it is cached; a not-found answer is cached too.
func (c objectCache[T]) fetch(key string, read func() (T, error)) (T, error) {
	if e, ok := c.lookup(key); ok {
		return e.value, e.notFound
	}
	v, err, _ := c.flight.Do(key, func() (any, error) {
		v, err := read()
		switch {
		case err == nil:
			c.put(key, v)
		case prefect.IsNotFound(err):
			c.mu.Lock()
			c.entries[key] = cached[T]{notFound: err, at: c.now()}
			c.mu.Unlock()
		}
		return v, err
	})
	return v.(T), err
}

// oneWriteAtATime is the provider's HTTP transport: it sends one change
// (POST, PUT, PATCH, DELETE other than the read-only filter and count
// routes) at a time and reads in parallel. A Prefect server on SQLite
// answers concurrent writes with 503 (SQLITE_BUSY_SNAPSHOT: the busy
// timeout does not help), which the client retries after a backoff, so
// Terraform's parallel applies would cost retries and seconds of waiting;
// one change at a time costs a PostgreSQL-backed server little, as each
// change takes milliseconds.
type oneWriteAtATime struct {
	next  http.RoundTripper
	write chan struct{}
}

func newOneWriteAtATime(next http.RoundTripper) *oneWriteAtATime {
	return &oneWriteAtATime{next: next, write: make(chan struct{}, 1)}
}

// RoundTrip sends the request, waiting for its turn if it changes something.
func (t *oneWriteAtATime) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isWrite(req) {
		return t.next.RoundTrip(req)
	}
	select {
	case t.write <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	defer func() { <-t.write }()
	return t.next.RoundTrip(req)
}

// isWrite reports whether a request changes the server.
func isWrite(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	case http.MethodPost:
		p := strings.TrimRight(req.URL.Path, "/")
		return !strings.HasSuffix(p, "/filter") && !strings.HasSuffix(p, "/count") && !strings.HasSuffix(p, "/paginate")
	}
	return true
}
