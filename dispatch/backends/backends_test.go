package backends_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

func TestSet_For(t *testing.T) {
	var built []string
	kind := func(f pooltype.Family, err error) backends.Kind {
		return backends.Kind{Family: f, New: func(_ context.Context, pool prefect.WorkPool, s backends.Settings) (dispatch.Backend, error) {
			if s.Logger == nil {
				t.Error("New got a nil logger")
			}
			built = append(built, string(f)+" for "+pool.Name)
			return nil, err
		}}
	}
	set := backends.Set{kind(pooltype.ECS, nil), kind(pooltype.Process, errors.New("no state dir"))}
	tests := []struct {
		pool, poolType string
		built          string
		wantErr        []string
	}{
		{"a", "ecs", "ecs for a", nil},
		{"b", "ecs:push", "ecs for b", nil},
		{"c", "process", "process for c", []string{`work pool "c" (type process): no state dir`}},
		{"d", "cloud-run-v2", "", []string{`work pool "d" has type "cloud-run-v2", which this build does not start`, "ecs, ecs:push, process", "pushpool command"}},
		{"e", "kubernetes", "", []string{`work pool "e" has type "kubernetes", which pushpool cannot start`, "azure-container-instance, azure-container-instance:push, cloud-run-v2"}},
	}
	for _, tt := range tests {
		built = nil
		_, err := set.For(t.Context(), prefect.WorkPool{Name: tt.pool, Type: tt.poolType}, backends.Settings{})
		if got := strings.Join(built, ","); got != tt.built {
			t.Errorf("%s (%s): built %q; want %q", tt.pool, tt.poolType, got, tt.built)
		}
		if (err != nil) != (tt.wantErr != nil) {
			t.Errorf("%s (%s): error %v; want one containing %q", tt.pool, tt.poolType, err, tt.wantErr)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s (%s): error %q; want it to contain %q", tt.pool, tt.poolType, err, w)
			}
		}
	}
}

func TestSettings_PositiveDuration(t *testing.T) {
	env := map[string]string{"OK": " 90s ", "ZERO": "0s", "BAD": "ten"}
	s := backends.Settings{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	if d, err := s.PositiveDuration("OK"); err != nil || d.Seconds() != 90 {
		t.Errorf("OK: %v, %v; want 1m30s", d, err)
	}
	if d, err := s.PositiveDuration("UNSET"); err != nil || d != 0 {
		t.Errorf("UNSET: %v, %v; want 0, nil", d, err)
	}
	for _, name := range []string{"ZERO", "BAD"} {
		if _, err := s.PositiveDuration(name); err == nil || !strings.Contains(err.Error(), name+"=") {
			t.Errorf("%s: error %v; want one naming the variable", name, err)
		}
	}
}
