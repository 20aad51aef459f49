package provider

import (
	"cmp"
	"context"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var _ datasource.DataSourceWithConfigure = (*WorkQueuesDataSource)(nil)

// WorkQueuesDataSource lists the queues of a work pool (data.prefect_work_queues).
type WorkQueuesDataSource struct {
	client *prefect.Client
}

// WorkQueuesDataSourceModel is the data source's configuration and result.
type WorkQueuesDataSourceModel struct {
	cloudScope
	WorkPoolName types.String         `tfsdk:"work_pool_name"`
	FilterAny    types.List           `tfsdk:"filter_any"`
	WorkQueues   []WorkQueueDataModel `tfsdk:"work_queues"`
}

// NewWorkQueuesDataSource returns the prefect_work_queues data source.
func NewWorkQueuesDataSource() datasource.DataSource { return &WorkQueuesDataSource{} }

// Metadata names the data source.
func (d *WorkQueuesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_work_queues"
}

// Schema describes the data source.
func (d *WorkQueuesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the queues of a work pool in the order the pool serves them: by priority, then name.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"work_pool_name": schema.StringAttribute{Required: true, MarkdownDescription: "Name of the work pool."},
			"filter_any": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Only the queues with one of these IDs (UUIDs); unset lists every queue of the pool.",
			},
			"work_queues": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The work queues.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":                computed("Work queue ID (UUID)."),
					"created":           computed("When the queue was created (RFC 3339)."),
					"updated":           computed("When the queue was last changed (RFC 3339)."),
					"name":              computed("Name of the queue."),
					"work_pool_name":    computed("Name of the queue's work pool."),
					"description":       computed("Description of the queue."),
					"is_paused":         schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the queue is paused."},
					"concurrency_limit": schema.Int64Attribute{Computed: true, MarkdownDescription: "Concurrency limit of the queue; null means none."},
					"priority":          schema.Int64Attribute{Computed: true, MarkdownDescription: "Priority of the queue; 1 is served first."},
				}},
			},
		}),
	}
}

// Configure receives the provider's client.
func (d *WorkQueuesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read lists the pool's queues.
func (d *WorkQueuesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg WorkQueuesDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	pool := cfg.WorkPoolName.ValueString()
	ids := listStrings(ctx, cfg.FilterAny, &resp.Diagnostics)
	queues, err := d.client.ListWorkQueues(ctx, pool)
	if err != nil {
		addAPIError(&resp.Diagnostics, "list", "the work queues of "+workPoolName(pool), err)
		return
	}
	slices.SortFunc(queues, func(a, b prefect.WorkQueue) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Name, b.Name))
	})
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	cfg.WorkQueues = []WorkQueueDataModel{}
	for _, q := range queues {
		if len(ids) == 0 || want[q.ID] {
			cfg.WorkQueues = append(cfg.WorkQueues, workQueueData(q))
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &cfg)...)
}
