package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var _ datasource.DataSourceWithConfigure = (*WorkQueueDataSource)(nil)

// WorkQueueDataSource reads one queue of a pool (data.prefect_work_queue).
type WorkQueueDataSource struct {
	client *prefect.Client
}

// WorkQueueDataSourceModel is the prefect_work_queue data source.
type WorkQueueDataSourceModel struct {
	cloudScope
	WorkQueueDataModel
}

// WorkQueueDataModel is one work queue as the data sources report it.
type WorkQueueDataModel struct {
	ID               types.String `tfsdk:"id"`
	Created          types.String `tfsdk:"created"`
	Updated          types.String `tfsdk:"updated"`
	Name             types.String `tfsdk:"name"`
	WorkPoolName     types.String `tfsdk:"work_pool_name"`
	Description      types.String `tfsdk:"description"`
	IsPaused         types.Bool   `tfsdk:"is_paused"`
	ConcurrencyLimit types.Int64  `tfsdk:"concurrency_limit"`
	Priority         types.Int64  `tfsdk:"priority"`
}

// workQueueData converts a queue for the data sources.
func workQueueData(q prefect.WorkQueue) WorkQueueDataModel {
	var r WorkQueueResourceModel
	r.fromAPI(q)
	return WorkQueueDataModel{
		ID: r.ID, Created: r.Created, Updated: r.Updated, Name: r.Name, WorkPoolName: r.WorkPoolName,
		Description: r.Description, IsPaused: r.IsPaused, ConcurrencyLimit: r.ConcurrencyLimit, Priority: r.Priority,
	}
}

// NewWorkQueueDataSource returns the prefect_work_queue data source.
func NewWorkQueueDataSource() datasource.DataSource { return &WorkQueueDataSource{} }

// Metadata names the data source.
func (d *WorkQueueDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_work_queue"
}

// Schema describes the data source.
func (d *WorkQueueDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a work queue by pool and queue name.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"name":              schema.StringAttribute{Required: true, MarkdownDescription: "Name of the queue."},
			"work_pool_name":    schema.StringAttribute{Required: true, MarkdownDescription: "Name of the queue's work pool."},
			"id":                computed("Work queue ID (UUID)."),
			"created":           computed("When the queue was created (RFC 3339)."),
			"updated":           computed("When the queue was last changed (RFC 3339)."),
			"description":       computed("Description of the queue."),
			"is_paused":         schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the queue is paused."},
			"concurrency_limit": schema.Int64Attribute{Computed: true, MarkdownDescription: "Concurrency limit of the queue; null means none."},
			"priority":          schema.Int64Attribute{Computed: true, MarkdownDescription: "Priority of the queue; 1 is served first."},
		}),
	}
}

// Configure receives the provider's client.
func (d *WorkQueueDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the queue.
func (d *WorkQueueDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m WorkQueueDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	pool, name := m.WorkPoolName.ValueString(), m.Name.ValueString()
	q, err := d.client.ReadWorkQueue(ctx, pool, name)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", workQueueName(pool, name), err)
		return
	}
	m.WorkQueueDataModel = workQueueData(q)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
