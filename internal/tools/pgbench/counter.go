package main

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// counter tallies requests by a key ("POST /flow_runs/{id}/set_state",
// "ecs:RunTask"). It is safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]int64
}

// add counts one request with key.
func (c *counter) add(key string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[key]++
	c.mu.Unlock()
}

// snapshot returns the counts so far.
func (c *counter) snapshot() tally {
	c.mu.Lock()
	defer c.mu.Unlock()
	return tally(maps.Clone(c.n))
}

// tally is a set of counts by key.
type tally map[string]int64

// total is the sum of every key's count.
func (t tally) total() int64 {
	var n int64
	for _, v := range t {
		n += v
	}
	return n
}

// minus returns t less an earlier snapshot of the same counter; keys left
// at zero are dropped.
func (t tally) minus(earlier tally) tally {
	out := tally{}
	for k, v := range t {
		if d := v - earlier[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// plus returns the sum of two tallies.
func (t tally) plus(o tally) tally {
	out := tally(maps.Clone(t))
	if out == nil {
		out = tally{}
	}
	for k, v := range o {
		out[k] += v
	}
	return out
}

// byCount returns the keys, most counted first (ties by key).
func (t tally) byCount() []string {
	keys := slices.Collect(maps.Keys(t))
	slices.SortFunc(keys, func(a, b string) int {
		if t[a] != t[b] {
			if t[a] > t[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// namedCollection reports whether the Prefect API addresses the members
// of a collection by name rather than id.
func namedCollection(seg string) bool { return seg == "work_pools" || seg == "variables" }

// collectionVerb reports whether a path segment after a collection is an
// operation on it rather than a member's name.
func collectionVerb(seg string) bool {
	switch seg {
	case "", "filter", "count", "paginate", "name":
		return true
	}
	return false
}

// prefectRoute is the route of a request to the Prefect API: the method
// and the path below /api with ids and names replaced by {id} and {name}
// and a trailing slash dropped, e.g. "POST /flow_runs/{id}/set_state",
// "POST /work_pools/{name}/get_scheduled_flow_runs". A websocket upgrade
// gets " (websocket)" appended.
func prefectRoute(method, path string, upgrade bool) string {
	path = strings.TrimPrefix(path, "/api")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		switch {
		case uuidPattern.MatchString(s):
			segs[i] = "{id}"
		case i > 0 && namedCollection(segs[i-1]) && !collectionVerb(s):
			segs[i] = "{name}"
		}
	}
	route := method + " /" + strings.Join(segs, "/")
	if upgrade {
		route += " (websocket)"
	}
	return route
}

// credentialScope matches the service in a SigV4 Authorization header:
// Credential=AKID/20240101/us-east-1/ecs/aws4_request.
var credentialScope = regexp.MustCompile(`Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request`)

// awsAction names an AWS API call as "service:Action", e.g. "ecs:RunTask",
// "ec2:DescribeSubnets", "sqs:ReceiveMessage": the service from the SigV4
// credential scope (else the X-Amz-Target prefix), the action from
// X-Amz-Target (JSON protocols) or the Action parameter of the query or
// the form body (EC2's query protocol). Unknown parts are "?".
func awsAction(authorization, target, rawQuery string, formBody []byte) string {
	service := "?"
	if m := credentialScope.FindStringSubmatch(authorization); m != nil {
		service = m[1]
	}
	action := ""
	if prefix, name, ok := strings.Cut(target, "."); ok {
		action = name
		if service == "?" {
			service = strings.ToLower(prefix)
		}
	}
	if action == "" {
		if q, err := url.ParseQuery(rawQuery); err == nil {
			action = q.Get("Action")
		}
	}
	if action == "" && len(formBody) > 0 {
		if q, err := url.ParseQuery(string(formBody)); err == nil {
			action = q.Get("Action")
		}
	}
	if action == "" {
		action = "?"
	}
	return service + ":" + action
}
