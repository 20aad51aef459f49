package fnapp

import (
	"strings"
	"testing"
	"time"
)

func TestFromEnv_templateEnv(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  []string
	}{{"", []string{}}, {" IMAGE_TAG, TEAM_* ", []string{"IMAGE_TAG", "TEAM_*"}}} {
		env := map[string]string{"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PUSHPOOL_POOLS": "p", "PUSHPOOL_TEMPLATE_ENV": tt.value}
		s, err := FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil || s.TemplateEnv == nil || strings.Join(s.TemplateEnv, "|") != strings.Join(tt.want, "|") {
			t.Errorf("PUSHPOOL_TEMPLATE_ENV=%q: TemplateEnv %#v, %v; want %q (set and empty is none, not the default)", tt.value, s.TemplateEnv, err, tt.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	base := map[string]string{"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PUSHPOOL_POOLS": " ecs-push , spot ,"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want string // error text; "" means valid
	}{
		{"defaults", base, ""},
		{"no API URL", map[string]string{"PUSHPOOL_POOLS": "p"}, "PREFECT_API_URL is not set"},
		{"no pools", with("PUSHPOOL_POOLS", " , "), "PUSHPOOL_POOLS is not set"},
		{"bad shard size", with("PUSHPOOL_SHARD_SIZE", "0"), `PUSHPOOL_SHARD_SIZE is "0"`},
		{"bad seconds", with("PUSHPOOL_WAKE_HORIZON_SECONDS", "soon"), `PUSHPOOL_WAKE_HORIZON_SECONDS is "soon"`},
		{"bad headers", with("PREFECT_CLIENT_CUSTOM_HEADERS", "x"), "PREFECT_CLIENT_CUSTOM_HEADERS must be a JSON object"},
		{"bad template env", with("PUSHPOOL_TEMPLATE_ENV", "IMAGE_TAG,TEAM_[x"), `PUSHPOOL_TEMPLATE_ENV: "TEAM_[x" is not a name or glob`},
		{"bad run labels", with("PUSHPOOL_RUN_LABELS", "maybe"), `PUSHPOOL_RUN_LABELS is "maybe"; it must be true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v; want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Pools) != 2 || s.Pools[0] != "ecs-push" || s.Pools[1] != "spot" || s.ShardSize != 20 ||
				s.Lookahead != 10*time.Second || s.WakeHorizon != 90*time.Second || s.SubmitReserve != 20*time.Second || s.WorkerName != "pushpool-function" {
				t.Errorf("settings = %+v; want the two pools and the documented defaults", s)
			}
			if s.TemplateEnv != nil {
				t.Errorf("TemplateEnv = %q with PUSHPOOL_TEMPLATE_ENV unset; want nil (the default list)", s.TemplateEnv)
			}
			if s.NoRunLabels {
				t.Error("NoRunLabels with PUSHPOOL_RUN_LABELS unset; want runs labelled")
			}
		})
	}
}

// TestFromEnv_runLabels: PUSHPOOL_RUN_LABELS=false (or 0, off, no) stops
// labelling runs; true or unset labels them.
func TestFromEnv_runLabels(t *testing.T) {
	for _, tt := range []struct {
		value        string
		wantNoLabels bool
	}{{"false", true}, {"0", true}, {" Off ", true}, {"true", false}, {"", false}} {
		env := map[string]string{"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PUSHPOOL_POOLS": "p", "PUSHPOOL_RUN_LABELS": tt.value}
		s, err := FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil || s.NoRunLabels != tt.wantNoLabels {
			t.Errorf("PUSHPOOL_RUN_LABELS=%q: NoRunLabels %t, %v; want %t", tt.value, s.NoRunLabels, err, tt.wantNoLabels)
		}
	}
}
