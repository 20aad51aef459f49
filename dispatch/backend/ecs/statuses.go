package ecs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pushpool/pushpool/dispatch"
)

// describeBatch is the most tasks one DescribeTasks call describes.
const describeBatch = 100

var _ dispatch.StatusReader = (*Backend)(nil)

// Statuses reports the tasks of many infrastructure ids as Status reports
// each, in as few calls as ECS allows: the ids are grouped by region and
// cluster, and one DescribeTasks describes up to 100 tasks of a cluster, so
// 1,000 tasks of one cluster cost 10 calls where Status costs 1,000. Ids
// that are not ECS task ids are left out (Status explains them). The first
// call that fails ends the reads: what was read is returned with the error,
// which wraps dispatch.ErrRetryable when AWS throttled the call after the
// client's own retries.
func (b *Backend) Statuses(ctx context.Context, infrastructureIDs []string) (map[string]dispatch.Status, error) {
	out := make(map[string]dispatch.Status, len(infrastructureIDs))
	for _, g := range groupByCluster(infrastructureIDs) {
		for chunk := range slices.Chunk(g.arns, describeBatch) {
			if err := b.describeChunk(ctx, g, chunk, out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// clusterTasks are the tasks of one cluster in one region that a Statuses
// call asks about.
type clusterTasks struct {
	region, cluster string
	arns            []string            // distinct task ARNs, in the order asked
	ids             map[string][]string // task ARN -> the infrastructure ids naming it
}

// groupByCluster groups the parsable ids by region and cluster, ordered by
// both.
func groupByCluster(ids []string) []*clusterTasks {
	groups := map[[2]string]*clusterTasks{}
	for _, raw := range ids {
		id, err := ParseID(raw)
		if err != nil {
			continue
		}
		key := [2]string{id.Region, id.Cluster}
		g, ok := groups[key]
		if !ok {
			g = &clusterTasks{region: id.Region, cluster: id.Cluster, ids: map[string][]string{}}
			groups[key] = g
		}
		if _, seen := g.ids[id.TaskARN]; !seen {
			g.arns = append(g.arns, id.TaskARN)
		}
		g.ids[id.TaskARN] = append(g.ids[id.TaskARN], raw)
	}
	out := make([]*clusterTasks, 0, len(groups))
	for _, g := range groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *clusterTasks) int {
		return cmp.Or(cmp.Compare(a.region, b.region), cmp.Compare(a.cluster, b.cluster))
	})
	return out
}

// describeChunk describes up to describeBatch tasks of g and records their
// statuses in out; tasks ECS does not know, or whose cluster is gone, are
// StateNotFound.
func (b *Backend) describeChunk(ctx context.Context, g *clusterTasks, arns []string, out map[string]dispatch.Status) error {
	found, err := b.describeTasks(ctx, g.region, g.cluster, arns)
	if err != nil {
		return fmt.Errorf("describe %d ECS tasks in cluster %s: %w", len(arns), g.cluster, err)
	}
	for _, arn := range arns {
		st := dispatch.Status{State: dispatch.StateNotFound, Reason: fmt.Sprintf("ECS no longer knows task %s in cluster %s", arn, g.cluster)}
		if t, ok := found[taskKey(arn)]; ok {
			st = taskStatus(t)
		}
		for _, id := range g.ids[arn] {
			out[id] = st
		}
	}
	return nil
}

// taskKey is a task ARN's task id, the part after its last slash, which the
// old (task/<id>) and new (task/<cluster>/<id>) ARN formats share.
func taskKey(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }
