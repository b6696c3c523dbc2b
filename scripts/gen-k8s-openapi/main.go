// Command gen-k8s-openapi derives the compact strategic-merge schema table that kgitops embeds
// (src/render/patches/k8s_schema.json) from a Kubernetes OpenAPI v2 document (swagger.json).
//
// The table holds only what kustomize's strategic merge (kyaml merge2) reads from the schema:
//   - "gvk": "apiVersion Kind" -> definition, from x-kubernetes-group-version-kind (plus the legacy
//     kinds kustomize still knows, mapped to their successors' definitions);
//   - "defs": definition -> field -> schema, kept only where it can change a merge: fields that
//     lead to a list with x-kubernetes-patch-strategy "merge" (with its merge keys:
//     x-kubernetes-list-map-keys, else x-kubernetes-patch-merge-key), and fields of an opaque
//     object type (RawExtension and the like), below which kyaml must not look up a schema by
//     apiVersion/kind;
//
// Which kinds are cluster-scoped is not in the table: kustomize decides that from its own older
// built-in table, which kgitops carries as is (src/render/scope.rs).
//
// A field schema is a string (a definition name), {} (opaque object), {"map": schema} (an object
// with additionalProperties) or {"strategy": s, "keys": [...], "items": schema} (a merge list).
//
// Usage: scripts/gen-k8s-openapi/run (finds the pinned swagger.json and writes the table), or
// go run main.go SWAGGER.json [SOURCE-LABEL] > ../../src/render/patches/k8s_schema.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Items                *schema            `json:"items"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties *schema            `json:"additionalProperties"`
	Strategy             string             `json:"x-kubernetes-patch-strategy"`
	MergeKey             string             `json:"x-kubernetes-patch-merge-key"`
	ListMapKeys          []string           `json:"x-kubernetes-list-map-keys"`
	GVK                  []gvk              `json:"x-kubernetes-group-version-kind"`
}

type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func (g gvk) typeMeta() string {
	if g.Group == "" {
		return g.Version + " " + g.Kind
	}
	return g.Group + "/" + g.Version + " " + g.Kind
}

type swagger struct {
	Definitions map[string]*schema `json:"definitions"`
}

// Kinds that kustomize v5 still has a schema for (its built-in OpenAPI is Kubernetes v1.21) but
// the pinned API no longer serves, with the successor whose schema stands in for them: their
// merge lists (pod templates, webhooks, metadata) are the same, so merges match kubectl kustomize.
var legacyKinds = map[string]string{
	"admissionregistration.k8s.io/v1beta1 MutatingWebhookConfiguration":   "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration",
	"admissionregistration.k8s.io/v1beta1 ValidatingWebhookConfiguration": "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration",
	"apiextensions.k8s.io/v1beta1 CustomResourceDefinition":               "apiextensions.k8s.io/v1 CustomResourceDefinition",
	"apiregistration.k8s.io/v1beta1 APIService":                           "apiregistration.k8s.io/v1 APIService",
	"autoscaling/v2beta1 HorizontalPodAutoscaler":                         "autoscaling/v2 HorizontalPodAutoscaler",
	"autoscaling/v2beta2 HorizontalPodAutoscaler":                         "autoscaling/v2 HorizontalPodAutoscaler",
	"batch/v1beta1 CronJob":                                               "batch/v1 CronJob",
	"certificates.k8s.io/v1beta1 CertificateSigningRequest":               "certificates.k8s.io/v1 CertificateSigningRequest",
	"coordination.k8s.io/v1beta1 Lease":                                   "coordination.k8s.io/v1 Lease",
	"discovery.k8s.io/v1beta1 EndpointSlice":                              "discovery.k8s.io/v1 EndpointSlice",
	"events.k8s.io/v1beta1 Event":                                         "events.k8s.io/v1 Event",
	"extensions/v1beta1 Ingress":                                          "networking.k8s.io/v1 Ingress",
	"flowcontrol.apiserver.k8s.io/v1beta1 FlowSchema":                     "flowcontrol.apiserver.k8s.io/v1 FlowSchema",
	"flowcontrol.apiserver.k8s.io/v1beta1 PriorityLevelConfiguration":     "flowcontrol.apiserver.k8s.io/v1 PriorityLevelConfiguration",
	"networking.k8s.io/v1beta1 Ingress":                                   "networking.k8s.io/v1 Ingress",
	"networking.k8s.io/v1beta1 IngressClass":                              "networking.k8s.io/v1 IngressClass",
	"node.k8s.io/v1beta1 RuntimeClass":                                    "node.k8s.io/v1 RuntimeClass",
	"policy/v1beta1 PodDisruptionBudget":                                  "policy/v1 PodDisruptionBudget",
	"rbac.authorization.k8s.io/v1beta1 ClusterRole":                       "rbac.authorization.k8s.io/v1 ClusterRole",
	"rbac.authorization.k8s.io/v1beta1 ClusterRoleBinding":                "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
	"rbac.authorization.k8s.io/v1beta1 Role":                              "rbac.authorization.k8s.io/v1 Role",
	"rbac.authorization.k8s.io/v1beta1 RoleBinding":                       "rbac.authorization.k8s.io/v1 RoleBinding",
	"scheduling.k8s.io/v1beta1 PriorityClass":                             "scheduling.k8s.io/v1 PriorityClass",
	"storage.k8s.io/v1beta1 CSIDriver":                                    "storage.k8s.io/v1 CSIDriver",
	"storage.k8s.io/v1beta1 CSINode":                                      "storage.k8s.io/v1 CSINode",
	"storage.k8s.io/v1beta1 CSIStorageCapacity":                           "storage.k8s.io/v1 CSIStorageCapacity",
	"storage.k8s.io/v1beta1 StorageClass":                                 "storage.k8s.io/v1 StorageClass",
	"storage.k8s.io/v1beta1 VolumeAttachment":                             "storage.k8s.io/v1 VolumeAttachment",
}

