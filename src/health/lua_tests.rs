//! Custom Lua health checks through `assess_with`: Argo CD's key forms, precedence over the
//! built-in rules, and the sandbox (no io/os/require, instruction and memory limits).

use serde_json::{Value, json};

use super::{
    CustomHealth, CustomHealthError, Health, HealthStatus, MAX_MESSAGE_BYTES, assess, assess_with,
};

/// cert-manager's Certificate check as users put it in `argocd-cm`.
const CERTIFICATE: &str = r#"
hs = {}
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for i, condition in ipairs(obj.status.conditions) do
      if condition.type == "Ready" and condition.status == "False" then
        hs.status = "Degraded"
        hs.message = condition.message
        return hs
      end
      if condition.type == "Ready" and condition.status == "True" then
        hs.status = "Healthy"
        hs.message = condition.message
        return hs
      end
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for certificate"
return hs
"#;

fn load(entries: &[(&str, &str)]) -> CustomHealth {
    let (custom, errors) =
        CustomHealth::from_entries(entries.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    assert_eq!(errors, vec![], "unexpected load errors");
    custom
}

fn certificate(conditions: Value) -> Value {
    json!({ "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": { "name": "web-tls", "namespace": "default" },
            "status": { "conditions": conditions } })
}

fn widget() -> Value {
    json!({ "apiVersion": "widgets.example.com/v1", "kind": "Widget", "metadata": { "name": "w" },
            "spec": { "size": 3 } })
}

/// The health a one-off script gives a Widget.
fn run_widget_script(script: &str) -> Option<Health> {
    let custom = load(&[(
        "resource.customizations.health.widgets.example.com_Widget",
        script,
    )]);
    assess_with(&widget(), &custom)
}

fn unknown_containing(health: Option<Health>, needle: &str) {
    let health = health.expect("a custom check gives a health");
    assert_eq!(health.status, HealthStatus::Unknown, "{health:?}");
    assert!(
        health.message.contains(needle),
        "message {:?} should mention {needle:?}",
        health.message
    );
}

#[test]
fn certificate_script_table() {
    let custom = load(&[(
        "resource.customizations.health.cert-manager.io_Certificate",
        CERTIFICATE,
    )]);
    let cases = [
        (
            json!([{ "type": "Ready", "status": "False", "message": "issuer not found" }]),
            Health::degraded("issuer not found"),
        ),
        (
            json!([{ "type": "Issuing", "status": "True" },
                   { "type": "Ready", "status": "True", "message": "Certificate is up to date" }]),
            Health::new(HealthStatus::Healthy, "Certificate is up to date"),
        ),
        (json!([]), Health::progressing("Waiting for certificate")),
        (json!(null), Health::progressing("Waiting for certificate")),
    ];
    for (conditions, want) in cases {
        assert_eq!(
            assess_with(&certificate(conditions.clone()), &custom),
            Some(want),
            "{conditions}"
        );
    }
    // Without the check, Certificate falls back to the generic Ready rule.
    let not_ready = certificate(json!([{ "type": "Ready", "status": "False", "message": "m" }]));
    assert_eq!(assess(&not_ready), Some(Health::progressing("m")));
}

#[test]
fn bare_keys_and_other_customizations() {
    let (custom, errors) = CustomHealth::from_entries([
        (
            "cert-manager.io_Certificate".to_string(),
            CERTIFICATE.to_string(),
        ),
        (
            "resource.customizations.ignoreDifferences.apps_Deployment".to_string(),
            "jsonPointers: [/spec/replicas]".to_string(),
        ),
        (
            "resource.customizations.health.a_b_c".to_string(),
            "return nil".to_string(),
        ),
    ]);
    assert_eq!(
        errors,
        vec![CustomHealthError::BadKey {
            key: "resource.customizations.health.a_b_c".to_string()
        }]
    );
    assert!(custom.covers("cert-manager.io", "Certificate"));
    assert!(!custom.covers("apps", "Deployment"));
    let ready = certificate(json!([{ "type": "Ready", "status": "True", "message": "ok" }]));
    assert_eq!(
        assess_with(&ready, &custom),
        Some(Health::new(HealthStatus::Healthy, "ok"))
    );
}

#[test]
fn wildcard_keys_match_group_and_kind_globs() {
    let custom = load(&[
        (
            "resource.customizations.health.*.example.com_*",
            r#"return { status = "Suspended", message = obj.kind .. " " .. obj.metadata.name }"#,
        ),
        (
            "resource.customizations.health.gadgets.example.com_Gadget",
            r#"return { status = "Degraded", message = "exact" }"#,
        ),
    ]);
    assert_eq!(
        assess_with(&widget(), &custom),
        Some(Health::new(HealthStatus::Suspended, "Widget w"))
    );
    let gadget = json!({ "apiVersion": "gadgets.example.com/v1", "kind": "Gadget", "metadata": { "name": "g" } });
    assert_eq!(
        assess_with(&gadget, &custom),
        Some(Health::degraded("exact")),
        "an exact key wins over a glob"
    );
    let other =
        json!({ "apiVersion": "example.org/v1", "kind": "Widget", "metadata": { "name": "x" } });
    assert_eq!(assess_with(&other, &custom), None);
}

#[test]
fn core_kind_key_overrides_the_built_in_rule() {
    let lb = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "s" },
                     "spec": { "type": "LoadBalancer" }, "status": { "loadBalancer": {} } });
    assert_eq!(
        assess(&lb).map(|h| h.status),
        Some(HealthStatus::Progressing)
    );
    let custom = load(&[(
        "resource.customizations.health.Service",
        r#"return { status = "Healthy", message = "type " .. obj.spec.type }"#,
    )]);
    assert_eq!(
        assess_with(&lb, &custom),
        Some(Health::new(HealthStatus::Healthy, "type LoadBalancer"))
    );
    // The check for the core kind does not apply to a same-named kind in another group.
    let other = json!({ "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": { "name": "k" } });
    assert_eq!(assess_with(&other, &custom), None);
}

