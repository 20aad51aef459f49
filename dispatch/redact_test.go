package dispatch

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestSecretSet_redact(t *testing.T) {
	tests := []struct {
		name    string
		data    map[string]any // a block document's data
		fields  []string       // its secret fields
		extra   []string       // other secrets (the dispatcher's API key)
		in, out map[string]any // job configuration before and after
	}{
		{
			name: "secret field value anywhere, whole or inside text",
			data: map[string]any{"value": "hunter2-long"}, fields: []string{"value"},
			in:  map[string]any{"command": "run --password hunter2-long", "labels": map[string]any{"x": "hunter2-long"}},
			out: map[string]any{"command": "run --password " + Redacted, "labels": map[string]any{"x": Redacted}},
		},
		{
			name: "a short secret only where it is the whole value",
			data: map[string]any{"value": "abc"}, fields: []string{"value"},
			in:  map[string]any{"name": "abc", "command": "abcdef"},
			out: map[string]any{"name": Redacted, "command": "abcdef"},
		},
		{
			name:   "wildcard and nested secret fields; other fields stay",
			data:   map[string]any{"user": "app", "headers": map[string]any{"a": "token-aaaaaa", "b": "token-bbbbbb"}, "creds": map[string]any{"password": "pw-123456"}},
			fields: []string{"headers.*", "creds.password"},
			in:     map[string]any{"args": []any{"token-aaaaaa", "token-bbbbbb", "pw-123456", "app"}},
			out:    map[string]any{"args": []any{Redacted, Redacted, Redacted, "app"}},
		},
		{
			name:  "env variables named like secrets, and the dispatcher's own key",
			extra: []string{"pnu_dispatcher_key"},
			in: map[string]any{"env": map[string]any{"AWS_SECRET_ACCESS_KEY": "x", "GITHUB_TOKEN": "y", "EMPTY_TOKEN": "", "UNSET_KEY": nil,
				"HOME": "/root", "ECHO": "pnu_dispatcher_key"}},
			out: map[string]any{"env": map[string]any{"AWS_SECRET_ACCESS_KEY": Redacted, "GITHUB_TOKEN": Redacted, "EMPTY_TOKEN": "", "UNSET_KEY": nil,
				"HOME": "/root", "ECHO": Redacted}},
		},
		{
			name: "secret env values copied elsewhere by the template (ECS overrides, ACI env lists)",
			in: map[string]any{
				"env":              map[string]any{"DB_PASSWORD": "hunter2-long", "HOME": "/root"},
				"task_run_request": map[string]any{"overrides": map[string]any{"containerOverrides": []any{map[string]any{"environment": map[string]any{"DB_PASSWORD": "hunter2-long", "HOME": "/root"}}}}},
				"arm_template":     map[string]any{"environmentVariables": []any{map[string]any{"name": "API_TOKEN", "value": "tok-999999"}, map[string]any{"name": "TZ", "value": "UTC"}}},
				"command":          "echo tok-999999",
			},
			out: map[string]any{
				"env":              map[string]any{"DB_PASSWORD": Redacted, "HOME": "/root"},
				"task_run_request": map[string]any{"overrides": map[string]any{"containerOverrides": []any{map[string]any{"environment": map[string]any{"DB_PASSWORD": Redacted, "HOME": "/root"}}}}},
				"arm_template":     map[string]any{"environmentVariables": []any{map[string]any{"name": "API_TOKEN", "value": Redacted}, map[string]any{"name": "TZ", "value": "UTC"}}},
				"command":          "echo " + Redacted,
			},
		},
		{
			name: "numbers and booleans are kept",
			in:   map[string]any{"cpu": json.Number("1024"), "stream_output": true},
			out:  map[string]any{"cpu": json.Number("1024"), "stream_output": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &secretSet{}
			s.addFields(tt.data, tt.fields)
			for _, v := range tt.extra {
				s.add(v)
			}
			s.addSecretEnv(tt.in, "")
			got := s.redactor().redact(tt.in, "")
			if !reflect.DeepEqual(got, tt.out) {
				t.Errorf("redact =\n  %#v\nwant\n  %#v", got, tt.out)
			}
		})
	}
}
