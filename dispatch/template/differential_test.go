package template

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefectenv"
)

// The differential test renders every case twice, with this package and with
// Prefect's own worker code (testdata/prefect_render.py), against one real
// Prefect server holding the variables and block documents the cases refer
// to, and requires canonical JSON equality of both the rendered and the
// prepared configuration, and the same validation verdict.

var prefectDump = flag.String("prefect-dump", "", "write the cases sent to prefect_render.py and its answer to this file")

// diffCase is one entry of testdata/cases/*.json.
type diffCase struct {
	// Name identifies the case in failures.
	Name string `json:"name"`
	// Template is the base job template; TemplateRef names a worker type
	// whose default template the server ships instead.
	Template    map[string]any `json:"template"`
	TemplateRef string         `json:"template_ref"`
	// Job variables of the deployment and the flow run.
	DeploymentJobVariables map[string]any `json:"deployment_job_variables"`
	FlowRunJobVariables    map[string]any `json:"flow_run_job_variables"`
	// NoDeployment runs a flow run created without a deployment.
	NoDeployment bool `json:"no_deployment"`
	// FlowRun, Flow and Deployment override fields of the server's objects.
	FlowRun    map[string]any `json:"flow_run"`
	Flow       map[string]any `json:"flow"`
	Deployment map[string]any `json:"deployment"`
	// WorkerName and WorkerID default to a fixed dispatcher identity; an
	// empty string means none.
	WorkerName *string `json:"worker_name"`
	WorkerID   *string `json:"worker_id"`
	// ExpectError and ExpectValid state what the case is about, so that a
	// case that stops exercising its edge is noticed.
	ExpectError bool  `json:"expect_error"`
	ExpectValid *bool `json:"expect_valid"`
	// SkipValidation is for cases Prefect's validation cannot run offline
	// ("$ref" defaults need its database session).
	SkipValidation bool `json:"skip_validation"`
	// Note says what the case checks.
	Note string `json:"note"`
}

// pythonResult is one result of prefect_render.py.
type pythonResult struct {
	Name       string         `json:"name"`
	Rendered   map[string]any `json:"rendered"`
	Prepared   map[string]any `json:"prepared"`
	Error      *string        `json:"error"`
	Validation struct {
		Valid *bool   `json:"valid"`
		Error *string `json:"error"`
		Crash *string `json:"crash"`
	} `json:"validation"`
}

// fixtures are the objects the server holds for the cases.
type fixtures struct {
	flow, workPool, deployment map[string]any
	runWithDeployment          map[string]any
	runWithoutDeployment       map[string]any
	blockIDs                   map[string]string // "slug/name" -> id
	templates                  map[string]map[string]any
}

const (
	testWorkerName = "pushpool-dispatcher"
	testWorkerID   = "6f1c4a4e-8f9b-4a57-9d55-0d3c2b1e7a10"
)

// dispatcherEnv is the environment the Python worker runs with, apart from
// PATH and the Prefect settings; {{ $NAME }} cases read it.
func dispatcherEnv() map[string]string {
	return map[string]string{
		"PUSHPOOL_TPL_REGION":  "eu-west-1",
		"PUSHPOOL_TPL_EMPTY":   "",
		"PUSHPOOL_TPL_UNICODE": "ünïcødé ☃ 日本",
		"PUSHPOOL_TPL_NUMBER":  "42",
		"PUSHPOOL_TPL_BRACES":  "{{ image }}",
	}
}

