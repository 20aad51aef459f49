package prefectext

import (
	"context"
	"net/http"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// maxFilter is the most objects one filter request returns
// (PREFECT_SERVER_API_DEFAULT_LIMIT).
const maxFilter = 200

// filter reads the objects whose field is any of values, in pages of
// maxFilter values; objects that do not exist are absent from the answer.
func filter[T any](ctx context.Context, c *Client, path, object, field string, values []string) ([]T, error) {
	var out []T
	for start := 0; start < len(values); start += maxFilter {
		page := values[start:min(start+maxFilter, len(values))]
		body := map[string]any{object: map[string]any{field: map[string]any{"any_": page}}, "limit": len(page)}
		var got []T
		if _, err := c.do(ctx, http.MethodPost, path, body, &got); err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// FilterFlowsByID reads the flows with the given ids.
func (c *Client) FilterFlowsByID(ctx context.Context, ids []string) ([]prefect.Flow, error) {
	return filter[prefect.Flow](ctx, c, "/flows/filter", "flows", "id", ids)
}

// FilterWorkPoolsByName reads the work pools with the given names.
func (c *Client) FilterWorkPoolsByName(ctx context.Context, names []string) ([]prefect.WorkPool, error) {
	return filter[prefect.WorkPool](ctx, c, "/work_pools/filter", "work_pools", "name", names)
}

// FilterVariablesByID reads the variables with the given ids.
func (c *Client) FilterVariablesByID(ctx context.Context, ids []string) ([]prefect.Variable, error) {
	return filter[prefect.Variable](ctx, c, "/variables/filter", "variables", "id", ids)
}
