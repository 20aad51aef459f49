package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/boolvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ resource.ResourceWithConfigure        = (*DeploymentScheduleResource)(nil)
	_ resource.ResourceWithImportState      = (*DeploymentScheduleResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*DeploymentScheduleResource)(nil)
	_ resource.ResourceWithConfigValidators = (*DeploymentScheduleResource)(nil)
	_ resource.ResourceWithUpgradeState     = (*DeploymentScheduleResource)(nil)
)

// deploymentScheduleSchemaVersion is one above the prefecthq/prefect provider's (0).
const deploymentScheduleSchemaVersion = 1

// DeploymentScheduleResource manages one schedule of a deployment
// (prefect_deployment_schedule).
type DeploymentScheduleResource struct {
	cache  *readCache
	client *prefect.Client
}

// DeploymentScheduleResourceModel is the state of a prefect_deployment_schedule.
type DeploymentScheduleResourceModel struct {
	cloudScope
	ID               types.String  `tfsdk:"id"`
	Created          types.String  `tfsdk:"created"`
	Updated          types.String  `tfsdk:"updated"`
	DeploymentID     types.String  `tfsdk:"deployment_id"`
	Active           types.Bool    `tfsdk:"active"`
	MaxScheduledRuns types.Int64   `tfsdk:"max_scheduled_runs"`
	Parameters       types.String  `tfsdk:"parameters"`
	Slug             types.String  `tfsdk:"slug"`
	Timezone         types.String  `tfsdk:"timezone"`
	Interval         types.Float64 `tfsdk:"interval"`
	AnchorDate       types.String  `tfsdk:"anchor_date"`
	Cron             types.String  `tfsdk:"cron"`
	DayOr            types.Bool    `tfsdk:"day_or"`
	RRule            types.String  `tfsdk:"rrule"`
}

// NewDeploymentScheduleResource returns the prefect_deployment_schedule resource.
func NewDeploymentScheduleResource() resource.Resource { return &DeploymentScheduleResource{} }

// Metadata names the resource.
func (r *DeploymentScheduleResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_deployment_schedule"
}

// Schema describes the resource.
func (r *DeploymentScheduleResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	kinds := func(names ...string) []path.Expression {
		out := make([]path.Expression, len(names))
		for i, n := range names {
			out[i] = path.MatchRoot(n)
		}
		return out
	}
	resp.Schema = schema.Schema{
		Version: deploymentScheduleSchemaVersion,
		MarkdownDescription: "A schedule of a deployment: exactly one of `cron`, `interval` or `rrule`. " +
			"Import with `<deployment_id>,<schedule_id>`.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Schedule ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"deployment_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "ID (UUID) of the deployment, e.g. `prefect_deployment.etl.id`. A change replaces the schedule.",
				Validators:          []validator.String{uuidString()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"active": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
				MarkdownDescription: "Whether the schedule makes runs. Defaults to `true`.",
			},
			"max_scheduled_runs": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Most runs of this schedule scheduled ahead at once (the server allows at most 50 by " +
					"default). The API cannot unset it, so removing it replaces the schedule.",
				Validators:    []validator.Int64{int64validator.AtLeast(1)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplaceIf(int64Cleared, "Removing it replaces the schedule.", "Removing it replaces the schedule.")},
			},
			"parameters": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString("{}"),
				MarkdownDescription: "Parameters of this schedule's runs as a JSON object, over the deployment's. " +
					"Compared semantically. Defaults to `{}`.",
				Validators:    []validator.String{jsonattr.Object()},
				PlanModifiers: []planmodifier.String{jsonattr.StringPlan()},
			},
			"slug": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "A name of the schedule, unique in its deployment. The API cannot unset it, so removing " +
					"it replaces the schedule.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplaceIf(stringCleared, "Removing it replaces the schedule.", "Removing it replaces the schedule.")},
			},
			"timezone": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "IANA timezone the schedule is read in, e.g. `Europe/Berlin`. When unset, the server's: " +
					"`UTC` for `interval` and `rrule`, none (UTC) for `cron`.",
			},
			"interval": schema.Float64Attribute{
				Optional:            true,
				MarkdownDescription: "Seconds between runs. Exactly one of `cron`, `interval` and `rrule` is set.",
				Validators:          []validator.Float64{float64validator.AtLeast(0.001)},
			},
			"anchor_date": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "(With `interval`) When the intervals start, RFC 3339, e.g. `2024-01-01T00:00:00Z`; " +
					"without an offset it is UTC. Compared as a point in time. When unset, the server uses the time the " +
					"schedule is created, and keeps it.",
				Validators: []validator.String{
					stringvalidator.ConflictsWith(kinds("cron", "rrule")...),
					anchorDateValidator{},
				},
				PlanModifiers: []planmodifier.String{sameInstantPlan{}},
			},
			"cron": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "A cron expression, e.g. `0 6 * * 1-5`. Exactly one of `cron`, `interval` and `rrule` is set.",
			},
			"day_or": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "(With `cron`) Whether a day-of-month and a day-of-week field match when either does " +
					"(`true`, the server's default) or only when both do.",
				Validators: []validator.Bool{boolvalidator.ConflictsWith(kinds("interval", "rrule")...)},
			},
			"rrule": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "An RFC 5545 recurrence rule, e.g. `FREQ=WEEKLY;BYDAY=MO`. The server adds a `DTSTART` " +
					"line to a rule without one; that is not a change. Exactly one of `cron`, `interval` and `rrule` is set.",
				PlanModifiers: []planmodifier.String{rrulePlan{}},
			},
		}),
	}
}