func TestRender_MatchesPrefect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	api := newPrefectAPI(srv.URL)
	fx := seed(ctx, t, api)

	cases := loadCases(t, fx)
	wire := make([]map[string]any, len(cases))
	for i, c := range cases {
		wire[i] = wireCase(t, fx, c)
	}

	home := t.TempDir()
	settings := map[string]string{
		"PREFECT_HOME":            home,
		"PREFECT_PROFILES_PATH":   filepath.Join(home, "profiles.toml"),
		"PREFECT_API_URL":         srv.URL,
		"PREFECT_API_KEY":         "pnu_pushpool_differential_test",
		"PREFECT_API_AUTH_STRING": "pushpool:differential",
	}
	// An empty active profile, so nothing but the environment sets anything.
	if err := os.WriteFile(settings["PREFECT_PROFILES_PATH"], []byte("active = \"pushpool\"\n\n[profiles.pushpool]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": home, "PYTHONHASHSEED": "0"}
	for k, v := range settings {
		env[k] = v
	}
	for k, v := range dispatcherEnv() {
		env[k] = v
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	version, results := runPython(ctx, t, wire, env)
	if len(results) != len(cases) {
		t.Fatalf("prefect_render.py returned %d results for %d cases", len(results), len(cases))
	}

	resolver := httpResolver{api: api}
	// The settings a dispatcher with Python's environment gives its jobs.
	jobSettings := prefectenv.ForJobs(lookup)
	equal := 0
	for i, c := range cases {
		py := results[i]
		if py.Name != c.Name {
			t.Fatalf("result %d is for %q, want %q", i, py.Name, c.Name)
		}
		if problems := compareCase(ctx, c, wire[i], py, resolver, jobSettings, lookup, version); len(problems) > 0 {
			t.Errorf("case %q differs from Prefect %s:\n  %s", c.Name, version, strings.Join(problems, "\n  "))
			continue
		}
		equal++
	}
	t.Logf("template differential: %d cases equal to Prefect %s", equal, version)
	if len(cases) < 40 {
		t.Errorf("the corpus has %d cases, want at least 40", len(cases))
	}
}

// compareCase renders one case with this package and lists every way it
// differs from Prefect's result.
func compareCase(ctx context.Context, c diffCase, wire map[string]any, py pythonResult, r Resolver,
	settings map[string]string, lookup LookupEnv, version string) []string {
	var problems []string
	if c.ExpectError && py.Error == nil {
		problems = append(problems, "the case expects Prefect to raise, and it did not")
	}
	if !c.ExpectError && py.Error != nil {
		problems = append(problems, "Prefect raised unexpectedly: "+*py.Error)
	}

	in := Input{
		BaseJobTemplate:     wire["template"].(map[string]any),
		FlowRunJobVariables: c.FlowRunJobVariables,
		Env:                 lookup,
	}
	if !c.NoDeployment {
		in.DeploymentJobVariables = c.DeploymentJobVariables
	}
	rendered, err := Render(ctx, in, r)
	switch {
	case py.Error != nil && err == nil:
		problems = append(problems, "Prefect raised "+*py.Error+", Render returned no error")
	case py.Error == nil && err != nil:
		problems = append(problems, "Render failed: "+err.Error())
	case err == nil:
		if py.Rendered == nil {
			problems = append(problems, "Prefect returned no rendered configuration")
			break
		}
		problems = append(problems, diffJSON("rendered", canonical(rendered), canonical(py.Rendered))...)
		info := runInfoFor(wire, settings, lookup, version)
		problems = append(problems, diffJSON("prepared", canonical(Prepare(rendered, info)), canonical(py.Prepared))...)
	}

	if c.SkipValidation {
		return problems
	}
	if py.Validation.Crash != nil {
		return append(problems, "Prefect's validation crashed: "+*py.Validation.Crash)
	}
	merged := map[string]any{}
	for k, v := range in.DeploymentJobVariables {
		merged[k] = v
	}
	for k, v := range c.FlowRunJobVariables {
		merged[k] = v
	}
	schema, _ := in.BaseJobTemplate["variables"].(map[string]any)
	verr := Validate(schema, merged, "pushpool-diff", "nightly")
	pyValid := py.Validation.Valid != nil && *py.Validation.Valid
	if c.ExpectValid != nil && *c.ExpectValid != pyValid {
		problems = append(problems, fmt.Sprintf("the case expects valid=%v, Prefect's validation says %v", *c.ExpectValid, pyValid))
	}
	switch {
	case pyValid && verr != nil:
		problems = append(problems, "Prefect accepts the job variables, Validate rejects them: "+verr.Error())
	case !pyValid && verr == nil:
		problems = append(problems, "Prefect rejects the job variables ("+deref(py.Validation.Error)+"), Validate accepts them")
	}
	return problems
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// runInfoFor builds the RunInfo a dispatcher would build from the API
// objects the case hands to Prefect.
func runInfoFor(wire map[string]any, settings map[string]string, lookup LookupEnv, version string) RunInfo {
	fr := wire["flow_run"].(map[string]any)
	flow := wire["flow"].(map[string]any)
	pool := wire["work_pool"].(map[string]any)
	info := RunInfo{
		FlowRunID:      str(fr["id"]),
		FlowRunName:    str(fr["name"]),
		FlowID:         str(flow["id"]),
		FlowName:       str(flow["name"]),
		WorkPoolID:     str(pool["id"]),
		WorkPoolName:   str(pool["name"]),
		WorkerName:     str(wire["worker_name"]),
		WorkerID:       str(wire["worker_id"]),
		SettingsEnv:    settings,
		FlowRun:        fr,
		Flow:           flow,
		Env:            lookup,
		PrefectVersion: version,
	}
	if dep, ok := wire["deployment"].(map[string]any); ok {
		info.DeploymentID = str(dep["id"])
		info.DeploymentName = str(dep["name"])
		if u, err := time.Parse(time.RFC3339Nano, str(dep["updated"])); err == nil {
			info.DeploymentUpdated = u
		}
	}
	return info
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// wireCase is the case as prefect_render.py reads it.
func wireCase(t *testing.T, fx fixtures, c diffCase) map[string]any {
	t.Helper()
	tpl := c.Template
	if c.TemplateRef != "" {
		var ok bool
		if tpl, ok = fx.templates[c.TemplateRef]; !ok {
			t.Fatalf("case %q: no default template for worker type %q", c.Name, c.TemplateRef)
		}
	}
	if tpl == nil {
		t.Fatalf("case %q has neither template nor template_ref", c.Name)
	}
	flowRun := fx.runWithDeployment
	var deployment any = overlay(fx.deployment, c.Deployment)
	if c.NoDeployment {
		flowRun, deployment = fx.runWithoutDeployment, nil
	}
	w := map[string]any{
		"name":                     c.Name,
		"template":                 deepCopy(tpl),
		"flow_run":                 overlay(flowRun, c.FlowRun),
		"flow":                     overlay(fx.flow, c.Flow),
		"deployment":               deployment,
		"work_pool":                deepCopy(fx.workPool),
		"deployment_job_variables": orEmpty(c.DeploymentJobVariables),
		"flow_run_job_variables":   orEmpty(c.FlowRunJobVariables),
		"worker_name":              testWorkerName,
		"worker_id":                testWorkerID,
	}
	// An empty identity is None for Prefect, as RunInfo documents.
	if c.WorkerName != nil {
		w["worker_name"] = nilIfEmpty(*c.WorkerName)
	}
	if c.WorkerID != nil {
		w["worker_id"] = nilIfEmpty(*c.WorkerID)
	}
	return w
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func overlay(base, over map[string]any) map[string]any {
	out := deepCopyMap(base)
	for k, v := range over {
		out[k] = deepCopy(v)
	}
	return out
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// loadCases reads testdata/cases/*.json and adds one case with no job
// variables for every worker type whose default template the server ships.
func loadCases(t *testing.T, fx fixtures) []diffCase {
	t.Helper()
	blockIDToken := regexp.MustCompile(`<<block-id:([^>]+)>>`)
	var cases []diffCase
	refs := make([]string, 0, len(fx.templates))
	for ref := range fx.templates {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		cases = append(cases, diffCase{Name: "default template " + ref + " without job variables", TemplateRef: ref})
	}

	files, err := filepath.Glob(filepath.Join("testdata", "cases", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files under testdata/cases: %v", err)
	}
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.Name] = true
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		data = blockIDToken.ReplaceAllFunc(data, func(tok []byte) []byte {
			key := string(blockIDToken.FindSubmatch(tok)[1])
			id, ok := fx.blockIDs[key]
			if !ok {
				missing = append(missing, key)
			}
			return []byte(id)
		})
		if len(missing) > 0 {
			t.Fatalf("%s refers to unknown block documents %v", file, missing)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		var fileCases []diffCase
		if err := dec.Decode(&fileCases); err != nil {
			t.Fatalf("decode %s: %v", file, err)
		}
		for _, c := range fileCases {
			if seen[c.Name] {
				t.Fatalf("%s: duplicate case name %q", file, c.Name)
			}
			seen[c.Name] = true
			cases = append(cases, c)
		}
	}
	return cases
}

// runPython renders the wire cases with Prefect's code.
func runPython(ctx context.Context, t *testing.T, wire []map[string]any, env map[string]string) (string, []pythonResult) {
	t.Helper()
	input, err := json.Marshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(srv.Venv, "bin", "python"), filepath.Join("testdata", "prefect_render.py"))
	cmd.Stdin = bytes.NewReader(input)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("prefect_render.py: %v\n%s", err, stderr.String())
	}
	if *prefectDump != "" {
		if err := os.WriteFile(*prefectDump, append(input, append([]byte("\n"), stdout.Bytes()...)...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out struct {
		PrefectVersion string         `json:"prefect_version"`
		Results        []pythonResult `json:"results"`
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode prefect_render.py output: %v\nstderr:\n%s", err, stderr.String())
	}
	return out.PrefectVersion, out.Results
}

// seed creates the flow, work pool, deployment, flow runs, variables and
// block documents the corpus refers to, and reads the default templates.
func seed(ctx context.Context, t *testing.T, api *prefectAPI) fixtures {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fx := fixtures{blockIDs: map[string]string{}, templates: map[string]map[string]any{}}

	var metadata map[string]map[string]map[string]any
	must(api.do(ctx, http.MethodGet, "/collections/views/aggregate-worker-metadata", nil, &metadata))
	for _, workers := range metadata {
		for workerType, meta := range workers {
			if tpl, ok := meta["default_base_job_configuration"].(map[string]any); ok {
				fx.templates[workerType] = tpl
			}
		}
	}
	for _, want := range []string{"process", "ecs", "cloud-run-v2", "azure-container-instance"} {
		if fx.templates[want] == nil {
			t.Fatalf("the server ships no default base job template for %q", want)
		}
	}

	var flow, pool, dep, run, bare map[string]any
	must(api.do(ctx, http.MethodPost, "/flows/", map[string]any{"name": "etl-flow"}, &flow))
	must(api.do(ctx, http.MethodPost, "/work_pools/", map[string]any{"name": "pushpool-diff", "type": "process"}, &pool))
	var created map[string]any
	must(api.do(ctx, http.MethodPost, "/deployments/", map[string]any{
		"name": "nightly", "flow_id": flow["id"], "work_pool_name": "pushpool-diff", "version": "v7",
	}, &created))
	must(api.do(ctx, http.MethodGet, "/deployments/"+str(created["id"]), nil, &dep))
	var createdRun map[string]any
	must(api.do(ctx, http.MethodPost, "/deployments/"+str(dep["id"])+"/create_flow_run", map[string]any{
		"name": "crimson-otter", "tags": []any{"team-a", "nightly"},
	}, &createdRun))
	must(api.do(ctx, http.MethodGet, "/flow_runs/"+str(createdRun["id"]), nil, &run))
	var createdBare map[string]any
	must(api.do(ctx, http.MethodPost, "/flow_runs/", map[string]any{"flow_id": flow["id"], "name": "quiet-heron"}, &createdBare))
	must(api.do(ctx, http.MethodGet, "/flow_runs/"+str(createdBare["id"]), nil, &bare))
	fx.flow, fx.workPool, fx.deployment, fx.runWithDeployment, fx.runWithoutDeployment = flow, pool, dep, run, bare

	variables := map[string]any{
		"image-tag":  "2024.06.01",
		"replicas":   json.Number("3"),
		"ratio":      json.Number("0.5"),
		"big-float":  json.Number("1e16"),
		"enabled":    true,
		"settings":   map[string]any{"region": "eu-west-1", "sizes": []any{json.Number("1"), json.Number("2.5")}},
		"nullvar":    nil,
		"empty":      "",
		"unicode":    "café ☕ 日本",
		"nested-ref": "{{ prefect.variables.image-tag }}",
		"with-quote": "it's",
	}
	for name, value := range variables {
		must(api.do(ctx, http.MethodPost, "/variables/", map[string]any{"name": name, "value": value}, nil))
	}

	must(api.do(ctx, http.MethodPost, "/block_types/install_system_block_types", nil, nil))
	var secretType map[string]any
	must(api.do(ctx, http.MethodGet, "/block_types/slug/secret", nil, &secretType))
	var secretSchemas []map[string]any
	must(api.do(ctx, http.MethodPost, "/block_schemas/filter", map[string]any{
		"block_schemas": map[string]any{"block_type_id": map[string]any{"any_": []any{secretType["id"]}}},
	}, &secretSchemas))
	if len(secretSchemas) == 0 {
		t.Fatal("the secret block type has no schema")
	}

	var configType, configSchema map[string]any
	must(api.do(ctx, http.MethodPost, "/block_types/", map[string]any{"name": "Pushpool Test Config", "slug": "pushpool-test-config"}, &configType))
	must(api.do(ctx, http.MethodPost, "/block_schemas/", map[string]any{
		"block_type_id": configType["id"],
		"capabilities":  []any{},
		"fields": map[string]any{
			"title": "PushpoolTestConfig", "type": "object", "properties": map[string]any{},
			"block_type_slug": "pushpool-test-config", "secret_fields": []any{}, "block_schema_references": map[string]any{},
		},
	}, &configSchema))

	blocks := []struct {
		typ, schema any
		slug, name  string
		data        map[string]any
	}{
		{secretType["id"], secretSchemas[0]["id"], "secret", "db-password", map[string]any{"value": "hunter2"}},
		{secretType["id"], secretSchemas[0]["id"], "secret", "registry", map[string]any{"value": "registry.example.test"}},
		{secretType["id"], secretSchemas[0]["id"], "secret", "api-token-json", map[string]any{"value": map[string]any{
			"token": "abc123", "scopes": []any{"read", "write"}, "values": json.Number("7"),
		}}},
		{secretType["id"], secretSchemas[0]["id"], "secret", "port-number", map[string]any{"value": json.Number("8080")}},
		{configType["id"], configSchema["id"], "pushpool-test-config", "main", map[string]any{
			"url": "https://example.test/api", "port": json.Number("5432"), "ratio": json.Number("1.5"), "enabled": false,
			"value": "not unwrapped: the document has more keys",
			"nested": map[string]any{
				"key":  map[string]any{"nested-key": "nested-value"},
				"list": []any{map[string]any{"list-key": "list-value"}, json.Number("1"), json.Number("2")},
			},
		}},
		{configType["id"], configSchema["id"], "pushpool-test-config", "with-variable", map[string]any{
			"url": "{{ prefect.variables.image-tag }}", "other": json.Number("1"),
		}},
		{configType["id"], configSchema["id"], "pushpool-test-config", "only-value-dict", map[string]any{
			"value": map[string]any{"a": "b"},
		}},
	}
	for _, b := range blocks {
		var doc map[string]any
		must(api.do(ctx, http.MethodPost, "/block_documents/", map[string]any{
			"name": b.name, "block_type_id": b.typ, "block_schema_id": b.schema, "data": b.data,
		}, &doc))
		fx.blockIDs[b.slug+"/"+b.name] = str(doc["id"])
	}
	return fx
}

// canonical turns a JSON tree into a comparable form: ints as decimal
// strings tagged "int:", floats as shortest round-trip strings tagged
// "float:", keys sorted by encoding/json.
func canonical(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = canonical(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = canonical(x)
		}
		return out
	case json.Number:
		s := string(v)
		if strings.ContainsAny(s, ".eE") {
			f, _ := strconv.ParseFloat(s, 64)
			return "float:" + strconv.FormatFloat(f, 'g', -1, 64)
		}
		i, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return "int:?" + s
		}
		return "int:" + i.String()
	case float64:
		return "float:" + strconv.FormatFloat(v, 'g', -1, 64)
	case int:
		return "int:" + strconv.Itoa(v)
	default:
		return v
	}
}

// diffJSON lists the paths where two canonical trees differ.
func diffJSON(path string, got, want any) []string {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		var out []string
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			g, inG := gm[k]
			w, inW := wm[k]
			p := path + "." + k
			switch {
			case !inG:
				out = append(out, fmt.Sprintf("%s: missing in Go, Prefect has %s", p, show(w)))
			case !inW:
				out = append(out, fmt.Sprintf("%s: Go has %s, missing in Prefect", p, show(g)))
			default:
				out = append(out, diffJSON(p, g, w)...)
			}
		}
		return out
	}
	gl, glok := got.([]any)
	wl, wlok := want.([]any)
	if glok && wlok && len(gl) == len(wl) {
		var out []string
		for i := range gl {
			out = append(out, diffJSON(fmt.Sprintf("%s[%d]", path, i), gl[i], wl[i])...)
		}
		return out
	}
	if show(got) != show(want) {
		return []string{fmt.Sprintf("%s: Go %s, Prefect %s", path, show(got), show(want))}
	}
	return nil
}

func show(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(data)
}
