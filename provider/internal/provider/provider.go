// Package provider is pushpool's Terraform provider for Prefect: the
// provider configuration, its resources and its data sources, built on
// terraform-plugin-framework and the dispatcher's own Prefect client.
package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var _ provider.Provider = (*PrefectProvider)(nil)

// Environment variables read when the matching attribute is not set.
const (
	envBasicAuthKey = "PREFECT_BASIC_AUTH_KEY" // the prefecthq/prefect provider's name for PREFECT_API_AUTH_STRING
	envAccountID    = "PREFECT_CLOUD_ACCOUNT_ID"
)

// PrefectProvider is the provider. Its only state is the version it reports.
type PrefectProvider struct {
	version string
	// lookupEnv reads the environment; tests replace it.
	lookupEnv func(string) (string, bool)
}

// PrefectProviderModel is the provider block.
type PrefectProviderModel struct {
	Endpoint      types.String `tfsdk:"endpoint"`
	APIKey        types.String `tfsdk:"api_key"`
	BasicAuthKey  types.String `tfsdk:"basic_auth_key"`
	CustomHeaders types.String `tfsdk:"custom_headers"`
	CSRFEnabled   types.Bool   `tfsdk:"csrf_enabled"`
	Profile       types.String `tfsdk:"profile"`
	ProfileFile   types.String `tfsdk:"profile_file"`
	cloudScope
}

// New returns a constructor of the provider for providerserver.Serve.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &PrefectProvider{version: version, lookupEnv: os.LookupEnv}
	}
}

// Metadata names the provider.
func (p *PrefectProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "prefect"
	resp.Version = p.version
}

// Schema describes the provider block.
func (p *PrefectProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages a self-hosted Prefect 3 server's work pools, work queues, flows, deployments and their schedules, automations, variables, blocks and concurrency limits. " +
			"Resource and attribute names are those of the prefecthq/prefect provider, so its configurations for " +
			"self-hosted servers work unchanged. The provider shares its API client with the pushpool dispatcher: " +
			"one place for authentication, CSRF tokens, retries and typed errors.\n\n" +
			"**Moving from the prefecthq/prefect provider.** Point the configuration's `prefecthq/prefect` source at this " +
			"provider and keep the state: the first plan upgrades the state that provider (v3.4) wrote and shows no " +
			"changes (the next apply, even one with nothing to do, stores the upgraded state; `terraform show -json` " +
			"needs that). `account_id` and `workspace_id` are accepted on the provider, every resource and every data source " +
			"as long as they are unset (a self-hosted server has no accounts or workspaces), and import IDs may end in " +
			"the `,<workspace_id>` of that provider when it is empty.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The Prefect API URL, e.g. `http://127.0.0.1:4200/api`. Defaults to `PREFECT_API_URL`. " +
					"A URL without a path gets `/api` appended.",
			},
			"api_key": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "An API key sent as a Bearer token. Defaults to `PREFECT_API_KEY`.",
			},
			"basic_auth_key": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "`user:password` for a server started with `PREFECT_SERVER_API_AUTH_STRING`. " +
					"Defaults to `PREFECT_API_AUTH_STRING`, then `PREFECT_BASIC_AUTH_KEY`.",
			},
			"custom_headers": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "A JSON object of extra HTTP headers sent with every request, e.g. " +
					"`jsonencode({\"X-Team\" = \"data\"})`. Defaults to `PREFECT_CLIENT_CUSTOM_HEADERS`. " +
					"`User-Agent` and the CSRF headers are managed by the provider and ignored here.",
			},
			"csrf_enabled": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Accepted for compatibility with the prefecthq/prefect provider and ignored: " +
					"the client detects whether the server wants CSRF tokens.",
			},
			"profile": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "A Prefect profile (`prefect profile ls`) to take the endpoint and credentials from, " +
					"for the attributes that are neither set here nor in the environment: `PREFECT_API_URL`, `PREFECT_API_KEY`, " +
					"`PREFECT_API_AUTH_STRING` (or `PREFECT_BASIC_AUTH_KEY`) and `PREFECT_CLIENT_CUSTOM_HEADERS` of the profile. " +
					"Defaults to `PREFECT_PROFILE`, then to the file's `active` profile, as with the Prefect CLI. A profile named " +
					"here must exist; an active profile that does not exist is skipped with a warning.",
			},
			"profile_file": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The profiles file to read `profile` from. Defaults to where the Prefect CLI finds it: " +
					"`PREFECT_PROFILES_PATH`, then `profiles_path` in `./prefect.toml` or `[tool.prefect]` of `./pyproject.toml`, " +
					"then `$PREFECT_HOME/profiles.toml`, then `~/.prefect/profiles.toml`. A default file that does not exist " +
					"means no profile; a file named here or in `PREFECT_PROFILES_PATH` must exist.",
			},
			attrAccountID: schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: cloudScopeDescription(attrAccountID) + " `PREFECT_CLOUD_ACCOUNT_ID` is ignored.",
				Validators:          []validator.String{cloudScopeValidator{}},
			},
			attrWorkspaceID: schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: cloudScopeDescription(attrWorkspaceID),
				Validators:          []validator.String{cloudScopeValidator{}},
			},
		},
	}
}

