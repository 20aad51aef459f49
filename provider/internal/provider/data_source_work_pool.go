package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var _ datasource.DataSourceWithConfigure = (*WorkPoolDataSource)(nil)

// WorkPoolDataSource reads one work pool by name (data.prefect_work_pool).
type WorkPoolDataSource struct {
	client *prefect.Client
}

// WorkPoolDataSourceModel is the prefect_work_pool data source.
type WorkPoolDataSourceModel struct {
	cloudScope
	WorkPoolDataModel
}

// WorkPoolDataModel is one work pool as the data sources report it.
type WorkPoolDataModel struct {
	ID               types.String `tfsdk:"id"`
	Created          types.String `tfsdk:"created"`
	Updated          types.String `tfsdk:"updated"`
	Name             types.String `tfsdk:"name"`
	Type             types.String `tfsdk:"type"`
	Description      types.String `tfsdk:"description"`
	Paused           types.Bool   `tfsdk:"paused"`
	ConcurrencyLimit types.Int64  `tfsdk:"concurrency_limit"`
	DefaultQueueID   types.String `tfsdk:"default_queue_id"`
	BaseJobTemplate  types.String `tfsdk:"base_job_template"`
}

// NewWorkPoolDataSource returns the prefect_work_pool data source.
func NewWorkPoolDataSource() datasource.DataSource { return &WorkPoolDataSource{} }

// Metadata names the data source.
func (d *WorkPoolDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_work_pool"
}

// Schema describes the data source.
func (d *WorkPoolDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := workPoolDataAttributes()
	attrs["name"] = schema.StringAttribute{Required: true, MarkdownDescription: "Name of the work pool."}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a work pool by name.",
		Attributes:          withDataCloudScope(attrs),
	}
}

// Configure receives the provider's client.
func (d *WorkPoolDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the pool.
func (d *WorkPoolDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg WorkPoolDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	pool, err := d.client.ReadWorkPool(ctx, cfg.Name.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", workPoolName(cfg.Name.ValueString()), err)
		return
	}
	m := WorkPoolDataSourceModel{cloudScope: cfg.cloudScope, WorkPoolDataModel: workPoolData(pool, &resp.Diagnostics)}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// workPoolData converts a pool for the data sources.
func workPoolData(pool prefect.WorkPool, diags *diag.Diagnostics) WorkPoolDataModel {
	var r WorkPoolResourceModel
	r.fromAPI(pool, diags)
	return WorkPoolDataModel{
		ID: r.ID, Created: r.Created, Updated: r.Updated, Name: r.Name, Type: r.Type, Description: r.Description,
		Paused: r.Paused, ConcurrencyLimit: r.ConcurrencyLimit, DefaultQueueID: r.DefaultQueueID, BaseJobTemplate: r.BaseJobTemplate,
	}
}

// workPoolDataAttributes are the computed attributes of a work pool.
func workPoolDataAttributes() map[string]schema.Attribute {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	return map[string]schema.Attribute{
		"id":                computed("Work pool ID (UUID)."),
		"created":           computed("When the pool was created (RFC 3339)."),
		"updated":           computed("When the pool was last changed (RFC 3339)."),
		"name":              computed("Name of the work pool."),
		"type":              computed("Type of the work pool."),
		"description":       computed("Description of the work pool."),
		"paused":            schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the pool is paused."},
		"concurrency_limit": schema.Int64Attribute{Computed: true, MarkdownDescription: "Concurrency limit of the pool; null means none."},
		"default_queue_id":  computed("ID (UUID) of the pool's default queue."),
		"base_job_template": computed("The base job template, a JSON object (keys sorted)."),
	}
}
