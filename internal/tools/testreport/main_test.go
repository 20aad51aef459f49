package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	stream := strings.Join([]string{
		`{"Action":"output","Package":"p","Output":"pushpool-env: Prefect 3.9.1 server at http://x/api\n"}`,
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"pass","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: boom\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB"}`,
		`{"Action":"output","Package":"p","Test":"TestB/sub","Output":"    b_test.go:12: sub broke\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB/sub"}`,
		`{"Action":"skip","Package":"p","Test":"TestC"}`,
		`{"Action":"fail","Package":"p","Elapsed":1.5}`,
	}, "\n")
	tests := []struct {
		name     string
		noSkips  bool
		wantCode int
		want     []string
	}{
		{"reports", false, 1, []string{"FAIL p 1.5s", "pushpool-env: Prefect 3.9.1", "=== FAIL p/TestB", "boom", "sub broke", "skipped: p/TestC", "1 passed, 1 failed, 1 skipped"}},
		{"no skips", true, 1, []string{"tests were skipped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(strings.NewReader(stream), &out, tt.noSkips); code != tt.wantCode {
				t.Errorf("code = %d, want %d", code, tt.wantCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestRun_skipFailsOnlyUnderNoSkips(t *testing.T) {
	t.Parallel()
	stream := `{"Action":"skip","Package":"p","Test":"TestC"}` + "\n" + `{"Action":"pass","Package":"p","Test":"TestD"}`
	var out bytes.Buffer
	if code := run(strings.NewReader(stream), &out, false); code != 0 {
		t.Fatalf("code = %d without -no-skips, want 0:\n%s", code, out.String())
	}
}
