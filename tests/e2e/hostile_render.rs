//! A repository of alias bombs fails the whole source's render budget in the worker: the app
//! gets a readable condition and nothing is applied, while another app keeps syncing.

use serde_json::Value;

use crate::helpers::*;

/// A ~2 KB file whose aliases expand to ~60 MB (37,449 copies of a 1,600-byte string).
fn alias_bomb(i: usize) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb-{i}\ndata:\n  s: &l0 {}\n",
        "x".repeat(1600)
    );
    for level in 1..=5 {
        let items = vec![format!("*l{}", level - 1); 8].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{items}]\n"));
    }
    text
}

fn condition<'a>(app: &'a Value, type_: &str) -> Option<&'a str> {
    app.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["message"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_bomb_repository_is_a_budget_condition_and_other_apps_still_sync() {
    let app = spawn_app(Options::default()).await;
    // Sorted first, so it would be applied if the render produced anything.
    app.repo
        .write("hostile/a-legit.yaml", &config_map("hostile-legit", "x"));
    for i in 0..300 {
        app.repo
            .write(&format!("hostile/bomb-{i:03}.yaml"), &alias_bomb(i));
    }
    app.repo.write("good/cm.yaml", &config_map("good-cm", "y"));
    let commit = app.repo.commit("300 alias bombs and one good app");

    assert_eq!(
        app.create_app("hostile", "hostile", Some(true))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_app("good", "good", Some(true)).await.status(),
        201
    );

    let hostile = app
        .wait_app("hostile", 60, "a ComparisonError condition", |a| {
            condition(a, "ComparisonError").is_some()
        })
        .await;
    let message = condition(&hostile, "ComparisonError").unwrap_or("");
    assert!(
        message.contains("aliases expanded")
            && message.contains("exceeds the limit")
            && message.contains("hostile/bomb-"),
        "the condition names the budget and the file: {message}"
    );
    assert_ne!(sync_of(&hostile).0, "Synced");
    assert!(
        hostile.pointer("/status/operationState").is_none(),
        "no sync was attempted"
    );

    app.wait_app("good", 60, "the other app Synced", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    assert!(app.config_map("good-cm").await.is_some());
    for name in ["hostile-legit", "bomb-0", "bomb-1"] {
        assert!(
            app.config_map(name).await.is_none(),
            "{name} was applied from a source over budget"
        );
    }
}
