package aci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pushpool/pushpool/dispatch"
)

// op is a container group operation, with the RBAC action it needs.
type op struct{ verb, action string }

var (
	opGet    = op{"read", "Microsoft.ContainerInstance/containerGroups/read"}
	opCreate = op{"create", "Microsoft.ContainerInstance/containerGroups/write"}
	opDelete = op{"delete", "Microsoft.ContainerInstance/containerGroups/delete"}
	opStop   = op{"stop", "Microsoft.ContainerInstance/containerGroups/stop/action"}
	opList   = op{"list", "Microsoft.ContainerInstance/containerGroups/read"}
)

// Error codes ARM and ACI answer with.
var (
	imageCodes = map[string]bool{"InaccessibleImage": true, "InvalidImageName": true, "RegistryErrorResponse": true,
		"ImageNotFound": true, "InvalidImageRegistryCredential": true, "AmbiguousImageRegistryCredential": true}
	authCodes = map[string]bool{"AuthorizationFailed": true, "LinkedAuthorizationFailed": true,
		"InvalidAuthenticationToken": true, "InvalidAuthenticationTokenTenant": true, "AuthenticationFailed": true}
	transientCodes = map[string]bool{"TooManyRequests": true, "ServiceUnavailable": true, "InternalServerError": true,
		"GatewayTimeout": true, "ServerTimeout": true, "ResourceRequestsThrottled": true, "AnotherOperationInProgress": true}
)

// isNotFound reports a 404 (ResourceNotFound, ResourceGroupNotFound).
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// isQuota reports a quota error: ContainerGroupQuotaReached,
// StandardCoresQuotaReached and the like.
func isQuota(code string) bool {
	return strings.Contains(code, "Quota") || code == "ServiceUnavailableForQuota"
}

// identity describes the Azure identity a request ran as, for messages.
func identity(p *clientSecret) string {
	if p != nil {
		return fmt.Sprintf("service principal %s in tenant %s (the job's aci_credentials)", p.ClientID, p.TenantID)
	}
	return "the dispatcher's Azure identity (no aci_credentials on the job)"
}

// classify wraps an Azure error with the flow run, the group and the fix,
// and marks what a retry may cure with dispatch.ErrRetryable: throttling
// and server errors that outlived azcore's retries, quotas (capacity frees
// up as other runs end), network failures and deadlines.
func classify(err error, o op, ref groupRef, flowRun, image, who string) error {
	subject := ref.String()
	if flowRun != "" {
		subject = "flow run " + flowRun + ": " + subject
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		switch {
		case re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s: Azure throttled the %s request (HTTP 429 %s) and kept throttling through azcore's retries; the run will be retried later: %w: %w", subject, o.verb, code, dispatch.ErrRetryable, err)
		case authCodes[code] || re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%s: %s may not %s container groups (%s): grant it %s on resource group %s of subscription %s, for example with the Azure Container Instances Contributor role, or set aci_credentials to a principal that has it: %w",
				subject, who, o.verb, code, o.action, ref.ResourceGroup, ref.Subscription, err)
		case imageCodes[code]:
			return fmt.Errorf("%s: ACI cannot pull image %q (%s): check the image job variable, and set image_registry (registry_url with username and password, or a managed identity that also appears in identities) for a private registry: %w",
				subject, image, code, err)
		case isQuota(code):
			return fmt.Errorf("%s: an ACI quota is exhausted (%s); the run will be retried as other container groups end, or request a quota increase for subscription %s: %w: %w", subject, code, ref.Subscription, dispatch.ErrRetryable, err)
		case re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout || transientCodes[code]:
			return fmt.Errorf("%s: Azure answered the %s request with HTTP %d %s through azcore's retries; the run will be retried later: %w: %w", subject, o.verb, re.StatusCode, code, dispatch.ErrRetryable, err)
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s: %s (HTTP 404): check that resource group %s exists in subscription %s: %w", subject, code, ref.ResourceGroup, ref.Subscription, err)
		}
		return fmt.Errorf("%s: Azure rejected the %s request with HTTP %d %s: fix the job configuration or the pool's arm_template: %w", subject, o.verb, re.StatusCode, code, err)
	}
	var authErr *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &authErr):
		return fmt.Errorf("%s: cannot authenticate %s to Azure: check aci_credentials or the dispatcher's Azure credential: %w", subject, who, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %s request cancelled: %w", subject, o.verb, err)
	}
	// Network failures and deadlines: the request may not have reached
	// Azure; Start is idempotent, so a retry is safe.
	return fmt.Errorf("%s: %s request failed: %w: %w", subject, o.verb, dispatch.ErrRetryable, err)
}
