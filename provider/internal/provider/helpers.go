package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// resourceData is what the provider's Configure hands to resources: the
// client, and what this plan does to work pools, which the deployment
// resource checks job variables against.
type resourceData struct {
	client *prefect.Client
	pools  *plannedPools
	cache  *readCache
	reads  *refreshReads
}

// clientFrom returns the client the provider's Configure passed on, or nil
// when the provider is not configured yet (during validation, or when its
// configuration depends on values known only after apply).
func clientFrom(data any, diags *diag.Diagnostics) *prefect.Client {
	switch d := data.(type) {
	case nil:
		return nil
	case *prefect.Client:
		return d
	case *resourceData:
		return d.client
	}
	diags.AddError("Unexpected provider data",
		fmt.Sprintf("Expected *prefect.Client, got %T. This is a bug in the provider; please report it.", data))
	return nil
}

// plannedPoolsFrom returns the planned work pools of the provider's
// resource data; nil (which records nothing) when it has none.
func plannedPoolsFrom(data any) *plannedPools {
	if d, ok := data.(*resourceData); ok {
		return d.pools
	}
	return nil
}

// requireClient adds an error naming the fix when the provider could not be
// configured, and reports whether c is usable.
func requireClient(c *prefect.Client, diags *diag.Diagnostics) bool {
	if c == nil {
		diags.AddError("Prefect provider not configured",
			"The provider has no Prefect API endpoint yet. Set endpoint in the provider block or PREFECT_API_URL; "+
				"if the endpoint comes from another resource, apply that resource first.")
		return false
	}
	return true
}

// addAPIError adds a diagnostic "Unable to <verb> <what>" with the API error
// and a hint for the statuses a user can act on.
func addAPIError(diags *diag.Diagnostics, verb, what string, err error) {
	detail := err.Error()
	var apiErr *prefect.APIError
	switch {
	case prefect.IsConflict(err):
		detail += "\n\nAn object with this name already exists. Import it with `terraform import` or choose another name."
	case prefect.IsInvalid(err):
		detail += "\n\nThe server rejected the values; fix the attributes named above."
	case errors.As(err, &apiErr) && apiErr.StatusCode == 401:
		detail += "\n\nCheck the provider's api_key or basic_auth_key."
	}
	diags.AddError(fmt.Sprintf("Unable to %s %s", verb, what), detail)
}

// stringPtr returns nil for a null or unknown string.
func stringPtr(v types.String) *string {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	s := v.ValueString()
	return &s
}

// intPtr returns nil for a null or unknown number.
func intPtr(v types.Int64) *int {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	i := int(v.ValueInt64())
	return &i
}

// int64Value is the inverse of intPtr.
func int64Value(p *int) types.Int64 {
	if p == nil {
		return types.Int64Null()
	}
	return types.Int64Value(int64(*p))
}

// optionalString maps the server's nil or "" to null, except that a prior ""
// stays "" so a configured empty string does not flap.
func optionalString(server *string, prior types.String) types.String {
	if server == nil || *server == "" {
		if !prior.IsNull() && !prior.IsUnknown() && prior.ValueString() == "" {
			return prior
		}
		return types.StringNull()
	}
	return types.StringValue(*server)
}

// timestamp formats a server time as RFC 3339; the zero time is null.
func timestamp(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339Nano))
}

// timePtr is timestamp for an optional time.
func timePtr(t *time.Time) types.String {
	if t == nil {
		return types.StringNull()
	}
	return timestamp(*t)
}

// stringList converts tags from the API to a list value; nil is an empty list.
func stringList(ctx context.Context, items []string, diags *diag.Diagnostics) types.List {
	if items == nil {
		items = []string{}
	}
	v, d := types.ListValueFrom(ctx, types.StringType, items)
	diags.Append(d...)
	return v
}

// listStrings converts a list attribute to strings; null or unknown is nil.
func listStrings(ctx context.Context, v types.List, diags *diag.Diagnostics) []string {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	var out []string
	diags.Append(v.ElementsAs(ctx, &out, false)...)
	return out
}

// emptyStringSet is the default of tags attributes.
func emptyStringSet() types.Set {
	return types.SetValueMust(types.StringType, []attr.Value{})
}
