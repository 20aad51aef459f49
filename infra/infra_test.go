package infra

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// The clouds with a module under infra/<cloud>.
var clouds = []string{"aws", "gcp", "azure"}

// contract lists, per cloud, the environment the function reads: the names
// its Go code looks up (functions/<cloud>, functions/internal/fnapp and
// dispatch/), which TestModules_FunctionSourceAgrees checks once the
// function exists. The module must set exactly these names in
// local.contract_environment.
var contract = func() map[string][]string {
	shared := []string{"PREFECT_API_URL", "PUSHPOOL_POOLS", "PUSHPOOL_WORKER_NAME", "PUSHPOOL_SHARD_SIZE"}
	timing := []string{"PUSHPOOL_WAKE_HORIZON_SECONDS", "PUSHPOOL_SUBMIT_RESERVE_SECONDS"}
	with := func(names ...string) []string { return append(slices.Clone(shared), names...) }
	return map[string][]string{
		// functions/lambda/function.go
		"aws": with(append(timing, "PUSHPOOL_PREFECT_API_KEY_SECRET_ARN", "PUSHPOOL_WEBHOOK_SECRET_ARN", "PUSHPOOL_QUEUE_URL")...),
		// functions/gcp/config.go; PUSHPOOL_GCP_PROJECT is the Cloud Run
		// backend's (dispatch/backend/cloudrun/kind.go), as Cloud Run sets no project variable.
		"gcp": with(append(timing, "PUSHPOOL_TOPIC", "PUSHPOOL_TASKS_QUEUE", "PUSHPOOL_SELF_URL",
			"PUSHPOOL_TASKS_SERVICE_ACCOUNT", "PUSHPOOL_REQUEST_TIMEOUT_SECONDS", "PUSHPOOL_GCP_PROJECT")...),
		// functions/azure/function.go on branch helper/azure (the secrets
		// are Key Vault references); the ACI defaults are dispatch/backend/aci/kind.go's.
		"azure": with(append(timing, "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PUSHPOOL_WEBHOOK_SECRET", "PUSHPOOL_QUEUE",
			"AZURE_SUBSCRIPTION_ID", "PUSHPOOL_ACI_RESOURCE_GROUP", "PUSHPOOL_ACI_LOCATION")...),
	}
}()

// gcpSecretContract are the variables functions/gcp reads secrets from when
// Cloud Run mounts them from Secret Manager (value_source.secret_key_ref):
// the keys of infra/gcp's local.contract_secrets.
var gcpSecretContract = []string{"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PUSHPOOL_WEBHOOK_SECRET_VALUE"}

// gcpRoutes are the PUSHPOOL_ROUTES of infra/gcp's two Cloud Run services.
var gcpRoutes = []string{"events", "webhook"}

// functionResources names, per cloud, the resources that run the function and
// the path to their environment attribute.
var functionResources = map[string]struct {
	typ  string
	path []string
}{
	"aws":   {"aws_lambda_function", []string{"environment", "variables"}},
	"gcp":   {"google_cloud_run_v2_service", []string{"template", "containers", "env"}}, // dynamic "env" blocks: see envRefs
	"azure": {"azurerm_function_app_flex_consumption", []string{"app_settings"}},
}

// tfFile is one parsed .tf file.
type tfFile struct {
	path string
	src  []byte
	body *hclsyntax.Body
}

// tfModule is the .tf files of one directory.
type tfModule struct {
	dir   string
	files []tfFile
}

// loadModule parses the .tf files directly in dir, failing the test on any
// syntax error.
func loadModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	if len(paths) == 0 {
		t.Fatalf("%s holds no .tf files", dir)
	}
	m := &tfModule{dir: dir}
	p := hclparse.NewParser()
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", path, diags.Error())
		}
		m.files = append(m.files, tfFile{path: path, src: f.Bytes, body: f.Body.(*hclsyntax.Body)})
	}
	return m
}

// topBlocks returns the top-level blocks of type typ (and, when labels are
// given, those labels first).
func (m *tfModule) topBlocks(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, f := range m.files {
		for _, b := range f.body.Blocks {
			if b.Type == typ && len(b.Labels) >= len(labels) && slices.Equal(b.Labels[:len(labels)], labels) {
				out = append(out, b)
			}
		}
	}
	return out
}

// variables returns the module's variable blocks by name.
func (m *tfModule) variables() map[string]*hclsyntax.Block {
	out := map[string]*hclsyntax.Block{}
	for _, b := range m.topBlocks("variable") {
		out[b.Labels[0]] = b
	}
	return out
}

// local returns the expression of local.name.
func (m *tfModule) local(name string) hclsyntax.Expression {
	for _, b := range m.topBlocks("locals") {
		if a, ok := b.Body.Attributes[name]; ok {
			return a.Expr
		}
	}
	return nil
}

// modulesDirs are the module roots and their examples.
func modulesDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, c := range clouds {
		err := filepath.WalkDir(c, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".terraform" {
				return filepath.SkipDir
			}
			if d.IsDir() {
				if tf, _ := filepath.Glob(filepath.Join(path, "*.tf")); len(tf) > 0 {
					dirs = append(dirs, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", c, err)
		}
	}
	return dirs
}

// blocksOf returns the bodies of body's child blocks of type typ, including
// the content of `dynamic "typ"` blocks.
func blocksOf(body *hclsyntax.Body, typ string) []*hclsyntax.Body {
	var out []*hclsyntax.Body
	for _, b := range body.Blocks {
		switch {
		case b.Type == typ:
			out = append(out, b.Body)
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ:
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					out = append(out, c.Body)
				}
			}
		}
	}
	return out
}

// allBodies returns body and every body nested in it.
func allBodies(body *hclsyntax.Body) []*hclsyntax.Body {
	out := []*hclsyntax.Body{body}
	for _, b := range body.Blocks {
		out = append(out, allBodies(b.Body)...)
	}
	return out
}

// attrAt follows nested blocks to an attribute: attrAt(b, "environment", "variables").
func attrAt(body *hclsyntax.Body, path ...string) *hclsyntax.Attribute {
	for _, name := range path[:len(path)-1] {
		bodies := blocksOf(body, name)
		if len(bodies) == 0 {
			return nil
		}
		body = bodies[0]
	}
	return body.Attributes[path[len(path)-1]]
}

// staticStrings evaluates expr without any variables: a string or a list of
// strings known at parse time. ok is false for anything else.
func staticStrings(expr hcl.Expression) (values []string, ok bool) {
	v, diags := expr.Value(nil)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return nil, false
	}
	if v.Type() == cty.String {
		return []string{v.AsString()}, true
	}
	if !v.CanIterateElements() {
		return nil, false
	}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || e.Type() != cty.String {
			return nil, false
		}
		values = append(values, e.AsString())
	}
	return values, true
}

