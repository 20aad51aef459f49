package cloudrun

import (
	"cmp"
	"context"
	"log/slog"
	"slices"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"

	"github.com/pushpool/pushpool/dispatch"
)

// listPageSize is how many executions one ListExecutions call asks for.
const listPageSize = 500

var _ dispatch.StatusReader = (*Backend)(nil)

// Statuses reports many executions as Status reports each, listing the
// executions of every job of a project and region at once (ListExecutions
// of jobs/-, newest first, 500 per call) instead of reading each: the
// listing of a location stops as soon as every execution asked about there
// was seen. Executions the listing does not show — the job has not started
// its execution yet, Cloud Run named it otherwise, it is gone — and ids
// that are not execution names are left out, so Status, which reads the job
// too, explains them. Where the caller may not list executions
// (run.executions.list), nothing is listed and Status reads each. A listing
// that Cloud Run throttles ends the reads with an error wrapping
// dispatch.ErrRetryable.
func (b *Backend) Statuses(ctx context.Context, infrastructureIDs []string) (map[string]dispatch.Status, error) {
	out := make(map[string]dispatch.Status, len(infrastructureIDs))
	for _, loc := range groupByLocation(infrastructureIDs) {
		if err := b.listLocation(ctx, loc, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// locationExecutions are the executions of one project and region that a
// Statuses call asks about.
type locationExecutions struct {
	project, region string
	wanted          map[string]bool // execution names
}

// groupByLocation groups the parsable ids by project and region, ordered by
// both.
func groupByLocation(ids []string) []*locationExecutions {
	groups := map[[2]string]*locationExecutions{}
	for _, raw := range ids {
		id, err := ParseExecutionID(raw)
		if err != nil {
			continue
		}
		key := [2]string{id.Project, id.Region}
		g, ok := groups[key]
		if !ok {
			g = &locationExecutions{project: id.Project, region: id.Region, wanted: map[string]bool{}}
			groups[key] = g
		}
		g.wanted[id.String()] = true
	}
	out := make([]*locationExecutions, 0, len(groups))
	for _, g := range groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *locationExecutions) int {
		return cmp.Or(cmp.Compare(a.project, b.project), cmp.Compare(a.region, b.region))
	})
	return out
}

// listLocation lists the executions of every job of loc's project and
// region until each wanted one was seen, recording their statuses in out.
func (b *Backend) listLocation(ctx context.Context, loc *locationExecutions, out map[string]dispatch.Status) error {
	cl, err := b.clientsForProject(ctx, loc.project)
	if err != nil {
		return err
	}
	parent := "projects/" + loc.project + "/locations/" + loc.region + "/jobs/-"
	it := cl.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: parent, PageSize: listPageSize})
	left := len(loc.wanted)
	for left > 0 {
		ex, err := it.Next()
		switch {
		case err == iterator.Done:
			return nil
		case err != nil && classify(err) == kindPermission:
			b.log.DebugContext(ctx, "may not list executions; reading each", slog.String("parent", parent), slog.String("error", err.Error()))
			return nil
		case err != nil:
			t := target{project: loc.project, region: loc.region, job: "(all)", identity: cl.identity}
			return explain(t, callListExecutions, err, 1)
		}
		if loc.wanted[ex.GetName()] {
			out[ex.GetName()] = statusOf(ex)
			left--
		}
	}
	return nil
}
