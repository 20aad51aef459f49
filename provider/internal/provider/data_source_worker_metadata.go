package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var _ datasource.DataSourceWithConfigure = (*WorkerMetadataDataSource)(nil)

// workerMetadataTypes maps the attributes of base_job_configs to the worker
// types of Prefect's worker catalogue, as the prefecthq/prefect provider
// names them.
var workerMetadataTypes = []struct{ attr, workerType, display string }{
	{"kubernetes", "kubernetes", "Kubernetes"},
	{"ecs", "ecs", "ECS"},
	{"azure_container_instances", "azure-container-instance", "Azure Container Instances"},
	{"docker", "docker", "Docker"},
	{"cloud_run", "cloud-run", "Cloud Run"},
	{"cloud_run_v2", "cloud-run-v2", "Cloud Run V2"},
	{"vertex_ai", "vertex-ai", "Vertex AI"},
	{"prefect_agent", "prefect-agent", "Prefect Agent"},
	{"process", "process", "Process"},
	{"azure_container_instances_push", "azure-container-instance:push", "Azure Container Instances Push"},
	{"cloud_run_push", "cloud-run:push", "Cloud Run Push"},
	{"cloud_run_v2_push", "cloud-run-v2:push", "Cloud Run V2 Push"},
	{"ecs_push", "ecs:push", "ECS Push"},
	{"modal_push", "modal:push", "Modal Push"},
}

// WorkerMetadataDataSource reads the default base job templates of Prefect's
// worker types from the server (data.prefect_worker_metadata).
type WorkerMetadataDataSource struct {
	client *prefect.Client
}

// WorkerMetadataDataSourceModel is the data source's state.
type WorkerMetadataDataSourceModel struct {
	cloudScope
	BaseJobConfigs types.Object `tfsdk:"base_job_configs"`
}

// NewWorkerMetadataDataSource returns the prefect_worker_metadata data source.
func NewWorkerMetadataDataSource() datasource.DataSource { return &WorkerMetadataDataSource{} }

// Metadata names the data source.
func (d *WorkerMetadataDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_worker_metadata"
}

// Schema describes the data source.
func (d *WorkerMetadataDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	configs := make(map[string]schema.Attribute, len(workerMetadataTypes))
	for _, t := range workerMetadataTypes {
		configs[t.attr] = schema.StringAttribute{
			Computed: true,
			MarkdownDescription: "Default base job template (JSON) of " + t.display + " workers (`" + t.workerType +
				"`); null when the server's catalogue has no such worker type.",
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads the default base job templates of Prefect's worker types from the server's worker " +
			"catalogue (`/collections/views/aggregate-worker-metadata`), e.g. to create a `prefect_work_pool` with a " +
			"worker type's default template plus changes. A self-hosted Prefect 3 server's catalogue has the worker types " +
			"(`process`, `ecs`, `kubernetes`, …) but not Prefect Cloud's push types; for the push pool types pushpool " +
			"dispatches, use `prefect_pushpool_base_job_templates`.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"base_job_configs": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The default base job template (JSON) of each worker type.",
				Attributes:          configs,
			},
		}),
	}
}

// Configure receives the provider's client.
func (d *WorkerMetadataDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the catalogue.
func (d *WorkerMetadataDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m WorkerMetadataDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	catalogue, err := d.client.ReadWorkerMetadata(ctx)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", "the worker catalogue", err)
		return
	}
	byType := map[string]map[string]any{}
	for _, collection := range catalogue {
		for workerType, meta := range collection {
			if meta.DefaultBaseJobConfiguration != nil {
				byType[workerType] = meta.DefaultBaseJobConfiguration
			}
		}
	}
	attrTypes := make(map[string]attr.Type, len(workerMetadataTypes))
	values := make(map[string]attr.Value, len(workerMetadataTypes))
	for _, t := range workerMetadataTypes {
		attrTypes[t.attr] = types.StringType
		values[t.attr] = types.StringNull()
		if tmpl, ok := byType[t.workerType]; ok {
			doc, err := jsonattr.Encode(tmpl)
			if err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("base_job_configs").AtName(t.attr),
					"Unable to read the worker catalogue", err.Error())
				return
			}
			values[t.attr] = types.StringValue(doc)
		}
	}
	obj, diags := types.ObjectValue(attrTypes, values)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	m.BaseJobConfigs = obj
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