// literals returns every literal string fragment inside expr (template
// parts included), so wildcards hidden in interpolations are found too.
func literals(expr hclsyntax.Expression) []string {
	var out []string
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if l, ok := n.(*hclsyntax.LiteralValueExpr); ok && l.Val.Type() == cty.String && l.Val.IsKnown() && !l.Val.IsNull() {
			out = append(out, l.Val.AsString())
		}
		return nil
	})
	return out
}

// refs returns the references in expr as "root.attr" strings (var.x,
// local.y, aws_iam_role.function, data.aws_iam_policy_document).
func refs(expr hcl.Expression) []string {
	var out []string
	for _, tr := range expr.Variables() {
		s := tr.RootName()
		if len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				s += "." + a.Name
			}
		}
		out = append(out, s)
	}
	return out
}

// resourceBlocks returns every `resource "<typ>"` block.
func (m *tfModule) resourceBlocks(typ string) []*hclsyntax.Block { return m.topBlocks("resource", typ) }

// where names a position for failure messages.
func where(r hcl.Range) string {
	return r.Filename + ":" + strconv.Itoa(r.Start.Line)
}

// TestModules_Files checks each module has the files a module is expected to
// have, and a basic example.
func TestModules_Files(t *testing.T) {
	t.Parallel()
	for _, c := range clouds {
		for _, f := range []string{"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md", "examples/basic/main.tf"} {
			if _, err := os.Stat(filepath.Join(c, f)); err != nil {
				t.Errorf("infra/%s/%s is missing: %v", c, f, err)
			}
		}
		readme, err := os.ReadFile(filepath.Join(c, "README.md"))
		if err == nil && !bytes.Contains(readme, []byte("```hcl")) {
			t.Errorf("infra/%s/README.md has no ```hcl usage example", c)
		}
	}
}

// TestModules_Parse parses every .tf file under infra/aws, infra/gcp and
// infra/azure, examples included.
func TestModules_Parse(t *testing.T) {
	t.Parallel()
	dirs := modulesDirs(t)
	if len(dirs) < 2*len(clouds) {
		t.Fatalf("found Terraform in %v; want a module and examples/basic per cloud", dirs)
	}
	for _, d := range dirs {
		loadModule(t, d)
	}
}

// TestModules_Variables checks every variable has a description and a type,
// and that each module validates the inputs most likely to be wrong.
func TestModules_Variables(t *testing.T) {
	t.Parallel()
	for _, d := range modulesDirs(t) {
		m := loadModule(t, d)
		for name, b := range m.variables() {
			desc, ok := b.Body.Attributes["description"]
			if !ok {
				t.Errorf("%s: variable %q has no description", where(b.DefRange()), name)
			} else if s, ok := staticStrings(desc.Expr); !ok || len(s) != 1 || len(strings.TrimSpace(s[0])) < 10 {
				t.Errorf("%s: variable %q: description must be a literal sentence", where(b.DefRange()), name)
			}
			if _, ok := b.Body.Attributes["type"]; !ok {
				t.Errorf("%s: variable %q has no type", where(b.DefRange()), name)
			}
			for _, v := range blocksOf(b.Body, "validation") {
				if _, ok := v.Attributes["error_message"]; !ok {
					t.Errorf("%s: variable %q: validation without error_message", where(b.DefRange()), name)
				}
			}
		}
	}
	for _, c := range clouds {
		vars := loadModule(t, c).variables()
		for _, name := range []string{"name", "prefect_api_url", "work_pools", "shard_size", "timeout_seconds", "log_retention_days", "extra_environment"} {
			b, ok := vars[name]
			if !ok {
				t.Errorf("infra/%s: no variable %q", c, name)
				continue
			}
			if len(blocksOf(b.Body, "validation")) == 0 {
				t.Errorf("infra/%s: variable %q has no validation block", c, name)
			}
		}
	}
}

// TestModules_Defaults checks the defaults the brief fixes: a 300 s timeout
// and 20 runs per shard.
func TestModules_Defaults(t *testing.T) {
	t.Parallel()
	for _, c := range clouds {
		vars := loadModule(t, c).variables()
		for name, want := range map[string]string{"timeout_seconds": "300", "shard_size": "20"} {
			b, ok := vars[name]
			if !ok {
				continue // reported by TestModules_Variables
			}
			def, ok := b.Body.Attributes["default"]
			if !ok {
				t.Errorf("infra/%s: variable %q has no default", c, name)
				continue
			}
			v, diags := def.Expr.Value(nil)
			if diags.HasErrors() || v.Type() != cty.Number || v.AsBigFloat().String() != want {
				t.Errorf("infra/%s: variable %q defaults to %#v, want %s", c, name, v, want)
			}
		}
	}
}

// TestModules_Versions checks required_version and required_providers with
// sources and versions pinned to one major version (~> N.M).
func TestModules_Versions(t *testing.T) {
	t.Parallel()
	pinned := regexp.MustCompile(`^~>\s*\d+\.\d+(\.\d+)?$`)
	for _, d := range modulesDirs(t) {
		m := loadModule(t, d)
		tfs := m.topBlocks("terraform")
		if len(tfs) != 1 {
			t.Errorf("%s: want one terraform block, found %d", d, len(tfs))
			continue
		}
		if _, ok := tfs[0].Body.Attributes["required_version"]; !ok {
			t.Errorf("%s: terraform block has no required_version", d)
		}
		rps := blocksOf(tfs[0].Body, "required_providers")
		if len(rps) != 1 || len(rps[0].Attributes) == 0 {
			t.Errorf("%s: terraform block needs one non-empty required_providers block", d)
			continue
		}
		for name, a := range rps[0].Attributes {
			obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
			if !ok {
				t.Errorf("%s: required_providers.%s must be an object with source and version", d, name)
				continue
			}
			fields := map[string]string{}
			for _, it := range obj.Items {
				k, _ := staticStrings(it.KeyExpr)
				v, _ := staticStrings(it.ValueExpr)
				if len(k) == 1 && len(v) == 1 {
					fields[k[0]] = v[0]
				}
			}
			if !strings.HasPrefix(fields["source"], "hashicorp/") {
				t.Errorf("%s: required_providers.%s source = %q, want hashicorp/%s", d, name, fields["source"], name)
			}
			if !pinned.MatchString(fields["version"]) {
				t.Errorf("%s: required_providers.%s version = %q, want a pessimistic constraint on one major version (~> N.M)", d, name, fields["version"])
			}
		}
	}
}

