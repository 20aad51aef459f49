package aci

import (
	"fmt"
	"html"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"golang.org/x/text/unicode/norm"

	"github.com/pushpool/pushpool/dispatch"
)

// Slug lengths. Prefect's worker cuts the flow name's slug to
// prefectSlugLength = 55 − len(flow run id) = 19 characters, so that
// "prefect-<name>" fits ARM's 64-character deployment names. pushpool's
// names carry the attempt key as well, and ACI allows 63 characters:
// 17 + len("-<flow run id>-<key>") = 17 + 1 + 36 + 1 + 8 = 63.
const (
	prefectSlugLength = 55 - 36
	maxSlugLength     = maxGroupName - 1 - 36 - 1 - dispatch.KeyLen
	// maxGroupName is ACI's limit on container group (and container) names.
	maxGroupName = 63
)

var (
	entityRE    = regexp.MustCompile(`&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);`)
	disallowed  = regexp.MustCompile(`[^a-zA-Z0-9-]+`)
	dashRuns    = regexp.MustCompile(`-{2,}`)
	groupNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// slugify is python-slugify's slugify(text, max_length=maxLength,
// regex_pattern=r"[^a-zA-Z0-9-]+"), as Prefect's ACI worker calls it with
// max_length 19, except that non-ASCII letters without an ASCII
// decomposition are dropped where python-slugify transliterates them (日本
// gives "" here, "ri-ben" there).
func slugify(text string, maxLength int) string {
	text = strings.ReplaceAll(text, "'", "-")
	var b strings.Builder
	for _, r := range norm.NFKD.String(text) {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
		} else if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(' ') // no transliteration table: a word break
		}
	}
	text = entityRE.ReplaceAllStringFunc(b.String(), html.UnescapeString)
	text = strings.ToLower(norm.NFKD.String(text))
	text = strings.ReplaceAll(text, "'", "")
	text = dropDigitCommas(text)
	text = disallowed.ReplaceAllString(text, "-")
	text = strings.Trim(dashRuns.ReplaceAllString(text, "-"), "-")
	if len(text) >= maxLength {
		text = strings.Trim(text[:maxLength], "-")
	}
	return text
}

// dropDigitCommas removes commas between two digits ("1,000" → "1000").
func dropDigitCommas(s string) string {
	b := []byte(s)
	out := b[:0:0]
	for i, c := range b {
		if c == ',' && i > 0 && i+1 < len(b) && isDigit(b[i-1]) && isDigit(b[i+1]) {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// groupName is the name of the container group of one attempt of a flow
// run: Prefect's "<slug(flow name)>-<flow run id>" followed by
// "-<attempt key>", with the slug cut to maxSlugLength (17) instead of
// Prefect's 19 characters so that the name fits ACI's 63. The cut is the
// one python-slugify makes (cut, then trim dashes), so the slug is the
// prefix of Prefect's. A flow name that leaves an empty slug gives
// "<flow run id>-<key>" (Prefect would produce an invalid "-<id>").
func groupName(flowName, flowRunID, key string) string {
	name := strings.ToLower(flowRunID) + "-" + key
	if slug := slugify(flowName, maxSlugLength); slug != "" {
		name = slug + "-" + name
	}
	return name
}

// attemptInName reads the attempt key from a group name groupName made;
// ok is false for other names (Prefect's worker's, pushpool's before
// attempts).
func attemptInName(name string) (key string, ok bool) {
	m := attemptNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	return m[1], true
}

var attemptNameRE = regexp.MustCompile(`(?:^|-)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-([0-9a-f]{8})$`)

// Azure's tag rules: at most 50 tags per resource, names of at most 512
// characters without < > % & \ ? /, values of at most 256 characters.
const (
	maxTags        = 50
	maxTagName     = 512
	maxTagValue    = 256
	forbiddenInTag = `<>%&\?/`
)

// tagsFromLabels turns a job's labels into at most limit container group
// tags: characters Azure forbids in tag names become "_", names and values
// are cut to Azure's limits, and beyond limit tags the prefect.io ones are
// kept first, then the others in name order. Labels that collide after
// sanitising keep the value of the label that sorts last.
func tagsFromLabels(labels map[string]string, limit int) map[string]string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, pj := strings.HasPrefix(keys[i], "prefect.io/"), strings.HasPrefix(keys[j], "prefect.io/")
		if pi != pj {
			return pi
		}
		return keys[i] < keys[j]
	})
	tags := map[string]string{}
	for _, k := range keys {
		name := sanitiseTagName(k)
		if name == "" {
			continue
		}
		if _, dup := tags[name]; !dup && len(tags) >= limit {
			continue
		}
		tags[name] = truncateRunes(labels[k], maxTagValue)
	}
	return tags
}