// Configure builds the Prefect client and checks once that the server answers
// and accepts the credentials, so a wrong endpoint or key gives one diagnostic.
func (p *PrefectProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg PrefectProviderModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for _, a := range []struct {
		name  string
		value types.String
	}{{attrAccountID, cfg.AccountID}, {attrWorkspaceID, cfg.WorkspaceID}} {
		if a.value.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(a.name), "Unsupported "+a.name,
				cloudScopeProblem(path.Root(a.name), "a value known only after apply"))
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Endpoint.IsUnknown() || cfg.APIKey.IsUnknown() || cfg.BasicAuthKey.IsUnknown() || cfg.CustomHeaders.IsUnknown() ||
		cfg.Profile.IsUnknown() || cfg.ProfileFile.IsUnknown() {
		// Known only after apply: resources report that the provider is not configured.
		return
	}
	clientCfg, diags := p.clientConfig(cfg)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	// One change at a time (SQLite servers answer concurrent writes with 503).
	transport, err := clientCfg.NewTransport()
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid Prefect provider configuration", err.Error())
		return
	}
	clientCfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: newOneWriteAtATime(transport)}
	client, err := prefect.New(clientCfg)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid Prefect provider configuration", err.Error())
		return
	}
	if err := checkServer(ctx, client); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Unable to use the Prefect API at %s", client.URL()), err.Error())
		return
	}
	resp.ResourceData = &resourceData{client: client, pools: newPlannedPools(), cache: newReadCache(), reads: newRefreshReads(client)}
	resp.DataSourceData = client
}

// Resources lists the provider's resources.
func (p *PrefectProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewWorkPoolResource,
		NewWorkQueueResource,
		NewVariableResource,
		NewFlowResource,
		NewDeploymentResource,
		NewDeploymentScheduleResource,
		NewAutomationResource,
		NewBlockResource,
		NewBlockTypeResource,
		NewBlockSchemaResource,
		NewGlobalConcurrencyLimitResource,
		NewTaskRunConcurrencyLimitResource,
	}
}

// DataSources lists the provider's data sources.
func (p *PrefectProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewWorkPoolDataSource,
		NewWorkPoolsDataSource,
		NewWorkQueueDataSource,
		NewWorkQueuesDataSource,
		NewVariableDataSource,
		NewBaseJobTemplatesDataSource,
		NewDeploymentDataSource,
		NewAutomationDataSource,
		NewBlockDataSource,
		NewGlobalConcurrencyLimitDataSource,
		NewWorkerMetadataDataSource,
	}
}