// Actions are "service:Action" with no wildcard; Azure actions are
// "Provider/type/.../operation".
var (
	awsAction       = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`)
	wildcardAction  = regexp.MustCompile(`(^|[^A-Za-z0-9/:.-])[A-Za-z0-9.-]+:\*($|[^A-Za-z0-9/])`)
	basicGCPRoles   = []string{"roles/owner", "roles/editor", "roles/viewer"}
	broadAzureRoles = []string{"Owner", "Contributor", "User Access Administrator", "Role Based Access Control Administrator"}
	actionAttrs     = []string{"actions", "not_actions", "action", "data_actions", "not_data_actions", "permissions"}
)

// TestModules_NoWildcardActions checks no IAM statement, permission or role
// grants a wildcard action ("*" or "service:*"), and that every AWS policy is
// an aws_iam_policy_document this test can read.
func TestModules_NoWildcardActions(t *testing.T) {
	t.Parallel()
	for _, d := range modulesDirs(t) {
		m := loadModule(t, d)
		for _, f := range m.files {
			// Every quoted or heredoc string, wherever it is (comments aside).
			tokens, _ := hclsyntax.LexConfig(f.src, f.path, hcl.InitialPos)
			for _, tok := range tokens {
				if (tok.Type == hclsyntax.TokenQuotedLit || tok.Type == hclsyntax.TokenStringLit) && wildcardAction.Match(tok.Bytes) {
					t.Errorf("%s:%d: wildcard action %q", f.path, tok.Range.Start.Line, tok.Bytes)
				}
			}
			for _, body := range allBodies(f.body) {
				// Any attribute that lists actions or permissions.
				for _, name := range actionAttrs {
					if a, ok := body.Attributes[name]; ok {
						for _, s := range literals(a.Expr) {
							if strings.Contains(s, "*") {
								t.Errorf("%s: %s contains a wildcard: %q", where(a.SrcRange), name, s)
							}
						}
					}
				}
				// jsonencode'd policies: "Action" / "NotAction" keys.
				for _, a := range body.Attributes {
					hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
						obj, ok := n.(*hclsyntax.ObjectConsExpr)
						if !ok {
							return nil
						}
						for _, it := range obj.Items {
							if k, ok := staticStrings(it.KeyExpr); ok && len(k) == 1 && (k[0] == "Action" || k[0] == "NotAction") {
								t.Errorf("%s: inline policy JSON; write policies as data \"aws_iam_policy_document\" so they are checked", where(a.SrcRange))
							}
						}
						return nil
					})
				}
				// Roles: no basic GCP roles, no broad Azure roles.
				if a, ok := body.Attributes["role"]; ok {
					for _, s := range literals(a.Expr) {
						if slices.Contains(basicGCPRoles, s) || strings.Contains(s, "*") {
							t.Errorf("%s: role %q is a basic or wildcard role", where(a.SrcRange), s)
						}
					}
				}
				if a, ok := body.Attributes["role_definition_name"]; ok {
					for _, s := range literals(a.Expr) {
						if slices.Contains(broadAzureRoles, s) {
							t.Errorf("%s: role_definition_name %q grants every action", where(a.SrcRange), s)
						}
					}
				}
			}
		}

		// AWS: every policy is a policy document, every statement lists literal actions.
		for _, typ := range []string{"aws_iam_role_policy", "aws_iam_policy", "aws_sqs_queue_policy", "aws_iam_role"} {
			for _, r := range m.resourceBlocks(typ) {
				for _, attr := range []string{"policy", "assume_role_policy", "inline_policy"} {
					a, ok := r.Body.Attributes[attr]
					if !ok {
						continue
					}
					if !slices.ContainsFunc(refs(a.Expr), func(s string) bool { return s == "data.aws_iam_policy_document" }) {
						t.Errorf("%s: %s.%s.%s must come from a data \"aws_iam_policy_document\"", where(a.SrcRange), typ, r.Labels[1], attr)
					}
				}
			}
		}
		for _, doc := range m.topBlocks("data", "aws_iam_policy_document") {
			for _, st := range blocksOf(doc.Body, "statement") {
				if _, ok := st.Attributes["not_actions"]; ok {
					t.Errorf("%s: statement uses not_actions (an allow-everything-but list)", where(doc.DefRange()))
				}
				a, ok := st.Attributes["actions"]
				if !ok {
					t.Errorf("%s: statement without actions", where(doc.DefRange()))
					continue
				}
				actions, ok := staticStrings(a.Expr)
				if !ok || len(actions) == 0 {
					t.Errorf("%s: actions must be a literal list so they can be checked", where(a.SrcRange))
					continue
				}
				for _, act := range actions {
					if !awsAction.MatchString(act) {
						t.Errorf("%s: action %q is not a single named action", where(a.SrcRange), act)
					}
				}
			}
		}
		for _, r := range m.resourceBlocks("azurerm_role_definition") {
			for _, p := range blocksOf(r.Body, "permissions") {
				a, ok := p.Attributes["actions"]
				if !ok {
					continue
				}
				actions, ok := staticStrings(a.Expr)
				if !ok || len(actions) == 0 {
					t.Errorf("%s: role definition actions must be a literal list", where(a.SrcRange))
				}
			}
		}
	}
}

// TestModules_PassRoleScoped checks every iam:PassRole names its roles (no
// "*") and says which service they may be passed to.
func TestModules_PassRoleScoped(t *testing.T) {
	t.Parallel()
	m := loadModule(t, "aws")
	passedTo := map[string]bool{}
	for _, doc := range m.topBlocks("data", "aws_iam_policy_document") {
		for _, st := range blocksOf(doc.Body, "statement") {
			a, ok := st.Attributes["actions"]
			if !ok {
				continue
			}
			actions, _ := staticStrings(a.Expr)
			if !slices.Contains(actions, "iam:PassRole") {
				continue
			}
			pos := where(a.SrcRange)
			res, ok := st.Attributes["resources"]
			if !ok {
				t.Errorf("%s: iam:PassRole without resources", pos)
			} else {
				for _, s := range literals(res.Expr) {
					if strings.Contains(s, "*") {
						t.Errorf("%s: iam:PassRole resource %q has a wildcard", pos, s)
					}
				}
				if len(refs(res.Expr)) == 0 && len(literals(res.Expr)) == 0 {
					t.Errorf("%s: iam:PassRole resources are empty", pos)
				}
			}
			found := false
			for _, c := range blocksOf(st, "condition") {
				v, _ := staticStrings(c.Attributes["variable"].Expr)
				if !slices.Equal(v, []string{"iam:PassedToService"}) {
					continue
				}
				vals, ok := staticStrings(c.Attributes["values"].Expr)
				if !ok || len(vals) == 0 {
					t.Errorf("%s: iam:PassedToService condition needs literal services", pos)
				}
				for _, s := range vals {
					if strings.Contains(s, "*") {
						t.Errorf("%s: iam:PassedToService %q has a wildcard", pos, s)
					}
					passedTo[s] = true
				}
				found = true
			}
			if !found {
				t.Errorf("%s: iam:PassRole without an iam:PassedToService condition", pos)
			}
		}
	}
	for _, doc := range m.topBlocks("data", "aws_iam_policy_document") {
		for _, st := range blocksOf(doc.Body, "statement") {
			if a, ok := st.Attributes["actions"]; ok {
				for _, act := range literals(a.Expr) {
					if strings.HasPrefix(act, "scheduler:") {
						t.Errorf("%s: %s: functions/lambda creates no EventBridge schedules (wake-ups are SQS delays)", where(a.SrcRange), act)
					}
				}
			}
		}
	}
	if !passedTo["ecs-tasks.amazonaws.com"] {
		t.Errorf("infra/aws: no iam:PassRole statement passes roles to ecs-tasks.amazonaws.com")
	}
	// The function creates no EventBridge schedules (wake-ups are SQS delays),
	// so it passes no role to the scheduler and may not create schedules.
	for svc := range passedTo {
		if svc != "ecs-tasks.amazonaws.com" {
			t.Errorf("infra/aws: iam:PassRole to %s, which functions/lambda never needs", svc)
		}
	}
}

// TestModules_EnvironmentContract checks each module sets exactly the
// environment its function reads, feeds it to the function, lets extras not
// override it, and puts no secret value in it.
func TestModules_EnvironmentContract(t *testing.T) {
	t.Parallel()
	for _, c := range clouds {
		m := loadModule(t, c)
		expr := m.local("contract_environment")
		obj, ok := expr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Errorf("infra/%s: local.contract_environment must be an object of the env names the function reads", c)
			continue
		}
		var got []string
		values := map[string]hclsyntax.Expression{}
		for _, it := range obj.Items {
			k, ok := staticStrings(it.KeyExpr)
			if !ok || len(k) != 1 {
				t.Errorf("infra/%s: contract_environment key at %s is not a literal name", c, where(it.KeyExpr.Range()))
				continue
			}
			got = append(got, k[0])
			values[k[0]] = it.ValueExpr
		}
		want := slices.Clone(contract[c])
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("infra/%s: contract_environment sets %v, the function contract is %v", c, got, want)
		}

		// No sensitive variable flows into the environment.
		sensitive := map[string]bool{}
		for name, b := range m.variables() {
			if a, ok := b.Body.Attributes["sensitive"]; ok {
				if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.True() {
					sensitive["var."+name] = true
				}
			}
		}
		for name, e := range values {
			for _, r := range refs(e) {
				if sensitive[r] {
					t.Errorf("infra/%s: %s takes the secret %s; pass a secret reference instead", c, name, r)
				}
			}
		}
		if c == "azure" {
			for _, name := range []string{"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PUSHPOOL_WEBHOOK_SECRET"} {
				if e, ok := values[name]; ok && !slices.ContainsFunc(literals(e), func(s string) bool { return strings.Contains(s, "@Microsoft.KeyVault(SecretUri=") }) {
					t.Errorf("infra/azure: %s must be a Key Vault reference @Microsoft.KeyVault(SecretUri=...)", name)
				}
			}
		}

		// function_environment = merge(var.extra_environment, local.contract_environment): the contract wins.
		call, ok := m.local("function_environment").(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "merge" || len(call.Args) < 2 || !slices.Equal(refs(call.Args[len(call.Args)-1]), []string{"local.contract_environment"}) {
			t.Errorf("infra/%s: local.function_environment must be merge(..., local.contract_environment) so extras cannot override the contract", c)
		}

		// The function resources run with it.
		fr := functionResources[c]
		blocks := m.resourceBlocks(fr.typ)
		if len(blocks) == 0 {
			t.Errorf("infra/%s: no %s resource", c, fr.typ)
		}
		for _, b := range blocks {
			if !slices.Contains(m.envRefs(b, fr.path), "local.function_environment") {
				t.Errorf("infra/%s: %s.%s.%s must use local.function_environment", c, fr.typ, b.Labels[1], strings.Join(fr.path, "."))
			}
		}
		if c == "gcp" {
			checkGCPServices(t, m, blocks)
		}
	}
}

// envRefs returns what the environment attribute at path refers to, with
// the locals it names expanded once. The last path element may be a block
// type (Cloud Run's repeated env blocks): then it is the for_each of its
// dynamic blocks.
func (m *tfModule) envRefs(b *hclsyntax.Block, path []string) []string {
	var out []string
	if a := attrAt(b.Body, path...); a != nil {
		out = refs(a.Expr)
	}
	body := b.Body
	for _, name := range path[:len(path)-1] {
		bodies := blocksOf(body, name)
		if len(bodies) == 0 {
			body = nil
			break
		}
		body = bodies[0]
	}
	if body != nil {
		for _, d := range body.Blocks {
			if d.Type == "dynamic" && len(d.Labels) == 1 && d.Labels[0] == path[len(path)-1] {
				if fe, ok := d.Body.Attributes["for_each"]; ok {
					out = append(out, refs(fe.Expr)...)
				}
			}
		}
	}
	for _, r := range slices.Clone(out) {
		if name, ok := strings.CutPrefix(r, "local."); ok {
			if e := m.local(name); e != nil {
				out = append(out, refs(e)...)
			}
		}
	}
	return out
}

// checkGCPServices checks infra/gcp's Cloud Run services: one per route of
// PUSHPOOL_ROUTES, each from local.function_environment plus its route, and
// secrets mounted from Secret Manager under the names functions/gcp reads.
func checkGCPServices(t *testing.T, m *tfModule, services []*hclsyntax.Block) {
	t.Helper()
	obj, ok := m.local("contract_secrets").(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Errorf("infra/gcp: local.contract_secrets must be an object of the secret variables functions/gcp reads")
	} else {
		var got []string
		for _, it := range obj.Items {
			if k, ok := staticStrings(it.KeyExpr); ok && len(k) == 1 {
				got = append(got, k[0])
			}
		}
		want := slices.Clone(gcpSecretContract)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("infra/gcp: contract_secrets mounts %v; functions/gcp reads its secrets from %v", got, want)
		}
	}
	var routes []string
	for _, b := range services {
		name := b.Labels[1]
		containers := blocksOf(attrBody(b.Body, "template"), "containers")
		if len(containers) != 1 {
			t.Errorf("infra/gcp: google_cloud_run_v2_service.%s needs one container", name)
			continue
		}
		plain, secret := 0, 0
		for _, d := range containers[0].Blocks {
			if d.Type != "dynamic" || len(d.Labels) != 1 || d.Labels[0] != "env" {
				continue
			}
			content := blocksOf(&hclsyntax.Body{Blocks: []*hclsyntax.Block{d}}, "env")
			if len(content) == 1 && len(blocksOf(attrBody(content[0], "value_source"), "secret_key_ref")) == 1 {
				secret++
				fe := d.Body.Attributes["for_each"]
				if fe == nil || !slices.ContainsFunc(m.expandedRefs(fe.Expr), func(r string) bool { return r == "local.contract_secrets" }) {
					t.Errorf("infra/gcp: google_cloud_run_v2_service.%s mounts secrets that do not come from local.contract_secrets", name)
				}
				continue
			}
			plain++
			fe := d.Body.Attributes["for_each"]
			if fe == nil {
				continue
			}
			for _, r := range refs(fe.Expr) {
				local, ok := strings.CutPrefix(r, "local.")
				if !ok {
					continue
				}
				call, ok := m.local(local).(*hclsyntax.FunctionCallExpr)
				if !ok || call.Name != "merge" || len(call.Args) < 2 {
					continue
				}
				last, ok := call.Args[len(call.Args)-1].(*hclsyntax.ObjectConsExpr)
				if !ok {
					continue
				}
				for _, it := range last.Items {
					k, _ := staticStrings(it.KeyExpr)
					v, _ := staticStrings(it.ValueExpr)
					if slices.Equal(k, []string{"PUSHPOOL_ROUTES"}) && len(v) == 1 {
						routes = append(routes, v[0])
					}
				}
			}
		}
		if plain != 1 || secret != 1 {
			t.Errorf("infra/gcp: google_cloud_run_v2_service.%s needs one dynamic \"env\" of plain values and one of value_source.secret_key_ref, has %d and %d", name, plain, secret)
		}
	}
	sort.Strings(routes)
	if !slices.Equal(routes, gcpRoutes) {
		t.Errorf("infra/gcp: the services set PUSHPOOL_ROUTES to %v (as the last argument of a merge with local.function_environment); want one service per route, %v", routes, gcpRoutes)
	}
}

// attrBody returns the body of body's first child block of type typ, or an
// empty body.
func attrBody(body *hclsyntax.Body, typ string) *hclsyntax.Body {
	if bodies := blocksOf(body, typ); len(bodies) > 0 {
		return bodies[0]
	}
	return &hclsyntax.Body{}
}

// expandedRefs returns the references of expr and, transitively, of the
// locals it names.
func (m *tfModule) expandedRefs(expr hcl.Expression) []string {
	seen := map[string]bool{}
	var walk func(hcl.Expression)
	walk = func(e hcl.Expression) {
		for _, r := range refs(e) {
			if seen[r] {
				continue
			}
			seen[r] = true
			if name, ok := strings.CutPrefix(r, "local."); ok {
				if le := m.local(name); le != nil {
					walk(le)
				}
			}
		}
	}
	walk(expr)
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// TestModules_FunctionSourceAgrees checks that the function's Go code names
// every variable of the module's contract: the code of functions/<dir>, the
// shared contract in functions/internal and the engine under dispatch/. The
// Lambda and Google Cloud functions exist, so for them a missing directory
// fails; Azure's is checked once functions/azure is on this branch.
func TestModules_FunctionSourceAgrees(t *testing.T) {
	t.Parallel()
	dirs := map[string]string{"aws": "lambda", "gcp": "gcp", "azure": "azure"}
	required := map[string]bool{"aws": true, "gcp": true}
	for _, c := range clouds {
		fn := filepath.Join("..", "functions", dirs[c])
		if _, err := os.Stat(fn); err != nil {
			if required[c] {
				t.Errorf("functions/%s is missing: infra/%s deploys it: %v", dirs[c], c, err)
			} else {
				t.Logf("functions/%s does not exist yet: the contract is checked on the module side only", dirs[c])
			}
			continue
		}
		src := goSource(t, fn, filepath.Join("..", "functions", "internal"), filepath.Join("..", "dispatch"))
		names := slices.Clone(contract[c])
		if c == "gcp" {
			names = append(names, gcpSecretContract...)
			names = append(names, "PUSHPOOL_ROUTES")
			names = append(names, gcpRoutes...) // the values: case "events", case "webhook"
		}
		for _, name := range names {
			if !bytes.Contains(src, []byte(`"`+name+`"`)) {
				t.Errorf("functions/%s never reads %s, which infra/%s sets", dirs[c], name, c)
			}
		}
	}
}

// goSource concatenates the non-test Go files under roots.
func goSource(t *testing.T, roots ...string) []byte {
	t.Helper()
	var src bytes.Buffer
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				b, rerr := os.ReadFile(path)
				src.Write(b)
				return rerr
			}
			return err
		})
		if err != nil {
			t.Fatalf("read %s: %v", root, err)
		}
	}
	return src.Bytes()
}

// tickPayloads are the tick bodies the functions are tested with: the
// EventBridge Scheduler input of functions/lambda and the data of the Pub/Sub
// message that functions/gcp receives from Cloud Scheduler.
var tickPayloads = map[string]func(t *testing.T) []byte{
	"aws": func(t *testing.T) []byte {
		b, err := os.ReadFile(filepath.Join("..", "functions", "lambda", "testdata", "scheduler-tick.json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	},
	"gcp": func(t *testing.T) []byte {
		b, err := os.ReadFile(filepath.Join("..", "functions", "gcp", "testdata", "pubsub-push-scheduler-tick.json"))
		if err != nil {
			t.Fatal(err)
		}
		var req struct {
			Body struct {
				Message struct {
					Data []byte `json:"data"`
				} `json:"message"`
			} `json:"body"`
		}
		if err := json.Unmarshal(b, &req); err != nil || len(req.Body.Message.Data) == 0 {
			t.Fatalf("functions/gcp/testdata/pubsub-push-scheduler-tick.json: no message data (%v)", err)
		}
		return req.Body.Message.Data
	},
}

// TestModules_TickPayload checks the scheduled tick carries exactly what the
// functions take as a tick ({"pushpool":"tick"}), as their test data has it,
// and that the scheduler sends local.tick_payload: as the EventBridge
// Scheduler target's input, or as the data of the Pub/Sub message Cloud
// Scheduler publishes (with no attributes: the function reads only the data).
// Azure's tick is a timer trigger in the package and carries no payload.
func TestModules_TickPayload(t *testing.T) {
	t.Parallel()
	ctx := &hcl.EvalContext{Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc}}
	for _, c := range []string{"aws", "gcp"} {
		m := loadModule(t, c)
		expr := m.local("tick_payload")
		if expr == nil {
			t.Errorf("infra/%s: no local.tick_payload", c)
			continue
		}
		v, diags := expr.Value(ctx)
		if diags.HasErrors() || v.Type() != cty.String {
			t.Errorf("infra/%s: local.tick_payload must be a constant JSON string: %s", c, diags.Error())
			continue
		}
		var got, want any
		if err := json.Unmarshal([]byte(v.AsString()), &got); err != nil {
			t.Errorf("infra/%s: local.tick_payload is not JSON: %v", c, err)
			continue
		}
		if err := json.Unmarshal(tickPayloads[c](t), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("infra/%s: the tick sends %s; functions/ take %v as a tick", c, v.AsString(), want)
		}
	}
	uses := map[string]struct {
		typ  string
		path []string
	}{
		"aws": {"aws_scheduler_schedule", []string{"target", "input"}},
		"gcp": {"google_cloud_scheduler_job", []string{"pubsub_target", "data"}},
	}
	for c, u := range uses {
		m := loadModule(t, c)
		blocks := m.resourceBlocks(u.typ)
		if len(blocks) == 0 {
			t.Errorf("infra/%s: no %s", c, u.typ)
		}
		for _, b := range blocks {
			if a := attrAt(b.Body, u.path...); a == nil || !slices.Contains(refs(a.Expr), "local.tick_payload") {
				t.Errorf("infra/%s: %s.%s.%s must send local.tick_payload", c, u.typ, b.Labels[1], strings.Join(u.path, "."))
			}
			if c == "gcp" && attrAt(b.Body, "pubsub_target", "attributes") != nil {
				t.Errorf("infra/gcp: %s.%s publishes attributes; functions/gcp reads only the message data", u.typ, b.Labels[1])
			}
		}
	}
}

// TestModules_LogRetention checks each module has log_retention_days and
// applies it to the function's logs.
func TestModules_LogRetention(t *testing.T) {
	t.Parallel()
	applied := map[string][2]string{
		"aws":   {"aws_cloudwatch_log_group", "retention_in_days"},
		"gcp":   {"google_logging_project_bucket_config", "retention_days"},
		"azure": {"azurerm_log_analytics_workspace", "retention_in_days"},
	}
	for _, c := range clouds {
		m := loadModule(t, c)
		b, ok := m.variables()["log_retention_days"]
		if !ok {
			t.Errorf("infra/%s: no log_retention_days variable", c)
			continue
		}
		if typ, ok := b.Body.Attributes["type"]; !ok || hcl.ExprAsKeyword(typ.Expr) != "number" {
			t.Errorf("infra/%s: log_retention_days must be a number", c)
		}
		rt, attr := applied[c][0], applied[c][1]
		used := false
		for _, r := range m.resourceBlocks(rt) {
			if a, ok := r.Body.Attributes[attr]; ok && slices.Contains(refs(a.Expr), "var.log_retention_days") {
				used = true
			}
		}
		if !used {
			t.Errorf("infra/%s: no %s sets %s = var.log_retention_days", c, rt, attr)
		}
	}
}

// TestModules_Wiring checks the pieces each module must create, by resource
// type and literal attribute values.
func TestModules_Wiring(t *testing.T) {
	t.Parallel()
	type want struct {
		typ   string
		path  []string // nil: the resource must exist
		value string   // a literal the attribute must hold (or contain, for lists and templates)
	}
	tests := map[string][]want{
		"aws": {
			{"aws_lambda_function", []string{"runtime"}, "provided.al2023"},
			{"aws_lambda_function", []string{"handler"}, "bootstrap"},
			{"aws_cloudwatch_log_group", nil, ""},
			{"aws_scheduler_schedule", []string{"target", "input"}, ""},
			{"aws_sqs_queue", []string{"redrive_policy"}, ""},
			{"aws_lambda_event_source_mapping", []string{"function_response_types"}, "ReportBatchItemFailures"},
			{"aws_cloudwatch_event_rule", []string{"event_pattern"}, "ECS Task State Change"},
			{"aws_lambda_function_url", []string{"authorization_type"}, "NONE"},
			{"aws_secretsmanager_secret", nil, ""},
		},
		"gcp": {
			{"google_cloud_run_v2_service", []string{"template", "containers", "image"}, ""},
			{"google_cloud_run_v2_service", []string{"template", "timeout"}, ""},
			{"google_cloud_scheduler_job", []string{"pubsub_target", "topic_name"}, ""},
			{"google_pubsub_subscription", []string{"dead_letter_policy", "dead_letter_topic"}, ""},
			{"google_pubsub_subscription", []string{"push_config", "oidc_token", "service_account_email"}, ""},
			{"google_cloud_tasks_queue", nil, ""},
			{"google_cloud_run_v2_service_iam_member", []string{"member"}, "allUsers"},
			{"google_secret_manager_secret", nil, ""},
			{"google_logging_project_bucket_config", nil, ""},
		},
		"azure": {
			{"azurerm_function_app_flex_consumption", []string{"runtime_name"}, "custom"},
			{"azurerm_service_plan", []string{"sku_name"}, "FC1"},
			{"azurerm_storage_queue", nil, ""},
			{"azurerm_key_vault_secret", nil, ""},
			{"azurerm_role_assignment", []string{"scope"}, ""},
			{"azurerm_log_analytics_workspace", nil, ""},
		},
	}
	for _, c := range clouds {
		m := loadModule(t, c)
		for _, w := range tests[c] {
			blocks := m.resourceBlocks(w.typ)
			if len(blocks) == 0 {
				t.Errorf("infra/%s: no %s resource", c, w.typ)
				continue
			}
			if w.path == nil {
				continue
			}
			found := false
			for _, b := range blocks {
				a := attrAt(b.Body, w.path...)
				if a == nil {
					continue
				}
				if w.value == "" || slices.ContainsFunc(literals(a.Expr), func(s string) bool { return strings.Contains(s, w.value) }) {
					found = true
				}
			}
			if !found {
				t.Errorf("infra/%s: no %s with %s holding %q", c, w.typ, strings.Join(w.path, "."), w.value)
			}
		}
	}
}

// TestModules_GCPDelivery checks how infra/gcp reaches its services, as
// functions/gcp expects: the push subscription posts to the events service's
// URL (PUSHPOOL_SELF_URL, the one wake-up tasks use) with an OIDC token;
// the Cloud Tasks queue overrides nothing (functions/gcp/queue.go creates HTTP
// tasks with their URL and token); only the webhook service is public, and
// the events service admits the account whose tokens the tasks carry.
func TestModules_GCPDelivery(t *testing.T) {
	t.Parallel()
	m := loadModule(t, "gcp")
	env, _ := m.local("contract_environment").(*hclsyntax.ObjectConsExpr)
	values := map[string]hclsyntax.Expression{}
	if env != nil {
		for _, it := range env.Items {
			if k, ok := staticStrings(it.KeyExpr); ok && len(k) == 1 {
				values[k[0]] = it.ValueExpr
			}
		}
	}
	selfURL := values["PUSHPOOL_SELF_URL"]
	if selfURL == nil || !slices.Equal(refs(selfURL), []string{"local.events_url"}) {
		t.Errorf("infra/gcp: PUSHPOOL_SELF_URL must be local.events_url, the events service's URL")
	}
	tasksSA := values["PUSHPOOL_TASKS_SERVICE_ACCOUNT"]
	if tasksSA == nil || !slices.Contains(refs(tasksSA), "google_service_account.invoker") {
		t.Errorf("infra/gcp: PUSHPOOL_TASKS_SERVICE_ACCOUNT must be google_service_account.invoker's email")
	}
	if v := values["PUSHPOOL_REQUEST_TIMEOUT_SECONDS"]; v == nil || !slices.Contains(refs(v), "var.timeout_seconds") {
		t.Errorf("infra/gcp: PUSHPOOL_REQUEST_TIMEOUT_SECONDS must be var.timeout_seconds, the services' timeout")
	}
	for _, b := range m.resourceBlocks("google_cloud_run_v2_service") {
		if a := attrAt(b.Body, "template", "timeout"); a == nil || !slices.Contains(refs(a.Expr), "var.timeout_seconds") {
			t.Errorf("infra/gcp: google_cloud_run_v2_service.%s: template.timeout must be var.timeout_seconds", b.Labels[1])
		}
	}
	for _, b := range m.resourceBlocks("google_pubsub_subscription") {
		if len(blocksOf(b.Body, "push_config")) == 0 {
			continue
		}
		if a := attrAt(b.Body, "push_config", "push_endpoint"); a == nil || !slices.Contains(refs(a.Expr), "local.events_url") {
			t.Errorf("infra/gcp: google_pubsub_subscription.%s must push to local.events_url", b.Labels[1])
		}
		if a := attrAt(b.Body, "push_config", "oidc_token", "service_account_email"); a == nil || !slices.Contains(refs(a.Expr), "google_service_account.invoker") {
			t.Errorf("infra/gcp: google_pubsub_subscription.%s must push with the invoker account's OIDC token", b.Labels[1])
		}
	}
	for _, b := range m.resourceBlocks("google_cloud_tasks_queue") {
		if len(blocksOf(b.Body, "http_target")) > 0 {
			t.Errorf("infra/gcp: google_cloud_tasks_queue.%s overrides the tasks' HTTP target; functions/gcp sets each task's URL and OIDC token itself", b.Labels[1])
		}
	}
	invokers := map[string][]string{} // service => members
	for _, b := range m.resourceBlocks("google_cloud_run_v2_service_iam_member") {
		name, member := b.Body.Attributes["name"], b.Body.Attributes["member"]
		if name == nil || member == nil {
			continue
		}
		for _, r := range refs(name.Expr) {
			if svc, ok := strings.CutPrefix(r, "google_cloud_run_v2_service."); ok {
				invokers[svc] = append(invokers[svc], append(literals(member.Expr), refs(member.Expr)...)...)
			}
		}
	}
	if !slices.Contains(invokers["webhook"], "allUsers") {
		t.Errorf("infra/gcp: the webhook service must be public (allUsers invoker): Prefect cannot present a Google identity")
	}
	if slices.Contains(invokers["events"], "allUsers") || !slices.Contains(invokers["events"], "google_service_account.invoker") {
		t.Errorf("infra/gcp: the events service's only invoker must be google_service_account.invoker, has %v", invokers["events"])
	}
}

// terraformBin finds terraform on PATH, failing loudly when it is missing.
func terraformBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("terraform is not on PATH: it is needed to check formatting and variable validation offline; install it (go install github.com/hashicorp/terraform@v1.8.5) and retry")
	}
	return bin
}

// terraform runs the terraform binary in dir with telemetry off.
func terraform(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	if cfg := os.Getenv("TF_CLI_CONFIG_FILE"); cfg != "" {
		if _, err := os.Stat(cfg); err != nil {
			cmd.Env = append(cmd.Env, "TF_CLI_CONFIG_FILE="+os.DevNull)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestTerraform_Fmt runs `terraform fmt -check -recursive` on infra/.
func TestTerraform_Fmt(t *testing.T) {
	t.Parallel()
	bin := terraformBin(t)
	if out, err := terraform(t, bin, ".", "fmt", "-check", "-recursive", "-diff", "."); err != nil {
		t.Errorf("terraform fmt -check -recursive infra: %v\n%s\nrun: terraform fmt -recursive infra", err, out)
	}
}

// TestModules_VariableValidation runs each module's variables.tf through a
// real `terraform plan` (it needs no provider), so the validation rules are
// evaluated by Terraform itself: good inputs pass, known mistakes fail with
// their message.
func TestModules_VariableValidation(t *testing.T) {
	t.Parallel()
	bin := terraformBin(t)
	base := map[string]map[string]any{
		"aws": {
			"lambda_zip_path":  "dist/lambda-arm64.zip",
			"prefect_api_url":  "https://prefect.example.com/api",
			"work_pools":       []string{"ecs-pool"},
			"ecs_cluster_arns": []string{"arn:aws:ecs:eu-west-1:123456789012:cluster/flows"},
		},
		"gcp": {
			"project_id":      "my-project-1",
			"region":          "europe-west1",
			"image":           "europe-west1-docker.pkg.dev/my-project-1/pushpool/gcp@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"prefect_api_url": "https://prefect.example.com/api",
			"work_pools":      []string{"cloud-run-pool"},
		},
		"azure": {
			"resource_group_name":     "pushpool",
			"package_zip_path":        "dist/azure-package.zip",
			"prefect_api_url":         "https://prefect.example.com/api",
			"work_pools":              []string{"aci-pool"},
			"aci_resource_group_name": "flow-runs",
		},
	}
	tests := []struct {
		cloud, name string
		vars        map[string]any
		wantErr     string // "" = the plan succeeds
	}{
		{"aws", "minimal", nil, ""},
		{"aws", "everything set", map[string]any{
			"prefect_api_key": "pnu_0123456789", "webhook_secret": strings.Repeat("k", 40),
			"ecs_task_role_arns":      []string{"arn:aws:iam::123456789012:role/flow-task"},
			"ecs_execution_role_arns": []string{"arn:aws:iam::123456789012:role/flow-exec"},
			"vpc_subnet_ids":          []string{"subnet-1"}, "vpc_security_group_ids": []string{"sg-1"},
			"queue_visibility_timeout_seconds": 600, "queue_max_concurrency": 5, "log_retention_days": 14,
			"extra_environment":    map[string]string{"PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS": "8"},
			"wake_horizon_seconds": 150, "submit_reserve_seconds": 30,
		}, ""},
		{"aws", "cron tick with a wake horizon", map[string]any{"tick_schedule_expression": "cron(0/2 * * * ? *)", "wake_horizon_seconds": 150}, ""},
		{"aws", "cron tick without a wake horizon", map[string]any{"tick_schedule_expression": "cron(0/2 * * * ? *)"}, "Set wake_horizon_seconds"},
		{"aws", "submit reserve above half the timeout", map[string]any{"timeout_seconds": 60, "submit_reserve_seconds": 40}, "at most half of timeout_seconds"},
		{"aws", "extra env sets the wake horizon", map[string]any{"extra_environment": map[string]string{"PUSHPOOL_WAKE_HORIZON_SECONDS": "600"}}, "may not set the variables the module manages"},
		{"aws", "comma in a pool name", map[string]any{"work_pools": []string{"a,b"}}, "may not be empty or contain commas"},
		{"aws", "cluster name instead of ARN", map[string]any{"ecs_cluster_arns": []string{"flows"}}, "names are not accepted"},
		{"aws", "wildcard task role", map[string]any{"ecs_task_role_arns": []string{"arn:aws:iam::123456789012:role/*"}}, "without wildcards"},
		{"aws", "key and key ARN", map[string]any{"prefect_api_key": "pnu_x", "prefect_api_key_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-abcdef"}, "not both"},
		{"aws", "visibility below timeout", map[string]any{"queue_visibility_timeout_seconds": 100}, "at least timeout_seconds"},
		{"aws", "extra env overrides the contract", map[string]any{"extra_environment": map[string]string{"PUSHPOOL_POOLS": "x"}}, "may not set the variables the module manages"},
		{"aws", "odd retention", map[string]any{"log_retention_days": 10}, "log_retention_days must be one of"},
		{"aws", "timeout above Lambda's", map[string]any{"timeout_seconds": 901}, "between 30 and 900"},
		{"aws", "VPC without security groups", map[string]any{"vpc_subnet_ids": []string{"subnet-1"}}, "at least one security group"},
		{"aws", "own task definition families", map[string]any{"ecs_task_definition_families": []string{"flows", "prefect_ecs-pool_*"}}, ""},
		{"aws", "no task definition family", map[string]any{"ecs_task_definition_families": []string{}}, "at least one family name"},
		{"aws", "every task definition family", map[string]any{"ecs_task_definition_families": []string{"*"}}, "not a pattern of wildcards only"},
		{"aws", "task definition family with a revision", map[string]any{"ecs_task_definition_families": []string{"flows:3"}}, "no \":revision\""},
		{"gcp", "minimal", nil, ""},
		{"gcp", "existing secrets", map[string]any{
			"prefect_api_key_secret_version": "projects/p/secrets/key/versions/latest",
			"webhook_secret_version":         "projects/p/secrets/hmac/versions/3",
			"job_service_account_emails":     []string{"runner@my-project-1.iam.gserviceaccount.com", "123-compute@developer.gserviceaccount.com"},
			"vpc_network":                    "default", "vpc_subnetwork": "default",
		}, ""},
		{"gcp", "timeout beyond push deadline", map[string]any{"timeout_seconds": 900}, "between 30 and 540"},
		{"gcp", "key and key version", map[string]any{"prefect_api_key": "pnu_x", "prefect_api_key_secret_version": "projects/p/secrets/k/versions/1"}, "not both"},
		{"gcp", "secret name without version", map[string]any{"webhook_secret_version": "projects/p/secrets/hmac"}, "secret version resource name"},
		{"gcp", "network without subnetwork", map[string]any{"vpc_network": "default"}, "together, or neither"},
		{"gcp", "editor role", map[string]any{"cloud_run_role": "roles/editor"}, "may not be a basic role"},
		{"gcp", "own Cloud Run role", map[string]any{"cloud_run_role": "roles/run.developer"}, ""},
		{"gcp", "source bundle instead of an image", map[string]any{"image": "dist/gcp-source.zip"}, "must be a container image reference"},
		{"gcp", "auth string and its version", map[string]any{"prefect_api_auth_string": "admin:pw", "prefect_api_auth_string_secret_version": "projects/p/secrets/a/versions/1"}, "not both"},
		{"gcp", "every five minutes", map[string]any{"tick_schedule": "*/5 * * * *"}, ""},
		{"gcp", "hourly tick without a wake horizon", map[string]any{"tick_schedule": "0 * * * *"}, "Set wake_horizon_seconds"},
		{"gcp", "hourly tick with a wake horizon", map[string]any{"tick_schedule": "0 * * * *", "wake_horizon_seconds": 3630}, ""},
		{"gcp", "extra env sets the routes", map[string]any{"extra_environment": map[string]string{"PUSHPOOL_ROUTES": "events,webhook"}}, "may not set the variables the module manages"},
		{"gcp", "extra env mounts a secret reference", map[string]any{"extra_environment": map[string]string{"PUSHPOOL_WEBHOOK_SECRET": "projects/p/secrets/s/versions/1"}}, "may not set the variables the module manages"},
		{"gcp", "submit reserve above half the timeout", map[string]any{"timeout_seconds": 60, "submit_reserve_seconds": 31}, "at most half of timeout_seconds"},
		{"azure", "minimal", nil, ""},
		{"azure", "everything set", map[string]any{
			"prefect_api_key": "pnu_0123456789", "webhook_secret": strings.Repeat("k", 40), "log_retention_days": 90,
			"prefect_api_auth_string": "admin:pw", "wake_horizon_seconds": 120, "submit_reserve_seconds": 30,
			"aci_subnet_ids":   []string{"/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/aci"},
			"aci_identity_ids": []string{"/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/runner"},
		}, ""},
		{"azure", "retention App Insights refuses", map[string]any{"log_retention_days": 45}, "log_retention_days must be one of"},
		{"azure", "memory size", map[string]any{"instance_memory_mb": 1024}, "Flex Consumption sizes"},
		{"azure", "upper-case name", map[string]any{"name": "PushPool"}, "lowercase letters"},
		{"azure", "wake horizon below the tick interval", map[string]any{"wake_horizon_seconds": 30}, "between 60 (the tick interval)"},
		{"azure", "extra env overrides the function timeout", map[string]any{"extra_environment": map[string]string{"AzureFunctionsJobHost__functionTimeout": "00:10:00"}}, "may not set the settings the module manages"},
		{"azure", "short webhook secret", map[string]any{"webhook_secret": "short"}, "at least 32 characters"},
		{"azure", "wildcard subnet", map[string]any{"aci_subnet_ids": []string{"/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/*"}}, "subnet resource IDs"},
	}
	for _, tc := range tests {
		t.Run(tc.cloud+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src, err := os.ReadFile(filepath.Join(tc.cloud, "variables.tf"))
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]any{}
			for k, v := range base[tc.cloud] {
				vars[k] = v
			}
			for k, v := range tc.vars {
				vars[k] = v
			}
			tfvars, err := json.Marshal(vars)
			if err != nil {
				t.Fatal(err)
			}
			for name, b := range map[string][]byte{"variables.tf": src, "test.tfvars.json": tfvars} {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := terraform(t, bin, dir, "init", "-input=false", "-backend=false", "-no-color"); err != nil {
				t.Fatalf("terraform init: %v\n%s", err, out)
			}
			out, err := terraform(t, bin, dir, "plan", "-input=false", "-lock=false", "-refresh=false", "-no-color", "-var-file=test.tfvars.json")
			flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " ")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("plan with %v failed: %v\n%s", tc.vars, err, out)
			case tc.wantErr != "" && err == nil:
				t.Errorf("plan with %v succeeded; want an error containing %q", tc.vars, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(flat, tc.wantErr):
				t.Errorf("plan with %v failed without %q:\n%s", tc.vars, tc.wantErr, out)
			}
		})
	}
}
