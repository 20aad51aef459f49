package acifake_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/pushpool/pushpool/dispatch/backend/aci/acifake"
)

// TestAzure_ifNoneMatch: a conditional PUT of an existing group is refused
// with 412 and changes nothing; an unconditional one restarts it; every PUT
// reaches the fake, also when the previous creation was never polled.
func TestAzure_ifNoneMatch(t *testing.T) {
	az := acifake.New()
	opts := az.ClientOptions()
	c, err := armcontainerinstance.NewContainerGroupsClient("sub", az.Credential(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	group := func(image string) armcontainerinstance.ContainerGroup {
		return armcontainerinstance.ContainerGroup{Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{
			OSType: to.Ptr(armcontainerinstance.OperatingSystemTypesLinux),
			Containers: []*armcontainerinstance.Container{{Name: to.Ptr("c"), Properties: &armcontainerinstance.ContainerProperties{
				Image: to.Ptr(image), Resources: &armcontainerinstance.ResourceRequirements{
					Requests: &armcontainerinstance.ResourceRequests{CPU: to.Ptr(1.0), MemoryInGB: to.Ptr(1.0)}}}}}}}
	}
	ifAbsent := policy.WithHTTPHeader(t.Context(), http.Header{"If-None-Match": {"*"}})
	if _, err := c.BeginCreateOrUpdate(ifAbsent, "rg", "g", group("first"), nil); err != nil {
		t.Fatalf("conditional create of a new group: %v", err)
	}
	_, err = c.BeginCreateOrUpdate(ifAbsent, "rg", "g", group("second"), nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("conditional create of an existing group: %v; want 412", err)
	}
	if g, _ := az.Group("sub", "rg", "g"); *g.Properties.Containers[0].Properties.Image != "first" || az.Restarts() != 0 {
		t.Errorf("the refused PUT changed the group (image %s, %d restarts)", *g.Properties.Containers[0].Properties.Image, az.Restarts())
	}
	if _, err := c.BeginCreateOrUpdate(t.Context(), "rg", "g", group("third"), nil); err != nil {
		t.Fatal(err)
	}
	if g, _ := az.Group("sub", "rg", "g"); *g.Properties.Containers[0].Properties.Image != "third" || az.Restarts() != 1 {
		t.Errorf("an unconditional PUT of an existing group: image %s, %d restarts; want third, 1", *g.Properties.Containers[0].Properties.Image, az.Restarts())
	}
	if n := len(az.Requests(acifake.OpCreate)); n != 3 {
		t.Errorf("%d PUTs recorded, want 3", n)
	}
}
