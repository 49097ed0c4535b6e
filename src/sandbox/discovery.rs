//! Discovery and OpenAPI documents, generated from the resource catalog.

use serde_json::{Map, Value, json};

use super::resources::{Catalog, ResourceType};

/// The `/version` answer; it says plainly that this is the Capstan sandbox.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-capstan-sandbox",
        "gitCommit": "capstan-sandbox",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "none (Capstan sandbox, written in Rust)",
        "compiler": "rustc",
        "platform": "linux/amd64",
        "capstanSandbox": true,
        "description": "Capstan sandbox: a simulated Kubernetes API; it runs no containers",
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs.clone(),
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn group_list(catalog: &Catalog) -> Value {
    let groups: Vec<Value> = catalog
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(catalog: &Catalog, name: &str) -> Option<Value> {
    let groups = catalog.groups();
    let (_, versions) = groups.iter().find(|(g, _)| g == name && !g.is_empty())?;
    let mut doc = group_doc(name, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = catalog.types_in(group, version);
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in &types {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if super::scale::has_scale(t) {
            resources.push(json!({
                "name": format!("{}/scale", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = types[0].api_version();
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn schema_name(t: &ResourceType) -> String {
    let group = if t.group.is_empty() {
        "core"
    } else {
        t.group.as_str()
    };
    format!("{group}.{}.{}", t.version, t.kind)
}

fn gvk(t: &ResourceType) -> Value {
    json!({"group": t.group, "version": t.version, "kind": t.kind})
}

fn permissive_schema(t: &ResourceType) -> Value {
    json!({
        "type": "object",
        "description": format!("{} (Capstan sandbox: permissive schema)", t.kind),
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-group-version-kind": [gvk(t)],
    })
}

/// `/openapi/v3`: one entry per group/version.
pub fn openapi_v3_index(catalog: &Catalog) -> Value {
    let mut paths = Map::new();
    for (g, versions) in catalog.groups() {
        for v in versions {
            let path = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            let hash = catalog_hash(catalog, &g, &v);
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// A short fingerprint of a group/version's types, so kubectl's cache key changes with CRDs.
fn catalog_hash(catalog: &Catalog, group: &str, version: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for t in catalog.types_in(group, version) {
        h.update(format!(
            "{}|{}|{}|{};",
            t.plural, t.kind, t.namespaced, t.status_subresource
        ));
    }
    hex::encode(&h.finalize()[..8])
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`: permissive schemas, and a
/// PATCH operation per kind that accepts `fieldValidation`, so kubectl lets the server validate.
pub fn openapi_v3_doc(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = catalog.types_in(group, version);
    if types.is_empty() {
        return None;
    }
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for t in &types {
        let name = schema_name(t);
        schemas.insert(name.clone(), permissive_schema(t));
        let prefix = if t.group.is_empty() {
            format!("/api/{}", t.version)
        } else {
            format!("/apis/{}/{}", t.group, t.version)
        };
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let schema_ref = json!({"$ref": format!("#/components/schemas/{name}")});
        // Strategic merge is left out on purpose: kubectl then computes client-side apply patches
        // from its compiled-in types (built-ins) or as merge patches (custom kinds).
        let body = json!({"content": {
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
        }});
        let query = |n: &str| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let op = |id: &str| {
            json!({
                "operationId": format!("{id}{}", t.kind),
                "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref.clone()}}}},
                "x-kubernetes-action": id,
                "x-kubernetes-group-version-kind": gvk(t),
            })
        };
        let mut patch = op("patch");
        patch["requestBody"] = body;
        let mut put = op("replace");
        put["requestBody"] =
            json!({"content": {"application/json": {"schema": schema_ref.clone()}}});
        paths.insert(
            path,
            json!({"get": op("get"), "put": put, "patch": patch, "delete": op("delete")}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Capstan sandbox", "version": "v1.33.0-capstan-sandbox"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v2` (JSON): permissive definitions for every kind.
pub fn openapi_v2(catalog: &Catalog) -> Value {
    let mut defs = Map::new();
    for t in &catalog.types {
        defs.insert(schema_name(t), permissive_schema(t));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Capstan sandbox", "version": "v1.33.0-capstan-sandbox"},
        "paths": {},
        "definitions": defs,
    })
}

/// The media type of aggregated discovery answers (apidiscovery.k8s.io/v2).
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an Accept header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

/// Aggregated discovery: `/api` (core only) or `/apis` (every other group) in one document.
pub fn aggregated(catalog: &Catalog, core: bool) -> Value {
    let items: Vec<Value> = catalog
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = catalog
                        .types
                        .iter()
                        .filter(|t| t.group == group && &t.version == version)
                        .map(|t| {
                            let mut subresources = Vec::new();
                            if t.status_subresource {
                                subresources.push(json!({
                                    "subresource": "status",
                                    "responseKind": gvk(t),
                                    "verbs": ["get", "patch", "update"],
                                }));
                            }
                            if super::scale::has_scale(t) {
                                subresources.push(json!({
                                    "subresource": "scale",
                                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                                    "verbs": ["get", "patch", "update"],
                                }));
                            }
                            json!({
                                "resource": t.plural,
                                "responseKind": gvk(t),
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular,
                                "verbs": VERBS,
                                "shortNames": t.short_names,
                                "categories": t.categories,
                                "subresources": subresources,
                            })
                        })
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
