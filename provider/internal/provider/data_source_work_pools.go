package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var _ datasource.DataSourceWithConfigure = (*WorkPoolsDataSource)(nil)

// WorkPoolsDataSource lists work pools (data.prefect_work_pools).
type WorkPoolsDataSource struct {
	client *prefect.Client
}

// WorkPoolsDataSourceModel is the data source's configuration and result.
type WorkPoolsDataSourceModel struct {
	cloudScope
	FilterAny types.List          `tfsdk:"filter_any"`
	WorkPools []WorkPoolDataModel `tfsdk:"work_pools"`
}

// NewWorkPoolsDataSource returns the prefect_work_pools data source.
func NewWorkPoolsDataSource() datasource.DataSource { return &WorkPoolsDataSource{} }

// Metadata names the data source.
func (d *WorkPoolsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_work_pools"
}

// Schema describes the data source.
func (d *WorkPoolsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the server's work pools, sorted by name.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"filter_any": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Only the pools with one of these IDs (UUIDs); unset lists every pool.",
			},
			"work_pools": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The work pools.",
				NestedObject:        schema.NestedAttributeObject{Attributes: workPoolDataAttributes()},
			},
		}),
	}
}

// Configure receives the provider's client.
func (d *WorkPoolsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read lists the pools.
func (d *WorkPoolsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg WorkPoolsDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	ids := listStrings(ctx, cfg.FilterAny, &resp.Diagnostics)
	pools, err := d.client.ListWorkPools(ctx)
	if err != nil {
		addAPIError(&resp.Diagnostics, "list", "work pools", err)
		return
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	cfg.WorkPools = []WorkPoolDataModel{}
	for _, p := range pools {
		if len(ids) == 0 || want[p.ID] {
			cfg.WorkPools = append(cfg.WorkPools, workPoolData(p, &resp.Diagnostics))
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &cfg)...)
}
