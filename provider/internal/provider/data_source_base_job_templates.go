package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var _ datasource.DataSource = (*BaseJobTemplatesDataSource)(nil)

// BaseJobTemplatesDataSource gives the default base job templates of
// pushpool's backends (data.prefect_pushpool_base_job_templates). They are
// compiled into the provider, so reading them needs no server.
type BaseJobTemplatesDataSource struct{}

// BaseJobTemplatesDataSourceModel holds one JSON template per backend.
type BaseJobTemplatesDataSourceModel struct {
	Process                types.String `tfsdk:"process"`
	ECS                    types.String `tfsdk:"ecs"`
	CloudRunV2             types.String `tfsdk:"cloud_run_v2"`
	AzureContainerInstance types.String `tfsdk:"azure_container_instance"`
}

// NewBaseJobTemplatesDataSource returns the prefect_pushpool_base_job_templates data source.
func NewBaseJobTemplatesDataSource() datasource.DataSource { return &BaseJobTemplatesDataSource{} }

// Metadata names the data source.
func (d *BaseJobTemplatesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pushpool_base_job_templates"
}

// Schema describes the data source.
func (d *BaseJobTemplatesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	tmpl := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc + " A JSON object; keys sorted."}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The default base job templates of pushpool's backends, the same as Prefect's workers " +
			"give for each pool type. Use one as a pool's `base_job_template`, or change a few variables' defaults " +
			"with `jsondecode`, `merge` and `jsonencode` first.",
		Attributes: map[string]schema.Attribute{
			"process":                  tmpl("Template of `process` pools (local subprocesses)."),
			"ecs":                      tmpl("Template of `ecs` and `ecs:push` pools (AWS ECS tasks)."),
			"cloud_run_v2":             tmpl("Template of `cloud-run-v2` pools (Google Cloud Run jobs)."),
			"azure_container_instance": tmpl("Template of `azure-container-instance` pools (Azure Container Instances)."),
		},
	}
}

// Read encodes the compiled-in templates.
func (d *BaseJobTemplatesDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	encode := func(f pooltype.Family) types.String {
		doc, err := jsonattr.Encode(f.DefaultBaseJobTemplate())
		if err != nil {
			resp.Diagnostics.AddError("Unable to encode the "+string(f)+" base job template", err.Error()+" This is a bug in the provider.")
		}
		return types.StringValue(doc)
	}
	m := BaseJobTemplatesDataSourceModel{
		Process:                encode(pooltype.Process),
		ECS:                    encode(pooltype.ECS),
		CloudRunV2:             encode(pooltype.CloudRun),
		AzureContainerInstance: encode(pooltype.ACI),
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