#[test]
fn custom_check_comes_after_deletion_and_before_generic_rules() {
    let custom = load(&[(
        "apps_Deployment",
        r#"return { status = "Degraded", message = "custom" }"#,
    )]);
    let mut deploy = json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": { "name": "d", "generation": 2 },
                             "spec": { "paused": true }, "status": { "observedGeneration": 1 } });
    assert_eq!(
        assess_with(&deploy, &custom),
        Some(Health::degraded("custom"))
    );
    deploy["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    assert_eq!(
        assess_with(&deploy, &custom),
        Some(Health::progressing("Pending deletion"))
    );
}

#[test]
fn a_nil_result_falls_back_to_the_built_in_rule() {
    let custom = load(&[("PersistentVolumeClaim", "return nil")]);
    let pvc = json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": { "name": "p" },
                      "status": { "phase": "Lost" } });
    assert_eq!(assess_with(&pvc, &custom), Some(Health::degraded("")));
}

#[test]
fn the_object_reaches_the_script_as_argo_cd_converts_it() {
    let script = r#"
        local parts = {}
        table.insert(parts, tostring(#obj.spec.items))
        table.insert(parts, obj.spec.items[1])
        table.insert(parts, tostring(obj.spec.missing == nil))
        table.insert(parts, tostring(obj.spec.count + 1))
        table.insert(parts, tostring(obj.spec.on))
        table.insert(parts, string.upper(obj.metadata.name))
        table.insert(parts, tostring(math.max(1, 7)))
        return { status = "Healthy", message = table.concat(parts, ",") }
    "#;
    let custom = load(&[("example.com_Thing", script)]);
    let obj = json!({ "apiVersion": "example.com/v1", "kind": "Thing", "metadata": { "name": "t" },
                      "spec": { "items": ["a", "b"], "missing": null, "count": 41, "on": true } });
    assert_eq!(
        assess_with(&obj, &custom),
        Some(Health::new(HealthStatus::Healthy, "2,a,true,42,true,T,7"))
    );
}

#[test]
fn an_endless_loop_stops_at_the_instruction_limit() {
    unknown_containing(run_widget_script("while true do end"), "instruction limit");
    unknown_containing(
        run_widget_script("local n = 0 while true do n = n + 1 end"),
        "instruction limit",
    );
}

#[test]
fn memory_bombs_stop_at_the_memory_limit() {
    unknown_containing(
        run_widget_script(
            "local s = string.rep('x', 1024 * 1024 * 1024) return { status = 'Healthy' }",
        ),
        "memory limit",
    );
    unknown_containing(
        run_widget_script(
            "local t = {} for i = 1, 100000000 do t[i] = i end return { status = 'Healthy' }",
        ),
        "limit",
    );
}

#[test]
fn runaway_recursion_is_unknown() {
    let h = run_widget_script("local function f(n) return 1 + f(n + 1) end return f(1)");
    assert_eq!(h.map(|h| h.status), Some(HealthStatus::Unknown));
}

#[test]
fn only_string_table_and_math_are_available() {
    for (script, needle) in [
        ("os.execute('touch /tmp/capstan-pwned')", "os"),
        ("io.open('/etc/passwd')", "io"),
        ("require('os')", "require"),
        ("load('return 1')()", "load"),
        ("dofile('/etc/passwd')", "dofile"),
        ("debug.getinfo(1)", "debug"),
        ("package.loadlib('x', 'y')", "package"),
        ("collectgarbage('stop')", "collectgarbage"),
        ("print('hi')", "print"),
        ("string.dump(function() end)", "dump"),
    ] {
        unknown_containing(run_widget_script(script), needle);
    }
    assert!(!std::path::Path::new("/tmp/capstan-pwned").exists());
}

#[test]
fn finalizers_are_refused() {
    unknown_containing(
        run_widget_script(
            "setmetatable({}, { __gc = function() while true do end end }) return { status = 'Healthy' }",
        ),
        "__gc",
    );
    // Ordinary metatables still work.
    assert_eq!(
        run_widget_script(
            "local t = setmetatable({}, { __index = function() return 'Healthy' end }) return { status = t.x }"
        ),
        Some(Health::new(HealthStatus::Healthy, ""))
    );
}

#[test]
fn evaluations_do_not_share_state() {
    let custom = load(&[(
        "widgets.example.com_Widget",
        r#"
        if seen ~= nil then return { status = "Degraded", message = "leaked" } end
        seen = true
        string.upper = nil
        return { status = "Healthy" }
        "#,
    )]);
    for _ in 0..3 {
        assert_eq!(
            assess_with(&widget(), &custom),
            Some(Health::new(HealthStatus::Healthy, ""))
        );
    }
}

#[test]
fn a_syntax_error_is_reported_at_load_and_makes_the_kind_unknown() {
    let key = "resource.customizations.health.widgets.example.com_Widget";
    let (custom, errors) = CustomHealth::from_entries([(key.to_string(), "hs = {".to_string())]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let CustomHealthError::Compile {
        key: named,
        message,
    } = &errors[0]
    else {
        panic!("expected a compile error, got {errors:?}");
    };
    assert_eq!(named, key);
    assert!(errors[0].to_string().contains(key));
    unknown_containing(assess_with(&widget(), &custom), message);
    unknown_containing(assess_with(&widget(), &custom), "syntax error");
}

#[test]
fn bad_results_are_unknown() {
    for (script, needle) in [
        (r#"return { status = "Great" }"#, "invalid health status"),
        (
            r#"return { message = "no status" }"#,
            "invalid health status",
        ),
        (r#"return "Healthy""#, "expect table output"),
        (r#"error("boom")"#, "boom"),
        (r#"return obj.status.conditions[1]"#, "attempt to index"),
    ] {
        unknown_containing(run_widget_script(script), needle);
    }
}

#[test]
fn deep_objects_are_unknown_not_a_crash() {
    let mut deep = json!("leaf");
    for _ in 0..1_000 {
        deep = json!({ "a": deep });
    }
    let obj = json!({ "apiVersion": "widgets.example.com/v1", "kind": "Widget",
                      "metadata": { "name": "w" }, "spec": deep });
    let custom = load(&[(
        "widgets.example.com_Widget",
        "return { status = 'Healthy' }",
    )]);
    unknown_containing(assess_with(&obj, &custom), "nested deeper");
}

#[test]
fn custom_health_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<CustomHealth>();
    let custom = load(&[("cert-manager.io_Certificate", CERTIFICATE)]);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let custom = custom.clone();
            std::thread::spawn(move || {
                let ready =
                    certificate(json!([{ "type": "Ready", "status": "True", "message": "ok" }]));
                assess_with(&ready, &custom).map(|h| h.status)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(
            h.join().expect("thread finished"),
            Some(HealthStatus::Healthy)
        );
    }
}

#[test]
fn long_messages_are_cut() {
    let h = run_widget_script("return { status = 'Degraded', message = string.rep('é', 100000) }")
        .expect("a health");
    assert_eq!(h.status, HealthStatus::Degraded);
    assert!(h.message.len() <= MAX_MESSAGE_BYTES && h.message.len() > MAX_MESSAGE_BYTES - 4);
    assert!(h.message.chars().all(|c| c == 'é'));
    let e = run_widget_script("error(string.rep('x', 100000))").expect("a health");
    assert_eq!(e.status, HealthStatus::Unknown);
    assert!(e.message.len() <= MAX_MESSAGE_BYTES);
}

#[test]
fn the_full_key_wins_over_the_same_bare_key() {
    for pattern in ["widgets.example.com_Widget", "*.example.com_*"] {
        let full = format!("resource.customizations.health.{pattern}");
        let custom = load(&[
            (
                pattern,
                r#"return { status = "Degraded", message = "bare" }"#,
            ),
            (&full, r#"return { status = "Healthy", message = "full" }"#),
        ]);
        assert_eq!(
            assess_with(&widget(), &custom),
            Some(Health::new(HealthStatus::Healthy, "full")),
            "{pattern}"
        );
    }
}