// clientConfig merges the provider block, the environment and the Prefect
// profile: for each setting the attribute wins, then the environment
// variable, then the profile's setting of the same name.
func (p *PrefectProvider) clientConfig(cfg PrefectProviderModel) (prefect.Config, diag.Diagnostics) {
	var diags diag.Diagnostics
	env := func(names ...string) string {
		for _, n := range names {
			if v, ok := p.lookupEnv(n); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	profile, err := loadProfile(cfg.Profile.ValueString(), cfg.ProfileFile.ValueString(), p.lookupEnv)
	if err != nil {
		at := path.Root("profile")
		if !cfg.ProfileFile.IsNull() {
			at = path.Root("profile_file")
		}
		diags.AddAttributeError(at, "Unable to read the Prefect profile",
			err.Error()+"\n\nSet profile to one of the file's profiles, profile_file to an existing profiles.toml, "+
				"or leave both unset and configure the provider with its attributes or PREFECT_API_URL.")
		return prefect.Config{}, diags
	}
	if profile.warning != "" {
		diags.AddAttributeWarning(path.Root("profile"), "Prefect profile not found", profile.warning)
	}
	pick := func(attr types.String, names ...string) string {
		if !attr.IsNull() && attr.ValueString() != "" {
			return attr.ValueString()
		}
		if v := env(names...); v != "" {
			return v
		}
		return profile.get(names...)
	}
	out := prefect.Config{
		URL:        normalizeEndpoint(pick(cfg.Endpoint, prefect.EnvAPIURL)),
		APIKey:     pick(cfg.APIKey, prefect.EnvAPIKey),
		AuthString: pick(cfg.BasicAuthKey, prefect.EnvAuthString, envBasicAuthKey),
		UserAgent:  "terraform-provider-prefect/" + p.version + " (pushpool)",
		Logger:     slog.New(tflogHandler{}),
	}
	if v := env(envAccountID); v != "" {
		diags.AddWarning("PREFECT_CLOUD_ACCOUNT_ID ignored",
			"PREFECT_CLOUD_ACCOUNT_ID is set, but this provider manages a self-hosted Prefect server, which has no "+
				"Prefect Cloud accounts; it is ignored. Unset it to silence this warning.")
	}
	if out.URL == "" {
		detail := "Set endpoint in the provider block or the PREFECT_API_URL environment variable to the server's API, e.g. http://127.0.0.1:4200/api."
		if profile.name != "" {
			detail += fmt.Sprintf(" The Prefect profile %q of %s has no PREFECT_API_URL either.", profile.name, profile.path)
		}
		diags.AddAttributeError(path.Root("endpoint"), "Missing Prefect API endpoint", detail)
	}
	if raw := pick(cfg.CustomHeaders, prefect.EnvCustomHeaders); raw != "" {
		if err := json.Unmarshal([]byte(raw), &out.CustomHeaders); err != nil {
			diags.AddAttributeError(path.Root("custom_headers"), "Invalid custom_headers",
				"custom_headers (or PREFECT_CLIENT_CUSTOM_HEADERS) must be a JSON object of header names to string values, "+
					"e.g. jsonencode({\"X-Team\" = \"data\"}): "+err.Error())
		}
	}
	return out, diags
}

// normalizeEndpoint appends /api to a URL that has no path, as the server
// serves its API there.
func normalizeEndpoint(raw string) string {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Path != "" {
		return raw
	}
	return raw + "/api"
}

// checkServer makes one cheap request that needs the credentials. The client
// does not retry connection errors before it has reached the server once, so
// an unreachable endpoint fails at once.
func checkServer(ctx context.Context, c *prefect.Client) error {
	if _, err := c.ServerVersion(ctx); err != nil {
		switch {
		case prefect.IsUnauthorized(err):
			return fmt.Errorf("%w\n\nThe server refused the credentials: set basic_auth_key (PREFECT_API_AUTH_STRING) "+
				"to the server's PREFECT_SERVER_API_AUTH_STRING, or api_key (PREFECT_API_KEY)", err)
		case prefect.IsNotFound(err):
			return fmt.Errorf("%w\n\nThe endpoint answered but is not a Prefect 3 API: it usually ends in /api", err)
		}
		return err
	}
	return nil
}