type gen struct {
	defs        map[string]*schema
	interesting map[string]bool
}

func refName(ref string) string { return strings.TrimPrefix(ref, "#/definitions/") }

func isMergeList(s *schema) bool {
	if s.Type != "array" {
		return false
	}
	for _, part := range strings.Split(s.Strategy, ",") {
		if part == "merge" {
			return true
		}
	}
	return false
}

// opaque is an object type with no known fields (RawExtension, FieldsV1, ...).
func (g *gen) opaque(name string) bool {
	d := g.defs[name]
	if d == nil {
		return false
	}
	switch d.Type {
	case "string", "integer", "number", "boolean", "array":
		return false
	}
	return len(d.Properties) == 0 && d.AdditionalProperties == nil
}

// keep tells whether a field schema can change a merge.
func (g *gen) keep(s *schema) bool {
	switch {
	case s == nil:
		return false
	case s.Ref != "":
		name := refName(s.Ref)
		return g.interesting[name] || g.opaque(name)
	case isMergeList(s):
		return true
	case s.Type == "object" && s.AdditionalProperties != nil:
		return g.keep(s.AdditionalProperties)
	}
	return false
}

func (g *gen) encode(s *schema) interface{} {
	switch {
	case s.Ref != "":
		name := refName(s.Ref)
		if g.interesting[name] {
			return name
		}
		return map[string]interface{}{}
	case isMergeList(s):
		out := map[string]interface{}{"strategy": s.Strategy}
		keys := s.ListMapKeys
		if len(keys) == 0 && s.MergeKey != "" {
			keys = []string{s.MergeKey}
		}
		if len(keys) > 0 {
			out["keys"] = keys
		}
		if s.Items != nil && g.keep(s.Items) {
			out["items"] = g.encode(s.Items)
		}
		return out
	default:
		return map[string]interface{}{"map": g.encode(s.AdditionalProperties)}
	}
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: gen-k8s-openapi SWAGGER.json [SOURCE-LABEL]")
		os.Exit(2)
	}
	source := "swagger.json"
	if len(os.Args) == 3 {
		source = os.Args[2]
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var sw swagger
	if err := json.Unmarshal(raw, &sw); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	g := &gen{defs: sw.Definitions, interesting: map[string]bool{}}
	// Fixpoint: definitions are recursive (JSONSchemaProps), so iterate until nothing changes.
	for changed := true; changed; {
		changed = false
		for name, d := range g.defs {
			if g.interesting[name] {
				continue
			}
			for _, p := range d.Properties {
				if g.keep(p) {
					g.interesting[name] = true
					changed = true
					break
				}
			}
		}
	}

	defs := map[string]map[string]interface{}{}
	for name := range g.interesting {
		fields := map[string]interface{}{}
		for field, p := range g.defs[name].Properties {
			if g.keep(p) {
				fields[field] = g.encode(p)
			}
		}
		defs[name] = fields
	}
	kinds := map[string]string{}
	for name, d := range g.defs {
		if !g.interesting[name] {
			continue
		}
		for _, k := range d.GVK {
			kinds[k.typeMeta()] = name
		}
	}

	for legacy, successor := range legacyKinds {
		if _, served := kinds[legacy]; served {
			continue
		}
		def, ok := kinds[successor]
		if !ok {
			fmt.Fprintf(os.Stderr, "gen-k8s-openapi: successor %q of %q is not in the API\n", successor, legacy)
			os.Exit(1)
		}
		kinds[legacy] = def
	}

	out := map[string]interface{}{
		"//": "Generated from " + source + " by scripts/gen-k8s-openapi/main.go; do not edit. " +
			"Regenerate: scripts/gen-k8s-openapi/run",
		"gvk":  kinds,
		"defs": defs,
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
