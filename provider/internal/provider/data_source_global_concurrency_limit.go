package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ datasource.DataSourceWithConfigure        = (*GlobalConcurrencyLimitDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*GlobalConcurrencyLimitDataSource)(nil)
)

// GlobalConcurrencyLimitDataSource reads a global concurrency limit by id or
// name (data.prefect_global_concurrency_limit).
type GlobalConcurrencyLimitDataSource struct {
	client *prefect.Client
}

// GlobalConcurrencyLimitDataSourceModel is a global concurrency limit as the
// data source reports it.
type GlobalConcurrencyLimitDataSourceModel = GlobalConcurrencyLimitResourceModel

// NewGlobalConcurrencyLimitDataSource returns the
// prefect_global_concurrency_limit data source.
func NewGlobalConcurrencyLimitDataSource() datasource.DataSource {
	return &GlobalConcurrencyLimitDataSource{}
}

// Metadata names the data source.
func (d *GlobalConcurrencyLimitDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_global_concurrency_limit"
}

// Schema describes the data source.
func (d *GlobalConcurrencyLimitDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a global concurrency limit by ID or name, e.g. to link deployments to a limit " +
			"managed elsewhere with `global_concurrency_limit_id`. When both are set, the limit with the ID must have the name.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"id": schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "Global concurrency limit ID (UUID).",
				Validators: []validator.String{uuidString()}},
			"name":    schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "Name of the global concurrency limit."},
			"created": schema.StringAttribute{Computed: true, MarkdownDescription: "When the limit was created (RFC 3339)."},
			"updated": schema.StringAttribute{Computed: true, MarkdownDescription: "When the limit was last changed (RFC 3339)."},
			"limit":   schema.Int64Attribute{Computed: true, MarkdownDescription: "Most slots that may be taken at once."},
			"active":  schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the limit is enforced."},
			"active_slots": schema.Int64Attribute{Computed: true,
				MarkdownDescription: "Slots taken now."},
			"slot_decay_per_second": schema.Float64Attribute{Computed: true,
				MarkdownDescription: "Slots freed per second, for a rate limit; 0 for a concurrency limit."},
		}),
	}
}

// ConfigValidators requires id or name.
func (d *GlobalConcurrencyLimitDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.AtLeastOneOf(path.MatchRoot("id"), path.MatchRoot("name")),
	}
}

// Configure receives the provider's client.
func (d *GlobalConcurrencyLimitDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the limit, by id when it is set.
func (d *GlobalConcurrencyLimitDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m GlobalConcurrencyLimitDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	key, name := m.ID.ValueString(), m.Name.ValueString()
	if key == "" {
		key = name
	}
	l, err := d.client.ReadGlobalConcurrencyLimit(ctx, key)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", globalLimitName(key), err)
		return
	}
	if name != "" && l.Name != name {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Unable to read "+globalLimitName(name),
			fmt.Sprintf("The global concurrency limit with id %s is named %q, not %q. Set only one of id and name.", l.ID, l.Name, name))
		return
	}
	m.fromAPI(l)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
