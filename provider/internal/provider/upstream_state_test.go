package provider

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"text/template"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// TestAccResource_upstreamState moves a configuration and its state from
// the prefecthq/prefect provider v3.4 to this provider: the first step
// creates one object of every resource type, then the state is replaced by
// the one that provider writes for them (testdata/upstream-v3.4, its schema
// versions and attributes, with the real ids), and the plan must be empty,
// without refresh and with it. The test's destroy then starts from the
// upgraded state.
func TestAccResource_upstreamState(t *testing.T) {
	dir := filepath.Join("testdata", "upstream-v3.4")
	cfg, err := os.ReadFile(filepath.Join(dir, "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := uniqueName(t, "up")
	vars := config.Variables{"prefix": config.StringVariable(prefix)}
	base := t.TempDir()
	// Serve the provider as registry.terraform.io/prefecthq/prefect, the
	// address in the configuration and state. Not parallel: the variable is
	// read by every test's terraform runs.
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "prefecthq")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		WorkingDir:               base,
		Steps: []resource.TestStep{
			{Config: string(cfg), ConfigVariables: vars},
			{
				PreConfig: func() {
					writeUpstreamState(t, base, filepath.Join(dir, "upstream-state.json.tmpl"), prefix)
				},
				Config:          string(cfg),
				ConfigVariables: vars,
				PlanOnly:        true,
			},
			{
				// An apply with nothing to do writes the state at this
				// provider's schema versions (terraform show needs that).
				Config:          string(cfg),
				ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// writeUpstreamState replaces the state in the test's working directory (the
// one directory terraform-plugin-testing made under base) with the template
// at tmplPath, filled in with the ids and times of the objects in it.
func writeUpstreamState(t *testing.T, base, tmplPath, prefix string) {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(base, "work*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("want one working directory under %s, got %v (%v)", base, dirs, err)
	}
	statePath := filepath.Join(dirs[0], "terraform.tfstate")
	attrs, err := stateAttributes(statePath)
	if err != nil {
		t.Fatal(err)
	}
	get := func(addr, name string) (any, error) {
		a, ok := attrs[addr]
		if !ok {
			return nil, fmt.Errorf("no %s in the state", addr)
		}
		return a[name], nil
	}
	jsonOf := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}
	funcs := template.FuncMap{
		// attr is an attribute as this provider stored it, as JSON.
		"attr": func(addr, name string) (string, error) {
			v, err := get(addr, name)
			if err != nil {
				return "", err
			}
			return jsonOf(v)
		},
		// str is a string attribute as the prefecthq/prefect provider stores
		// it: null is "".
		"str": func(addr, name string) (string, error) {
			v, err := get(addr, name)
			if err != nil {
				return "", err
			}
			if v == nil {
				v = ""
			}
			return jsonOf(v)
		},
		// ts is a time as the prefecthq/prefect provider stores it: RFC
		// 3339 in whole seconds.
		"ts": func(addr, name string) (string, error) {
			v, err := get(addr, name)
			if err != nil {
				return "", err
			}
			s, _ := v.(string)
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return "", fmt.Errorf("%s.%s: %w", addr, name, err)
			}
			return jsonOf(at.Format(time.RFC3339))
		},
	}
	tmpl, err := template.New(filepath.Base(tmplPath)).Delims("[[", "]]").Funcs(funcs).Option("missingkey=error").ParseFiles(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(statePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tmpl.Execute(f, struct{ Prefix string }{prefix}); err != nil {
		t.Fatal(err)
	}
}

// stateAttributes reads a state file's resource instances' attributes by
// address.
func stateAttributes(path string) (map[string]map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st struct {
		Resources []struct {
			Mode, Type, Name string
			Instances        []struct {
				Attributes map[string]any `json:"attributes"`
			}
		}
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]map[string]any{}
	for _, r := range st.Resources {
		if r.Mode == "managed" && len(r.Instances) == 1 {
			out[r.Type+"."+r.Name] = r.Instances[0].Attributes
		}
	}
	return out, nil
}
