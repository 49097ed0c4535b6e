//! Custom Lua health check figures (a bench binary; `cargo bench --bench health_lua`): the median
//! time of one evaluation of cert-manager's Certificate check (fresh sandboxed state, object
//! conversion, run, result), next to the built-in rule for a Deployment. Medians over ROUNDS runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use capstan::health::{CustomHealth, assess, assess_with};
use serde_json::json;

const ROUNDS: usize = 2_001;

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

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

fn time(mut f: impl FnMut()) -> f64 {
    let samples = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    median(samples)
}

fn main() {
    let (custom, errors) = CustomHealth::from_entries([(
        "resource.customizations.health.cert-manager.io_Certificate".to_string(),
        CERTIFICATE.to_string(),
    )]);
    assert!(errors.is_empty(), "the script compiles: {errors:?}");
    let certificate = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": { "name": "web-tls", "namespace": "default", "generation": 3,
                      "labels": { "app": "web" }, "annotations": { "note": "bench" } },
        "spec": { "secretName": "web-tls", "dnsNames": ["web.example.com", "www.example.com"],
                  "issuerRef": { "name": "letsencrypt", "kind": "ClusterIssuer" } },
        "status": { "notAfter": "2027-01-01T00:00:00Z", "revision": 3, "conditions": [
            { "type": "Issuing", "status": "False", "reason": "Done" },
            { "type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not expired" } ] }
    });
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web", "generation": 2 },
        "spec": { "replicas": 2 },
        "status": { "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2 }
    });
    let lua = time(|| {
        black_box(assess_with(black_box(&certificate), &custom));
    });
    let builtin = time(|| {
        black_box(assess(black_box(&deployment)));
    });
    println!("custom Lua check (Certificate), one evaluation: median {lua:.1} µs");
    println!("built-in rule (Deployment), one evaluation:     median {builtin:.2} µs");
}
