package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

func blockTypeConfig(name, slug, body string) string {
	return fmt.Sprintf(`
resource "prefect_block_type" "test" {
  name = %q
  slug = %q
  %s
}
`, name, slug, body)
}

// extClient is a client of the test server's block types and schemas.
func extClient(t *testing.T) *prefect.Client {
	t.Helper()
	c, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkBlockTypeOnServer reads the block type of the state from the server.
func checkBlockTypeOnServer(t *testing.T, check func(prefect.BlockType) error) resource.TestCheckFunc {
	return func(s *terraformState) error {
		bt, err := extClient(t).ReadBlockTypeByID(context.Background(), s.RootModule().Resources["prefect_block_type.test"].Primary.ID)
		if err != nil {
			return err
		}
		return check(bt)
	}
}

// TestAccResource_blockType walks a block type through the cases where the
// prefecthq/prefect provider's block type fails on a self-hosted server: unset
// optional attributes (it stores "" where the server has null) and the HTML
// escaping the server applies on create; then import, update, clearing,
// drift, replacement, and a block of the type.
func TestAccResource_blockType(t *testing.T) {
	name := uniqueName(t, "bt")
	slug := name
	addr := "prefect_block_type.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	// Characters the server escapes on create: & < >.
	const markdown = `description  = "Warehouse <b>DSN</b> & credentials"
  code_example = <<-EOT
    >>> from acme import Warehouse
    >>> Warehouse.load("prod") if 1 < 2 else None
  EOT`
	const updated = `logo_url          = "https://example.com/logo.png"
  documentation_url = "https://example.com/docs"
  description       = "Now & then"
  code_example      = "x = 1"`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:      blockTypeConfig("Prefect Thing", slug, ""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Reserved block type name`),
			},
			{
				Config:      blockTypeConfig(name, "Not_A_Slug", ""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`must contain only lowercase letters, numbers and dashes`),
			},
			{
				// Name and slug only: the optional attributes stay null.
				Config:           blockTypeConfig(name, slug, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(addr, "description"),
					resource.TestCheckNoResourceAttr(addr, "logo_url"),
					resource.TestCheckResourceAttr(addr, "is_protected", "false"),
					checkBlockTypeOnServer(t, func(bt prefect.BlockType) error {
						if bt.Name != name || bt.Slug != slug || bt.Description != nil || bt.LogoURL != nil {
							return fmt.Errorf("server block type = %+v", bt)
						}
						return nil
					}),
				),
			},
			{
				// Replaced by a block type created with Markdown the server escapes.
				Config: blockTypeConfig(name+"-2", slug+"-2", markdown),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "description", "Warehouse <b>DSN</b> & credentials"),
					checkBlockTypeOnServer(t, func(bt prefect.BlockType) error {
						if want := "Warehouse &lt;b&gt;DSN&lt;/b&gt; &amp; credentials"; derefString(bt.Description) != want {
							return fmt.Errorf("server description = %q, want the escaped %q", derefString(bt.Description), want)
						}
						return nil
					}),
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateId: slug + "-2"},
			{
				Config: blockTypeConfig(name+"-2", slug+"-2", updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkBlockTypeOnServer(t, func(bt prefect.BlockType) error {
					if derefString(bt.Description) != "Now & then" || derefString(bt.LogoURL) != "https://example.com/logo.png" ||
						derefString(bt.CodeExample) != "x = 1" || derefString(bt.DocumentationURL) != "https://example.com/docs" {
						return fmt.Errorf("server block type after update = %+v", bt)
					}
					return nil
				}),
			},
			{
				// Changed outside Terraform: put back.
				PreConfig: func() {
					err := extClient(t).SetBlockType(context.Background(), mustBlockTypeID(t, slug+"-2"), prefect.BlockTypeSettings{
						Description: ptr("changed in the UI"),
					})
					if err != nil {
						t.Fatal(err)
					}
				},
				Config: blockTypeConfig(name+"-2", slug+"-2", updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
			},
			{
				// Unset: cleared on the server.
				Config:           blockTypeConfig(name+"-2", slug+"-2", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: checkBlockTypeOnServer(t, func(bt prefect.BlockType) error {
					if bt.Description != nil || bt.LogoURL != nil || bt.CodeExample != nil || bt.DocumentationURL != nil {
						return fmt.Errorf("server block type after clearing = %+v", bt)
					}
					return nil
				}),
			},
		},
	})
}

// mustBlockTypeID reads the id of the block type with slug.
func mustBlockTypeID(t *testing.T, slug string) string {
	t.Helper()
	bt, err := extClient(t).ReadBlockType(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	return bt.ID
}

func blockSchemaConfig(name, schemaBody, extra string) string {
	return fmt.Sprintf(`
resource "prefect_block_type" "test" {
  name = %[1]q
  slug = %[1]q
}

resource "prefect_block_schema" "test" {
  block_type_id = prefect_block_type.test.id
  %[2]s
}
%[3]s
`, name, schemaBody, extra)
}

// TestAccResource_blockSchema creates block schemas with and without fields,
// imports one, refuses to take over an existing schema, replaces one on a
// change, recreates one deleted outside Terraform, and saves a block of the
// type against the schema.
func TestAccResource_blockSchema(t *testing.T) {
	name := uniqueName(t, "bs")
	addr := "prefect_block_schema.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	fields := fmt.Sprintf(`fields = jsonencode({
    title           = "Warehouse"
    type            = "object"
    properties      = { dsn = { type = "string", title = "DSN" }, pool_size = { type = "integer", default = 5 } }
    required        = ["dsn"]
    secret_fields   = []
    block_type_slug = %q
  })
  capabilities = ["read-path"]
  version      = "1.0"`, name)
	block := fmt.Sprintf(`
resource "prefect_block" "test" {
  name       = %q
  type_slug  = prefect_block_type.test.slug
  data       = jsonencode({ dsn = "postgresql://db/prod", pool_size = 10 })
  depends_on = [prefect_block_schema.test]
}
`, name)
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				// Defaults: no fields, no capabilities, the server's version.
				Config:           blockSchemaConfig(name, "", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "fields", "{}"),
					resource.TestCheckResourceAttr(addr, "version", "non-versioned"),
					resource.TestCheckResourceAttr(addr, "capabilities.#", "0"),
					resource.TestCheckResourceAttr(addr, "block_type", name),
					resource.TestMatchResourceAttr(addr, "checksum", regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)),
				),
			},
			{
				Config: blockSchemaConfig(name, fields, block),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
					resource.TestCheckResourceAttr(addr, "capabilities.0", "read-path"),
					resource.TestCheckResourceAttr(addr, "version", "1.0"),
					func(s *terraformState) error {
						bs, err := extClient(t).ReadBlockSchema(context.Background(), id)
						if err != nil {
							return err
						}
						if bs.Fields["title"] != "Warehouse" || bs.Checksum != s.RootModule().Resources[addr].Primary.Attributes["checksum"] {
							return fmt.Errorf("server block schema = %+v", bs)
						}
						// The block was saved against this schema.
						doc, err := apiClient(t).ReadBlockDocument(context.Background(), s.RootModule().Resources["prefect_block.test"].Primary.ID)
						if err != nil {
							return err
						}
						if doc.BlockSchemaID != id {
							return fmt.Errorf("block saved against schema %s, want %s", doc.BlockSchemaID, id)
						}
						return nil
					},
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{
				// A second resource with the same fields and version is the same schema on the server.
				Config: blockSchemaConfig(name, fields, block+`
resource "prefect_block_schema" "copy" {
  block_type_id = prefect_block_type.test.id
  `+fields+`
}
`),
				ExpectError: regexp.MustCompile(`(?s)exists already \(id\s+[0-9a-f-]+.*terraform\s+import`),
			},
			{
				// Deleted outside Terraform: created again.
				PreConfig: func() {
					if err := extClient(t).DeleteBlockSchema(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				},
				Config: blockSchemaConfig(name, fields, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
			},
		},
	})
}
