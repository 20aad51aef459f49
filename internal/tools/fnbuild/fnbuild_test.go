package main

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestArtifacts_linkOnlyTheirOwnCloud builds each function as its artifact
// is built, and the provider, and reads the modules the toolchain recorded
// in each binary (go version -m): a function links its own cloud's SDK and
// no other, the ECS-only pushpool command AWS only, the provider none; the
// all-in-one builds link all three, so the check can tell.
func TestArtifacts_linkOnlyTheirOwnCloud(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vs := variants()
	var wg sync.WaitGroup
	for i, v := range vs {
		if v.own == nil && v.tags != "lambda.norpc,pushpool_all" && v.pkg != "./functions/pushpool" {
			continue // the all-in-one builds but one: nothing new to learn
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			bin := filepath.Join(dir, filepath.Base(v.pkg)+string(rune('a'+i)))
			if err := goBuildTo(t.Context(), root, v.pkg, v.tags, bin); err != nil {
				t.Error(err)
				return
			}
			linked, err := linkedClouds(bin)
			if err != nil {
				t.Error(err)
				return
			}
			if v.own == nil {
				if want := []string{"aws", "azure", "google"}; !slices.Equal(linked, want) {
					t.Errorf("%s links %v; want %v", v.name, linked, want)
				}
				return
			}
			if err := v.checkOwn(linked); err != nil {
				t.Error(err)
			}
			if len(v.own) > 0 && !slices.Equal(linked, v.own) {
				t.Errorf("%s links %v; want its own cloud %v", v.name, linked, v.own)
			}
			t.Logf("%s links %v", v.name, linked)
		}()
	}
	wg.Wait()
}
