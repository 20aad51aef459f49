package ecs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"golang.org/x/sync/singleflight"
)

// What a Backend remembers between Starts to save AWS calls. Each entry is
// keyed by where it holds — the region and the identity whose credentials
// the job uses (see target.identity) — and forgetting any of it is always
// safe: a Start that finds nothing remembered asks AWS, as a new process
// does. The memory lives on the Backend value; nothing is package-level.

// revisionKey names a task definition content in a family.
type revisionKey struct{ region, identity, family, hash string }

// describedKey names a task definition revision given by ARN in a job's
// task_definition_arn.
type describedKey struct{ region, identity, arn string }

// subnetKey names a VPC; an empty vpcID is the default VPC.
type subnetKey struct{ region, identity, vpcID string }

type subnetEntry struct {
	ids []string
	at  time.Time
}

// attemptKey names an attempt where ECS keeps RunTask's clientToken apart:
// per region, account (the identity stands in for it) and cluster.
type attemptKey struct{ region, identity, cluster, token string }

// attemptMemory is what this Backend knows of one attempt.
type attemptMemory struct {
	// pid is the attempt's infrastructure id, once a Start returned it.
	pid string
	// unanswered is set when a RunTask of the attempt was sent and returned
	// no task (an error, a lost response): the attempt may have started, so
	// the next Start looks for its task before running it.
	unanswered bool
	// busy is closed when the Start of the attempt under way in this
	// process ends; nil when none is.
	busy chan struct{}
	// at is when the entry was last written.
	at time.Time
}

const (
	// attemptTTL bounds how long a started attempt's id is remembered: a
	// repeated Start of an attempt comes within seconds (a retry), and
	// forgetting only costs the repeat a RunTask that ECS answers from its
	// clientToken.
	attemptTTL = time.Hour
	// maxAttempts bounds the attempts remembered.
	maxAttempts = 4096
)

// knownRevision returns the ARN of the revision this Backend last used for
// the content, or "".
func (b *Backend) knownRevision(k revisionKey) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.known[k]
}

func (b *Backend) remember(k revisionKey, arn string) {
	b.mu.Lock()
	b.known[k] = arn
	b.mu.Unlock()
}

// forgetRevision forgets arn for the content, unless another Start has
// replaced it meanwhile.
func (b *Backend) forgetRevision(k revisionKey, arn string) {
	b.mu.Lock()
	if b.known[k] == arn {
		delete(b.known, k)
	}
	b.mu.Unlock()
}

// describedTaskDefinition returns a copy of the remembered definition of
// the revision, or nil.
func (b *Backend) describedTaskDefinition(k describedKey) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	if td, ok := b.described[k]; ok {
		return deepCopy(td).(map[string]any)
	}
	return nil
}

// rememberDescribed keeps the definition of a revision ARN: a revision's
// content never changes (its status may; a RunTask refusing it makes Start
// forget it). ARNs without a revision name the family's latest, which
// does change, and are not kept.
func (b *Backend) rememberDescribed(k describedKey, td map[string]any) {
	if !hasRevision(k.arn) {
		return
	}
	b.mu.Lock()
	if len(b.described) >= maxAttempts {
		clear(b.described)
	}
	b.described[k] = deepCopy(td).(map[string]any)
	b.mu.Unlock()
}

func (b *Backend) forgetDescribed(k describedKey) {
	b.mu.Lock()
	delete(b.described, k)
	b.mu.Unlock()
}