// ConfigValidators asks for exactly one schedule kind.
func (r *DeploymentScheduleResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("cron"), path.MatchRoot("interval"), path.MatchRoot("rrule")),
	}
}

// Configure receives the provider's client.
func (r *DeploymentScheduleResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
	r.cache = readCacheFrom(req.ProviderData)
}

// Create adds the schedule to its deployment.
func (r *DeploymentScheduleResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan DeploymentScheduleResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	params := plan.parameters(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	depID := plan.DeploymentID.ValueString()
	r.cache.forgetDeployment(depID)
	created, err := r.client.CreateDeploymentSchedules(ctx, depID, []prefect.ScheduleCreate{{
		Schedule:         plan.schedule(),
		Active:           plan.Active.ValueBool(),
		MaxScheduledRuns: intPtr(plan.MaxScheduledRuns),
		Parameters:       params,
		Slug:             stringPtr(plan.Slug),
	}})
	if err == nil && len(created) != 1 {
		err = fmt.Errorf("the server answered with %d schedules, want the one created", len(created))
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", scheduleName(depID, ""), err)
		return
	}
	plan.fromAPI(created[0], &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the schedule; one deleted outside Terraform, or whose
// deployment was, leaves the state.
func (r *DeploymentScheduleResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state DeploymentScheduleResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	s, found, err := r.find(ctx, state.DeploymentID.ValueString(), state.ID.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", scheduleName(state.DeploymentID.ValueString(), state.ID.ValueString()), err)
		return
	}
	if !found {
		resp.State.RemoveResource(ctx)
		return
	}
	state.fromAPI(s, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update replaces the schedule's settings.
func (r *DeploymentScheduleResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan DeploymentScheduleResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	params := plan.parameters(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	depID, id := plan.DeploymentID.ValueString(), plan.ID.ValueString()
	what := scheduleName(depID, id)
	active := plan.Active.ValueBool()
	r.cache.forgetDeployment(depID)
	err := r.client.UpdateDeploymentSchedule(ctx, depID, id, prefect.ScheduleUpdate{
		Schedule:         plan.schedule(),
		Active:           &active,
		MaxScheduledRuns: intPtr(plan.MaxScheduledRuns),
		Parameters:       params,
		Slug:             stringPtr(plan.Slug),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update", what, err)
		return
	}
	s, found, err := r.find(ctx, depID, id)
	if err == nil && !found {
		err = fmt.Errorf("it is gone from deployment %s", depID)
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", what, err)
		return
	}
	plan.fromAPI(s, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete removes the schedule; one already gone, or whose deployment is, is fine.
func (r *DeploymentScheduleResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state DeploymentScheduleResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	depID, id := state.DeploymentID.ValueString(), state.ID.ValueString()
	r.cache.forgetDeployment(depID)
	if err := r.client.DeleteDeploymentSchedule(ctx, depID, id); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", scheduleName(depID, id), err)
	}
}

// ImportState imports a schedule by "<deployment_id>,<schedule_id>".
func (r *DeploymentScheduleResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 2, "deployment schedule", &resp.Diagnostics)
	if !ok {
		return
	}
	depID, id, err := parseScheduleImportID(id)
	if err != nil {
		resp.Diagnostics.AddError("Unable to import deployment schedule", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("deployment_id"), depID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0) and of earlier releases of this provider. That provider stores
// every schedule attribute, with "", 0 or false for those the schedule does
// not have, where this provider stores null for the attributes of other
// schedule kinds and for an unset slug or max_scheduled_runs.
func (r *DeploymentScheduleResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(deploymentScheduleSchemaVersion, "prefect_deployment_schedule", func(s priorState, _ *diag.Diagnostics) {
		if !s.upstream {
			return
		}
		s.emptyToNull("slug", "timezone", "cron", "rrule", "anchor_date")
		s.zeroToNull("max_scheduled_runs", "interval")
		if s.attrs["cron"] == nil {
			s.attrs["day_or"] = nil
		}
		if s.attrs["interval"] == nil {
			s.attrs["anchor_date"] = nil
		}
	})
}

// ModifyPlan plans the values the server fills in for the schedule's kind
// (timezone, anchor_date, day_or), keeping the prior ones while the kind
// stays, and keeps the prior updated time in a plan that changes nothing else.
func (r *DeploymentScheduleResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, config DeploymentScheduleResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	kind, ok := plan.kind()
	if !ok {
		return
	}
	var state DeploymentScheduleResourceModel
	sameKind := false
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		stateKind, _ := state.kind()
		sameKind = stateKind == kind && state.DeploymentID.Equal(plan.DeploymentID)
	}
	// filled is a value the server fills in: the configured one, else the
	// prior one (even none) while the kind stays, else unknown.
	filled := func(configured, prior, fallback attr.Value) attr.Value {
		switch {
		case !configured.IsNull():
			return configured
		case sameKind:
			return prior
		}
		return fallback
	}
	set := func(name string, v attr.Value) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), v)...)
	}
	switch kind {
	case "cron":
		set("timezone", filled(config.Timezone, state.Timezone, types.StringUnknown()))
		set("day_or", filled(config.DayOr, state.DayOr, types.BoolUnknown()))
		set("anchor_date", types.StringNull())
	case "interval":
		set("timezone", filled(config.Timezone, state.Timezone, types.StringUnknown()))
		anchor := filled(config.AnchorDate, state.AnchorDate, types.StringUnknown())
		if !config.AnchorDate.IsNull() {
			anchor = plan.AnchorDate // as its plan modifier left it
		}
		set("anchor_date", anchor)
		set("day_or", types.BoolNull())
	case "rrule":
		set("timezone", filled(config.Timezone, state.Timezone, types.StringUnknown()))
		set("anchor_date", types.StringNull())
		set("day_or", types.BoolNull())
	}
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// find reads a deployment's schedules and returns the one with the id;
// found is false when it, or the deployment, does not exist. The schedules
// of a deployment this provider process has just read (the deployment's own
// refresh, before its schedules') cost no request.
func (r *DeploymentScheduleResource) find(ctx context.Context, depID, id string) (prefect.DeploymentSchedule, bool, error) {
	var all []prefect.DeploymentSchedule
	if dep, ok := r.cache.deployment(depID); ok {
		all = dep.Schedules
	} else {
		var err error
		all, err = r.client.ListDeploymentSchedules(ctx, depID)
		if prefect.IsNotFound(err) {
			return prefect.DeploymentSchedule{}, false, nil
		}
		if err != nil {
			return prefect.DeploymentSchedule{}, false, err
		}
	}
	for _, s := range all {
		if s.ID == id {
			return s, true, nil
		}
	}
	return prefect.DeploymentSchedule{}, false, nil
}

// kind returns which of cron, interval and rrule is set; ok is false when
// none is known yet.
func (m DeploymentScheduleResourceModel) kind() (string, bool) {
	switch {
	case known(m.Cron):
		return "cron", true
	case known(m.Interval):
		return "interval", true
	case known(m.RRule):
		return "rrule", true
	}
	return "", false
}

// schedule converts the planned schedule for the API, leaving out what is
// not set so the server fills it in.
func (m DeploymentScheduleResourceModel) schedule() prefect.Schedule {
	s := prefect.Schedule{}
	put := func(key string, v attr.Value, val func() any) {
		if known(v) {
			s[key] = val()
		}
	}
	put("timezone", m.Timezone, func() any { return m.Timezone.ValueString() })
	switch kind, _ := m.kind(); kind {
	case "cron":
		s["cron"] = m.Cron.ValueString()
		put("day_or", m.DayOr, func() any { return m.DayOr.ValueBool() })
	case "interval":
		s["interval"] = json.Number(strconv.FormatFloat(m.Interval.ValueFloat64(), 'g', -1, 64))
		put("anchor_date", m.AnchorDate, func() any { return m.AnchorDate.ValueString() })
	case "rrule":
		s["rrule"] = m.RRule.ValueString()
	}
	return s
}

// parameters decodes the planned parameters.
func (m DeploymentScheduleResourceModel) parameters(diags *diag.Diagnostics) map[string]any {
	if !known(m.Parameters) {
		return nil
	}
	obj, err := jsonattr.DecodeObject(m.Parameters.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("parameters"), "Invalid parameters", err.Error())
	}
	return obj
}

// fromAPI copies the server's schedule into the model, keeping the
// configured form of equal values (JSON spelling, the instant of anchor_date,
// an rrule without the DTSTART the server adds).
func (m *DeploymentScheduleResourceModel) fromAPI(s prefect.DeploymentSchedule, diags *diag.Diagnostics) {
	m.ID = types.StringValue(s.ID)
	m.Created = timestamp(s.Created)
	m.Updated = timestamp(s.Updated)
	m.DeploymentID = types.StringValue(s.DeploymentID)
	m.Active = types.BoolValue(s.Active)
	m.MaxScheduledRuns = int64Value(s.MaxScheduledRuns)
	m.Slug = optionalString(s.Slug, m.Slug)
	params, err := jsonattr.Encode(orEmpty(s.Parameters))
	if err != nil {
		diags.AddAttributeError(path.Root("parameters"), fmt.Sprintf("Unable to read %s", scheduleName(s.DeploymentID, s.ID)), err.Error())
		return
	}
	m.Parameters = jsonattr.KeepString(m.Parameters, params)

	str := func(key string) types.String {
		if v, ok := s.Schedule[key].(string); ok {
			return types.StringValue(v)
		}
		return types.StringNull()
	}
	m.Timezone = str("timezone")
	priorAnchor, priorRule := m.AnchorDate, m.RRule
	m.Cron, m.DayOr, m.Interval, m.AnchorDate, m.RRule = types.StringNull(), types.BoolNull(), types.Float64Null(), types.StringNull(), types.StringNull()
	switch {
	case s.Schedule["cron"] != nil:
		m.Cron = str("cron")
		if v, ok := s.Schedule["day_or"].(bool); ok {
			m.DayOr = types.BoolValue(v)
		}
	case s.Schedule["interval"] != nil:
		seconds, err := strconv.ParseFloat(fmt.Sprint(s.Schedule["interval"]), 64)
		if err != nil {
			diags.AddAttributeError(path.Root("interval"), fmt.Sprintf("Unable to read %s", scheduleName(s.DeploymentID, s.ID)),
				fmt.Sprintf("The server's interval %v is not a number of seconds.", s.Schedule["interval"]))
			return
		}
		m.Interval = types.Float64Value(seconds)
		m.AnchorDate = str("anchor_date")
		if known(priorAnchor) && known(m.AnchorDate) && sameInstant(priorAnchor.ValueString(), m.AnchorDate.ValueString()) {
			m.AnchorDate = priorAnchor
		}
	case s.Schedule["rrule"] != nil:
		m.RRule = str("rrule")
		if known(priorRule) && known(m.RRule) && rruleMatches(priorRule.ValueString(), m.RRule.ValueString()) {
			m.RRule = priorRule
		}
	}
}

// rruleMatches reports whether the server's rule is the configured one: the
// same, or the same after the DTSTART line the server adds to a rule that
// has none.
func rruleMatches(configured, server string) bool {
	configured, server = strings.TrimSpace(configured), strings.TrimSpace(server)
	if configured == server {
		return true
	}
	if strings.Contains(strings.ToUpper(configured), "DTSTART") {
		return false
	}
	first, rest, ok := strings.Cut(server, "\n")
	return ok && strings.HasPrefix(strings.ToUpper(first), "DTSTART") && strings.TrimSpace(rest) == configured
}

// parseTime reads an anchor date: RFC 3339, or without an offset (UTC, as
// the server takes it).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04:05.999999999", s)
}

// sameInstant reports whether two anchor dates are the same point in time.
func sameInstant(a, b string) bool {
	ta, errA := parseTime(a)
	tb, errB := parseTime(b)
	return errA == nil && errB == nil && ta.Equal(tb)
}

// parseScheduleImportID splits "<deployment_id>,<schedule_id>".
func parseScheduleImportID(id string) (depID, scheduleID string, err error) {
	depID, scheduleID, ok := strings.Cut(id, ",")
	depID, scheduleID = strings.TrimSpace(depID), strings.TrimSpace(scheduleID)
	if !ok || depID == "" || scheduleID == "" || strings.Contains(scheduleID, ",") {
		return "", "", fmt.Errorf("the import ID %q is not <deployment_id>,<schedule_id>, e.g. "+
			"terraform import prefect_deployment_schedule.nightly 1b1b2fae-...,270b4852-...", id)
	}
	return depID, scheduleID, nil
}

// anchorDateValidator accepts an RFC 3339 time, with or without an offset.
type anchorDateValidator struct{}

func (anchorDateValidator) Description(context.Context) string {
	return "must be an RFC 3339 time such as 2024-01-01T00:00:00Z"
}

func (v anchorDateValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (anchorDateValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if !known(req.ConfigValue) {
		return
	}
	if _, err := parseTime(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid anchor_date",
			fmt.Sprintf("anchor_date must be an RFC 3339 time such as 2024-01-01T00:00:00Z, got %q.", req.ConfigValue.ValueString()))
	}
}

// sameInstantPlan keeps the anchor date in state when the configured one is
// the same point in time.
type sameInstantPlan struct{}

func (sameInstantPlan) Description(context.Context) string {
	return "Keeps the time in state when the configured one is the same point in time."
}

func (p sameInstantPlan) MarkdownDescription(ctx context.Context) string { return p.Description(ctx) }

func (sameInstantPlan) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if known(req.ConfigValue) && known(req.StateValue) && sameInstant(req.ConfigValue.ValueString(), req.StateValue.ValueString()) {
		resp.PlanValue = req.StateValue
	}
}

// rrulePlan keeps the rule in state when it is the configured one with the
// DTSTART the server added.
type rrulePlan struct{}

func (rrulePlan) Description(context.Context) string {
	return "Keeps the rule in state when it is the configured one with the DTSTART line the server adds."
}

func (p rrulePlan) MarkdownDescription(ctx context.Context) string { return p.Description(ctx) }

func (rrulePlan) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if known(req.ConfigValue) && known(req.StateValue) && rruleMatches(req.ConfigValue.ValueString(), req.StateValue.ValueString()) {
		resp.PlanValue = req.StateValue
	}
}

// stringCleared and int64Cleared replace a resource when a value the API
// cannot unset is removed.
func stringCleared(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.StateValue.IsNull() && req.ConfigValue.IsNull()
}

func int64Cleared(_ context.Context, req planmodifier.Int64Request, resp *int64planmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.StateValue.IsNull() && req.ConfigValue.IsNull()
}

func scheduleName(depID, id string) string {
	if id == "" {
		return fmt.Sprintf("schedule of deployment %s", depID)
	}
	return fmt.Sprintf("schedule %s of deployment %s", id, depID)
}
