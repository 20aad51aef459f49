package dispatch

import (
	"slices"
	"strings"
	"testing"
)

func TestTemplateEnv_allowed(t *testing.T) {
	env := map[string]string{
		"AWS_REGION": "eu-west-1", "IMAGE_TAG": "v1", "TEAM_NAME": "data", "OTHER": "x",
		"AWS_SECRET_ACCESS_KEY": "s", "PREFECT_API_KEY": "pnu_k", "COPIED_KEY_VALUE": "pnu_k",
		"MY_DB_PASSWORD": "p", "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountKey=k",
		"PUSHPOOL_WEBHOOK_SECRET": "w", "GITHUB_TOKEN": "g", "PREFECT_CLIENT_CUSTOM_HEADERS": `{"Authorization":"Bearer t"}`,
	}
	e := templateEnv{lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		allow: []string{"AWS_*", "IMAGE_TAG", "TEAM_*", "*_PASSWORD", "Azure*", "PUSHPOOL_*", "GITHUB_*", "PREFECT_*", "COPIED_*"}, secrets: []string{"pnu_k"}}
	tests := []struct {
		name, want, refusal string
	}{
		{"AWS_REGION", "eu-west-1", ""},
		{"IMAGE_TAG", "v1", ""},
		{"TEAM_NAME", "data", ""},
		{"TEAM_UNSET", "", ""},
		{"OTHER", "", "not in PUSHPOOL_TEMPLATE_ENV"},
		{"AWS_SECRET_ACCESS_KEY", "", "credentials"},
		{"PREFECT_API_KEY", "", "credentials"},
		{"PREFECT_CLIENT_CUSTOM_HEADERS", "", "credentials"},
		{"MY_DB_PASSWORD", "", "credentials"},
		{"AzureWebJobsStorage", "", "credentials"},
		{"PUSHPOOL_WEBHOOK_SECRET", "", "credentials"},
		{"GITHUB_TOKEN", "", "credentials"},
		{"COPIED_KEY_VALUE", "", "its value is one of the dispatcher's credentials"},
	}
	refused := &envRefusals{}
	read := e.reader(refused)
	for _, tt := range tests {
		if got, _ := read(tt.name); got != tt.want {
			t.Errorf("{{ $%s }} = %q; want %q", tt.name, got, tt.want)
		}
	}
	lines := refused.lines("p")
	for _, tt := range tests {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "{{ $"+tt.name+" }}") })
		switch {
		case tt.refusal == "" && i >= 0:
			t.Errorf("%s was logged as refused: %s", tt.name, lines[i])
		case tt.refusal != "" && (i < 0 || !strings.Contains(lines[i], tt.refusal)):
			t.Errorf("%s: want a refusal saying %q in %q", tt.name, tt.refusal, lines)
		}
	}
	for _, l := range lines {
		for _, v := range []string{"pnu_k", "Bearer", "AccountKey"} {
			if strings.Contains(l, v) {
				t.Errorf("a refusal line holds a value: %s", l)
			}
		}
	}
}

func TestParseTemplateEnv(t *testing.T) {
	got, err := ParseTemplateEnv(" IMAGE_TAG, TEAM_*\tBUILD_?  ")
	if err != nil || !slices.Equal(got, []string{"IMAGE_TAG", "TEAM_*", "BUILD_?"}) {
		t.Errorf("ParseTemplateEnv = %q, %v", got, err)
	}
	if got, err := ParseTemplateEnv(""); err != nil || got == nil || len(got) != 0 {
		t.Errorf("an empty list = %#v, %v; want empty and not nil (none allowed)", got, err)
	}
	if _, err := ParseTemplateEnv("TEAM_[a"); err == nil || !strings.Contains(err.Error(), `"TEAM_[a"`) || !strings.Contains(err.Error(), EnvTemplateEnv) {
		t.Errorf("a bad glob: %v; want an error naming it and the variable", err)
	}
	if err := (Config{TemplateEnv: []string{"[x"}}).Validate(); err == nil {
		t.Error("Validate took a bad glob")
	}
}

func TestDefaultTemplateEnv_holdsNoCredential(t *testing.T) {
	for _, name := range DefaultTemplateEnv {
		if isCredential(name) {
			t.Errorf("DefaultTemplateEnv lists %s, a credential", name)
		}
	}
}
