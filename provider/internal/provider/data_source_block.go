package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ datasource.DataSourceWithConfigure        = (*BlockDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*BlockDataSource)(nil)
)

// BlockDataSource reads one block (data.prefect_block).
type BlockDataSource struct {
	client *prefect.Client
}

// BlockDataSourceModel is a block as the data source reports it.
type BlockDataSourceModel struct {
	cloudScope
	ID       types.String `tfsdk:"id"`
	Created  types.String `tfsdk:"created"`
	Updated  types.String `tfsdk:"updated"`
	Name     types.String `tfsdk:"name"`
	TypeSlug types.String `tfsdk:"type_slug"`
	Data     types.String `tfsdk:"data"`
}

// NewBlockDataSource returns the prefect_block data source.
func NewBlockDataSource() datasource.DataSource { return &BlockDataSource{} }

// Metadata names the data source.
func (d *BlockDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_block"
}

// Schema describes the data source.
func (d *BlockDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a block by `id`, or by `type_slug` and `name`. When `id` is set, `type_slug` and `name` are not used to look it up.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"id":        schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "Block ID (UUID)."},
			"name":      schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "Name of the block; needs `type_slug`."},
			"type_slug": schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "Slug of the block's type, e.g. `secret`."},
			"created":   computed("When the block was created (RFC 3339)."),
			"updated":   computed("When the block was last changed (RFC 3339)."),
			"data": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				MarkdownDescription: "The block's fields as a JSON object, secrets revealed; read them with `jsondecode(...)`. " +
					"A field that references another block holds that block's data, as flows see it when they load the block.",
			},
		}),
	}
}

// ConfigValidators requires an id, or a name with its type slug.
func (d *BlockDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.AtLeastOneOf(path.MatchRoot("id"), path.MatchRoot("name")),
		datasourcevalidator.RequiredTogether(path.MatchRoot("name"), path.MatchRoot("type_slug")),
	}
}

// Configure receives the provider's client.
func (d *BlockDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the block with its secrets.
func (d *BlockDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m BlockDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	var doc prefect.BlockDocument
	var err error
	what := blockName(m.TypeSlug.ValueString(), m.Name.ValueString())
	if !m.ID.IsNull() {
		what = "block " + m.ID.ValueString()
		doc, err = d.client.ReadBlockDocument(ctx, m.ID.ValueString())
	} else {
		doc, err = d.client.ReadBlockDocumentByName(ctx, m.TypeSlug.ValueString(), m.Name.ValueString())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", what, err)
		return
	}
	if doc.Data == nil {
		doc.Data = map[string]any{}
	}
	data, err := jsonattr.Encode(doc.Data)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read "+what, err.Error())
		return
	}
	m.ID = types.StringValue(doc.ID)
	m.Created = timePtr(doc.Created)
	m.Updated = timePtr(doc.Updated)
	if doc.Name != nil {
		m.Name = types.StringValue(*doc.Name)
	}
	if doc.BlockType != nil {
		m.TypeSlug = types.StringValue(doc.BlockType.Slug)
	}
	m.Data = types.StringValue(data)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
