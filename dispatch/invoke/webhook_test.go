package invoke

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"flow_run_id":"8d1c5c1e-8d3e-4a4e-9b1e-1f2a3b4c5d6e"}`)
	now := time.Unix(1_796_212_800, 0)
	good := Sign(secret, body, now)
	tests := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		want   string // "" means accepted
	}{
		{"signed", secret, body, good, ""},
		{"signed a minute ago", secret, body, Sign(secret, body, now.Add(-time.Minute)), ""},
		{"two signatures, one good (secret rotation)", secret, body, good + ",v1=" + strings.Repeat("ab", 32), ""},
		{"unsigned", secret, body, "", "unsigned request"},
		{"no secret configured", nil, body, good, "no webhook secret is configured"},
		{"body changed", secret, append([]byte(" "), body...), good, "does not match"},
		{"other secret", []byte("other"), body, good, "does not match"},
		{"stale", secret, body, Sign(secret, body, now.Add(-6*time.Minute)), "more than the 5m0s allowed"},
		{"from the future", secret, body, Sign(secret, body, now.Add(6*time.Minute)), "more than the 5m0s allowed"},
		{"no timestamp", secret, body, "v1=" + strings.Repeat("ab", 32), "malformed"},
		{"not hex", secret, body, "t=1796212800,v1=zz", "malformed"},
		{"timestamp moved", secret, body, strings.Replace(good, "t=1796212800", "t=1796212801", 1), "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.body, tt.header, now, DefaultMaxAge)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v; want accepted", err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify = %v; want ErrUnauthorized mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), good[strings.Index(good, "v1=")+3:]) {
				t.Errorf("the error shows the expected signature: %v", err)
			}
		})
	}
}

func TestParseAnnouncement(t *testing.T) {
	const run = "8d1c5c1e-8d3e-4a4e-9b1e-1f2a3b4c5d6e"
	tests := []struct {
		name, body string
		want       Announcement
		err        string
	}{
		{"flat", `{"flow_run_id":"` + run + `","event_id":"e1","event":"prefect.flow-run.Scheduled","actor":"me"}`,
			Announcement{FlowRunID: run, Trigger: TriggerJSON{EventID: "e1", Event: "prefect.flow-run.Scheduled", Actor: "me"}}, ""},
		{"event about the run", `{"id":"e2","event":"prefect.flow-run.Scheduled","resource":{"prefect.resource.id":"prefect.flow-run.` + run + `"},
			"related":[{"prefect.resource.id":"prefect-cloud.user.u1","prefect.resource.role":"actor"}]}`,
			Announcement{FlowRunID: run, Trigger: TriggerJSON{EventID: "e2", Event: "prefect.flow-run.Scheduled", Actor: "prefect-cloud.user.u1"}}, ""},
		{"run as related resource", `{"id":"e3","event":"prefect.automation.action.executed","resource":{"prefect.resource.id":"prefect.automation.a1"},
			"related":[{"prefect.resource.id":"prefect.flow-run.` + run + `","prefect.resource.role":"flow-run"}]}`,
			Announcement{FlowRunID: run, Trigger: TriggerJSON{EventID: "e3", Event: "prefect.automation.action.executed"}}, ""},
		{"no run", `{"id":"e4","event":"prefect.deployment.updated","resource":{"prefect.resource.id":"prefect.deployment.d1"}}`, Announcement{}, "names no flow run"},
		{"not json", `flow_run_id=1`, Announcement{}, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAnnouncement([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v; want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseAnnouncement = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestDecodeMessage(t *testing.T) {
	good := Message{Pool: "p", FlowRunIDs: []string{"a", "b"}, Trigger: &TriggerJSON{EventID: "e"}}
	tests := []struct {
		name, body string
		notOurs    bool
		err        string
	}{
		{"round trip", string(good.Encode()), false, ""},
		{"ECS event on the same queue", `{"detail-type":"ECS Task State Change","source":"aws.ecs"}`, true, "not a pushpool message"},
		{"not json", `hello`, true, "not a pushpool message"},
		{"other version", `{"kind":"pushpool.wake/v9","pool":"p","flow_run_ids":["a"]}`, false, "deploy the same pushpool version"},
		{"no pool", `{"kind":"pushpool.wake/v1","flow_run_ids":["a"]}`, false, "names no work pool"},
		{"no runs", `{"kind":"pushpool.wake/v1","pool":"p"}`, false, "names no flow run"},
		{"empty id", `{"kind":"pushpool.wake/v1","pool":"p","flow_run_ids":[" "]}`, false, "empty flow run id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeMessage([]byte(tt.body))
			if tt.err == "" {
				if err != nil || m.Pool != "p" || len(m.FlowRunIDs) != 2 || m.Trigger == nil || m.Trigger.EventID != "e" {
					t.Fatalf("DecodeMessage = %+v, %v; want the message back", m, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || errors.Is(err, ErrNotMessage) != tt.notOurs {
				t.Fatalf("err = %v; want %q (not ours: %v)", err, tt.err, tt.notOurs)
			}
		})
	}
}