// hasRevision reports whether a task definition reference ends in
// ":<revision>".
func hasRevision(ref string) bool {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || i == len(ref)-1 || strings.Contains(ref[i:], "/") {
		return false
	}
	for _, c := range ref[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cachedSubnets is the networkLoader of Start: the VPC's subnets as the
// Backend last looked them up, within Config.SubnetTTL, else EC2's answer
// (which it remembers).
type cachedSubnets struct {
	b                *Backend
	region, identity string
	// ec2 returns the EC2 client for a lookup (built only when one is made).
	ec2 func() ec2API
	// served lists the VPCs answered from memory.
	served []subnetKey
}

func (c *cachedSubnets) subnets(ctx context.Context, vpcID string) ([]string, error) {
	k := subnetKey{region: c.region, identity: c.identity, vpcID: vpcID}
	b := c.b
	if b.cfg.SubnetTTL > 0 {
		b.mu.Lock()
		e, ok := b.subnets[k]
		b.mu.Unlock()
		if ok && b.now().Sub(e.at) < b.cfg.SubnetTTL {
			c.served = append(c.served, k)
			return slices.Clone(e.ids), nil
		}
	}
	ids, err := shared(ctx, &b.lookups, fmt.Sprintf("subnets/%v", k), func(ctx context.Context) ([]string, error) {
		return (&vpcSubnets{api: c.ec2()}).subnets(ctx, vpcID)
	})
	if err != nil {
		return nil, err
	}
	if b.cfg.SubnetTTL > 0 {
		b.mu.Lock()
		b.subnets[k] = subnetEntry{ids: slices.Clone(ids), at: b.now()}
		b.mu.Unlock()
	}
	return ids, nil
}

// forget drops the VPCs this loader answered from memory, so that the next
// lookup asks EC2; it reports whether there were any.
func (c *cachedSubnets) forget() bool {
	if len(c.served) == 0 {
		return false
	}
	c.b.mu.Lock()
	for _, k := range c.served {
		delete(c.b.subnets, k)
	}
	c.b.mu.Unlock()
	c.served = nil
	return true
}

// beginAttempt registers a Start of the attempt. When this Backend already
// started it, pid is its id. When another Start of it is under way in this
// process, wait is closed when that one ends. Otherwise the caller runs
// the start and must call end with its outcome; lookup says whether an
// earlier RunTask of the attempt went unanswered.
func (b *Backend) beginAttempt(k attemptKey) (pid string, wait <-chan struct{}, lookup bool, end func(pid string, sent bool)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	m := b.attempts[k]
	if m != nil && m.busy == nil && now.Sub(m.at) >= attemptTTL {
		delete(b.attempts, k)
		m = nil
	}
	switch {
	case m != nil && m.pid != "":
		return m.pid, nil, false, nil
	case m != nil && m.busy != nil:
		return "", m.busy, false, nil
	case m == nil:
		b.pruneAttempts(now)
		m = &attemptMemory{}
		b.attempts[k] = m
	}
	busy := make(chan struct{})
	m.busy, m.at = busy, now
	return "", nil, m.unanswered, func(pid string, sent bool) {
		b.mu.Lock()
		defer b.mu.Unlock()
		m.busy = nil
		m.at = b.now()
		switch {
		case pid != "":
			m.pid, m.unanswered = pid, false
		case sent:
			m.unanswered = true
		}
		if m.pid == "" && !m.unanswered {
			delete(b.attempts, k) // nothing worth remembering
		}
		close(busy)
	}
}

// pruneAttempts makes room for one more attempt: expired entries go, and
// when that is not enough, idle ones (which only cost a repeated Start a
// call). Entries of Starts under way stay. b.mu is held.
func (b *Backend) pruneAttempts(now time.Time) {
	if len(b.attempts) < maxAttempts {
		return
	}
	for k, m := range b.attempts {
		if m.busy == nil && now.Sub(m.at) >= attemptTTL {
			delete(b.attempts, k)
		}
	}
	for k, m := range b.attempts {
		if len(b.attempts) < maxAttempts {
			return
		}
		if m.busy == nil {
			delete(b.attempts, k)
		}
	}
}

// staleSubnets reports whether ECS refused a RunTask for its subnets (a
// subnet deleted, or moved out of the VPC), which a fresh lookup may cure.
func staleSubnets(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	code := api.ErrorCode()
	return strings.HasPrefix(code, "InvalidSubnet") ||
		((code == "InvalidParameterException" || code == "ClientException") && strings.Contains(strings.ToLower(api.ErrorMessage()), "subnet"))
}

// staleTaskDefinition reports whether ECS refused a RunTask because its
// task definition is gone (deregistered: "TaskDefinition is inactive";
// deleted: "Unable to describe task definition"), which looking the
// revision up again may cure.
func staleTaskDefinition(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	if code := api.ErrorCode(); code != "ClientException" && code != "InvalidParameterException" {
		return false
	}
	msg := strings.ReplaceAll(strings.ToLower(api.ErrorMessage()), " ", "")
	if !strings.Contains(msg, "taskdefinition") {
		return false
	}
	for _, gone := range []string{"inactive", "unabletodescribe", "notfound", "doesnotexist", "deleted"} {
		if strings.Contains(msg, gone) {
			return true
		}
	}
	return false
}

// shared runs lookup once for all concurrent callers with the same key
// (see Backend.lookups); a caller whose ctx ends stops waiting. The lookup
// runs with the first caller's context, detached from its cancellation so
// that one caller giving up does not fail the others.
func shared[T any](ctx context.Context, g *singleflight.Group, key string, lookup func(context.Context) (T, error)) (T, error) {
	ch := g.DoChan(key, func() (any, error) { return lookup(context.WithoutCancel(ctx)) })
	select {
	case r := <-ch:
		v, _ := r.Val.(T)
		return v, r.Err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}