// sanitiseTagName replaces the characters Azure forbids in tag names with
// "_" and cuts the name to 512 characters.
func sanitiseTagName(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(forbiddenInTag, r) || unicode.IsControl(r) {
			return '_'
		}
		return r
	}, strings.TrimSpace(s))
	return truncateRunes(s, maxTagName)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// groupRef locates a container group.
type groupRef struct {
	Subscription, ResourceGroup, Name string
}

// ID is the group's ARM resource id.
func (g groupRef) ID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/containerGroups/%s", g.Subscription, g.ResourceGroup, g.Name)
}

func (g groupRef) String() string {
	if g.Name == "" {
		return fmt.Sprintf("the container groups in resource group %s of subscription %s", g.ResourceGroup, g.Subscription)
	}
	return fmt.Sprintf("container group %s in resource group %s of subscription %s", g.Name, g.ResourceGroup, g.Subscription)
}

// infrastructureID formats the id Start returns: Prefect's
// "<flow_run_id>:<container_group_name>" when the group lives in the
// backend's default subscription and resource group (which is where Status
// and Stop look for short ids), the group's full ARM resource id otherwise.
func infrastructureID(flowRunID string, ref groupRef, defaultSub, defaultRG string) string {
	if defaultSub != "" && defaultRG != "" && strings.EqualFold(ref.Subscription, defaultSub) && strings.EqualFold(ref.ResourceGroup, defaultRG) {
		return flowRunID + ":" + ref.Name
	}
	return ref.ID()
}

// parseInfrastructureID reads both id forms.
func parseInfrastructureID(id, defaultSub, defaultRG string) (groupRef, error) {
	if strings.HasPrefix(id, "/") {
		rid, err := arm.ParseResourceID(id)
		if err != nil {
			return groupRef{}, fmt.Errorf("infrastructure id %q is not an ARM resource id: %w", id, err)
		}
		if !strings.EqualFold(rid.ResourceType.String(), "Microsoft.ContainerInstance/containerGroups") || rid.SubscriptionID == "" || rid.ResourceGroupName == "" {
			return groupRef{}, fmt.Errorf("infrastructure id %q is not the resource id of a container group (Microsoft.ContainerInstance/containerGroups)", id)
		}
		return groupRef{Subscription: rid.SubscriptionID, ResourceGroup: rid.ResourceGroupName, Name: rid.Name}, nil
	}
	parts := strings.Split(id, ":")
	if len(parts) != 2 || parts[0] == "" || !groupNameRE.MatchString(parts[1]) {
		return groupRef{}, fmt.Errorf("infrastructure id %q is neither Prefect's <flow_run_id>:<container_group_name> nor a container group's ARM resource id", id)
	}
	if defaultSub == "" || defaultRG == "" {
		return groupRef{}, fmt.Errorf("infrastructure id %q names container group %s without its subscription and resource group, and the ACI backend has no default SubscriptionID and ResourceGroup configured: configure them to observe runs started by Prefect's worker", id, parts[1])
	}
	return groupRef{Subscription: defaultSub, ResourceGroup: defaultRG, Name: parts[1]}, nil
}
