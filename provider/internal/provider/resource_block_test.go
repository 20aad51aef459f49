package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

func blockConfig(name, data string) string {
	return fmt.Sprintf(`
resource "prefect_block" "test" {
  name      = %q
  type_slug = "secret"
  data      = %s
}

data "prefect_block" "by_id" {
  id = prefect_block.test.id
}

data "prefect_block" "by_name" {
  type_slug = "secret"
  name      = prefect_block.test.name
}
`, name, data)
}

// checkJSON checks that a JSON attribute is semantically equal to want.
func checkJSON(addr, attr, want string) resource.TestCheckFunc {
	return resource.TestCheckResourceAttrWith(addr, attr, func(got string) error {
		if !jsonattr.Equal(got, want) {
			return fmt.Errorf("%s.%s = %s; want %s", addr, attr, got, want)
		}
		return nil
	})
}

// checkBlockData checks the data the server stores for a block.
func checkBlockData(id *string, want string) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		doc, err := c.ReadBlockDocument(context.Background(), *id)
		if err != nil {
			return err
		}
		got, _ := jsonattr.Encode(doc.DataWithReferences())
		if !jsonattr.Equal(got, want) {
			return fmt.Errorf("server data of block %s = %s; want %s", *id, got, want)
		}
		return nil
	}
}

func TestAccResource_block(t *testing.T) {
	name := uniqueName(t, "tok")
	addr := "prefect_block.test"
	first := `jsonencode({ value = "s3cr3t", extra = { n = 1.5, list = [1, 2] } })`
	firstJSON := `{"value": "s3cr3t", "extra": {"n": 1.50, "list": [1, 2]}}`
	second := `jsonencode({ value = "rotated" })`
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:      blockConfig("Not_Valid", first),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`lowercase letters, digits and dashes`),
			},
			{
				Config:           blockConfig(name, first),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
					checkJSON(addr, "data", firstJSON),
					resource.TestCheckResourceAttrSet(addr, "created"),
					checkBlockData(&id, firstJSON),
					resource.TestCheckResourceAttrPair("data.prefect_block.by_id", "id", addr, "id"),
					checkJSON("data.prefect_block.by_id", "data", firstJSON),
					resource.TestCheckResourceAttrPair("data.prefect_block.by_name", "id", addr, "id"),
					resource.TestCheckResourceAttr("data.prefect_block.by_id", "name", name),
					resource.TestCheckResourceAttr("data.prefect_block.by_id", "type_slug", "secret"),
					checkJSON("data.prefect_block.by_name", "data", firstJSON),
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateId: "secret/" + name},
			{
				Config: blockConfig(name, first), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: "secret/" + name,
			},
			{
				// New data in place; the key removed from the configuration is removed from the block.
				Config: blockConfig(name, second),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrWith(addr, "id", func(v string) error {
						if v != id {
							return fmt.Errorf("id %s after update; want %s (in place)", v, id)
						}
						return nil
					}),
					checkBlockData(&id, `{"value": "rotated"}`),
				),
			},
			{
				PreConfig: outOfBand(t, "change the block", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateBlockDocument(ctx, id, prefect.BlockDocumentUpdate{Data: map[string]any{"value": "from-the-ui", "added": true}})
				}),
				Config: blockConfig(name, second),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkBlockData(&id, `{"value": "rotated"}`),
			},
			{
				PreConfig: outOfBand(t, "delete the block", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteBlockDocument(ctx, id)
				}),
				Config: blockConfig(name, second),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
			},
		},
	})
}

func blockReferenceConfig(creds, bucket, bucketName string) string {
	return fmt.Sprintf(`
resource "prefect_block" "creds" {
  name      = %q
  type_slug = "aws-credentials"
  data = jsonencode({
    aws_access_key_id     = "AKIAEXAMPLE"
    aws_secret_access_key = "s3cr3t"
    region_name           = "eu-west-1"
  })
}

resource "prefect_block" "bucket" {
  name      = %q
  type_slug = "s3-bucket"
  data = jsonencode({
    bucket_name = %q
    credentials = { "$ref" = { block_document_id = prefect_block.creds.id } }
  })
}

data "prefect_block" "bucket" {
  id = prefect_block.bucket.id
}
`, creds, bucket, bucketName)
}

// TestAccResource_blockReference: the server answers a block that references
// another with the referenced block's data filled in; neither the plan after
// apply nor an import may see that as a change.
func TestAccResource_blockReference(t *testing.T) {
	creds, bucket := uniqueName(t, "creds"), uniqueName(t, "bucket")
	addr := "prefect_block.bucket"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:           blockReferenceConfig(creds, bucket, "data"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
					// The data source shows the data as flows load it: hydrated.
					resource.TestCheckResourceAttrWith("data.prefect_block.bucket", "data", func(v string) error {
						d, err := jsonattr.DecodeObject(v)
						if err != nil {
							return err
						}
						if c, _ := d["credentials"].(map[string]any); c["aws_secret_access_key"] != "s3cr3t" {
							return fmt.Errorf("data source data = %s; want the credentials filled in", v)
						}
						return nil
					}),
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: "prefect_block.creds", ImportState: true, ImportStateVerify: true},
			{
				Config: blockReferenceConfig(creds, bucket, "data"), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: "s3-bucket/" + bucket,
			},
			{
				Config: blockReferenceConfig(creds, bucket, "data-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
			},
			{
				// The reference replaced by inline data outside Terraform is drift.
				PreConfig: outOfBand(t, "inline the credentials", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateBlockDocument(ctx, id, prefect.BlockDocumentUpdate{Data: map[string]any{
						"bucket_name": "data-2", "credentials": map[string]any{"aws_access_key_id": "OTHER"}}})
				}),
				Config: blockReferenceConfig(creds, bucket, "data-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
			},
		},
	})
}

func blockWriteOnlyConfig(name, value string, version int) string {
	return fmt.Sprintf(`
resource "prefect_block" "test" {
  name            = %q
  type_slug       = "secret"
  data_wo         = jsonencode({ value = %q })
  data_wo_version = %d
}
`, name, value, version)
}

func TestAccResource_blockWriteOnly(t *testing.T) {
	name := uniqueName(t, "wo")
	addr := "prefect_block.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		Steps: []resource.TestStep{
			{
				Config:           blockWriteOnlyConfig(name, "v1", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
					resource.TestCheckNoResourceAttr(addr, "data"),
					resource.TestCheckNoResourceAttr(addr, "data_wo"),
					checkBlockData(&id, `{"value": "v1"}`),
				),
			},
			{
				// A new write-only value alone is invisible to Terraform: nothing is written.
				Config:           blockWriteOnlyConfig(name, "v2", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: empty},
				Check:            checkBlockData(&id, `{"value": "v1"}`),
			},
			{
				Config: blockWriteOnlyConfig(name, "v2", 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(addr, "data"),
					checkBlockData(&id, `{"value": "v2"}`),
				),
			},
			{
				// An import cannot know the configuration uses data_wo, so it reads
				// the data into state, and data_wo_version exists only in configuration.
				ResourceName: addr, ImportState: true, ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{"data", "data_wo_version"},
			},
			{
				// Out-of-band changes are not detected for data_wo (no data in
				// state); a version bump writes the configured value back.
				PreConfig: outOfBand(t, "change the block", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateBlockDocument(ctx, id, prefect.BlockDocumentUpdate{Data: map[string]any{"value": "ui"}})
				}),
				Config: blockWriteOnlyConfig(name, "v2", 3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkBlockData(&id, `{"value": "v2"}`),
			},
			{
				PreConfig: outOfBand(t, "delete the block", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteBlockDocument(ctx, id)
				}),
				Config: blockWriteOnlyConfig(name, "v3", 3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.TestCheckResourceAttrWith(addr, "id", func(v string) error {
					return checkBlockData(&v, `{"value": "v3"}`)(nil)
				}),
			},
		},
	})
}

func TestBlock_keepMaskedSecrets(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		prior, server, want string
		fields              []string
	}{
		"server masks a secret": {
			prior: `{"value": "s3cr3t"}`, server: `{"value": "********"}`, want: `{"value": "s3cr3t"}`, fields: []string{"value"},
		},
		"configuration holds the mask": {
			prior: `{"value": "********"}`, server: `{"value": "s3cr3t"}`, want: `{"value": "********"}`, fields: []string{"value"},
		},
		"mask with a visible tail": {
			prior: `{"a": {"key": "abcdefghijkl"}}`, server: `{"a": {"key": "****ijkl"}}`, want: `{"a": {"key": "abcdefghijkl"}}`, fields: []string{"a.key"},
		},
		"wildcard": {
			prior:  `{"headers": {"x": "1", "y": "2"}}`,
			server: `{"headers": {"x": "********", "y": "3"}}`,
			want:   `{"headers": {"x": "1", "y": "3"}}`, fields: []string{"headers.*"},
		},
		"a real change of a secret is kept": {
			prior: `{"value": "old"}`, server: `{"value": "new"}`, want: `{"value": "new"}`, fields: []string{"value"},
		},
		"not a secret field": {
			prior: `{"value": "x"}`, server: `{"value": "********"}`, want: `{"value": "********"}`, fields: []string{"other"},
		},
		"missing from prior": {
			prior: `{}`, server: `{"value": "********"}`, want: `{"value": "********"}`, fields: []string{"value"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			prior, _ := jsonattr.DecodeObject(tt.prior)
			server, _ := jsonattr.DecodeObject(tt.server)
			keepMaskedSecrets(prior, server, tt.fields)
			got, _ := jsonattr.Encode(server)
			if !jsonattr.Equal(got, tt.want) {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}
