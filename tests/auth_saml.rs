//! SAML 2.0 login against a real identity provider: Debian's SimpleSAMLphp served by `php -S`
//! (tests/common/simplesamlphp.rs). A person logs in through the web UI in chromium and their
//! groups decide what they may sync; genuine responses are driven over HTTP and then tampered
//! with, or obtained for another audience, already expired, or answering a request Capstan never
//! sent, and each is refused with its reason.

mod common;
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fantoccini::Locator;
use serde_json::Value;

use capstan::auth::saml::SamlSettings;
use capstan::auth::saml::request::AuthnRequest;
use common::browser::{self, until_js};
use common::simplesamlphp::{
    PostedForm, ServiceProvider, SimpleSamlPhp, User, form_body, free_port,
};
use helpers::*;

/// Capstan's entity ID at the IdP.
const SP: &str = "urn:capstan:test";
/// Another service provider the IdP knows, with the same ACS: its assertions name it, not us.
const OTHER_SP: &str = "urn:other:service";
/// A service provider whose assertions SimpleSAMLphp issues already expired.
const EXPIRED_SP: &str = "urn:capstan:expired";

const ALICE: User = User {
    name: "alice",
    password: "alice-password",
    groups: &["deployers", "everyone"],
};
const BOB: User = User {
    name: "bob",
    password: "bob-password",
    groups: &["everyone"],
};

/// Deployers may sync `default/allowed`; everyone else reads (policy_default).
const POLICY: &str = "p, role:deployer, applications, sync, default/allowed, allow\n\
                      g, deployers, role:deployer\n";

struct Saml {
    idp: SimpleSamlPhp,
    app: TestApp,
    acs_url: String,
}

/// SimpleSAMLphp knowing Capstan (and two other SPs with the same ACS), and a Capstan trusting
/// it through the metadata SimpleSAMLphp publishes.
async fn start() -> Saml {
    let port = free_port();
    let acs_url = format!("http://127.0.0.1:{port}/auth/saml/acs");
    let sp = |entity_id: &str, assertion_lifetime| ServiceProvider {
        entity_id: entity_id.to_owned(),
        acs_url: acs_url.clone(),
        assertion_lifetime,
    };
    let idp = SimpleSamlPhp::start(
        &[sp(SP, None), sp(OTHER_SP, None), sp(EXPIRED_SP, Some(-600))],
        &[ALICE, BOB],
    )
    .await;
    let metadata = idp.metadata_file().await;
    let env = [
        ("CAPSTAN__SERVER__LISTEN", format!("127.0.0.1:{port}")),
        ("CAPSTAN__AUTH__SAML__SP_ENTITY_ID", SP.to_owned()),
        ("CAPSTAN__AUTH__SAML__ACS_URL", acs_url.clone()),
        (
            "CAPSTAN__AUTH__SAML__IDP_METADATA_FILE",
            metadata.display().to_string(),
        ),
        ("CAPSTAN__AUTH__SAML__USERNAME_ATTRIBUTE", "uid".to_owned()),
        ("CAPSTAN__AUTH__SAML__GROUPS_ATTRIBUTE", "groups".to_owned()),
        ("CAPSTAN__RBAC__POLICY_CSV", POLICY.to_owned()),
        ("CAPSTAN__RBAC__POLICY_DEFAULT", "role:readonly".to_owned()),
    ];
    let app = spawn_app(Options {
        extra_env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ..Default::default()
    })
    .await;
    assert!(
        app.address.ends_with(&format!(":{port}")),
        "{}",
        app.address
    );
    Saml { idp, app, acs_url }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

impl Saml {
    /// `GET /auth/saml/login`: where Capstan sends the browser (the IdP, with an AuthnRequest).
    async fn login_redirect(&self, return_to: &str) -> String {
        let mut url =
            reqwest::Url::parse(&format!("{}/auth/saml/login", self.app.address)).expect("url");
        url.query_pairs_mut().append_pair("return_to", return_to);
        let resp = http().get(url).send().await.expect("login");
        assert_eq!(resp.status(), 303);
        resp.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    /// A genuine response for `user` to a login Capstan started.
    async fn genuine(&self, user: &User) -> PostedForm {
        let to_idp = self.login_redirect("/projects").await;
        assert!(to_idp.starts_with(&self.idp.base_url), "{to_idp}");
        let form = self.idp.login(&to_idp, user.name, user.password).await;
        assert_eq!(form.action, self.acs_url, "the IdP posts to our ACS");
        assert_eq!(form.fields["RelayState"], "/projects");
        form
    }

    /// A response SimpleSAMLphp signs for a request Capstan did not send: issued as `issuer`.
    async fn foreign(&self, issuer: &str, user: &User) -> PostedForm {
        let settings: SamlSettings = serde_json::from_value(serde_json::json!({
            "sp_entity_id": issuer,
            "acs_url": self.acs_url,
        }))
        .expect("settings");
        let sso = format!("{}saml2/idp/SSOService.php", self.idp.base_url);
        let url = AuthnRequest::new(&settings, &sso, jiff::Timestamp::now())
            .redirect_url(&sso, "/")
            .expect("redirect url");
        self.idp.login(&url, user.name, user.password).await
    }

    /// Posts `saml_response` (base64) to the ACS as the IdP's page would.
    async fn post(&self, saml_response: &str) -> reqwest::Response {
        http()
            .post(&self.acs_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("SAMLResponse", saml_response),
                ("RelayState", "/projects"),
            ]))
            .send()
            .await
            .expect("acs")
    }

    /// Posts and expects a refusal naming `reason`; no session is opened.
    async fn refused(&self, saml_response: &str, reason: &str, what: &str) {
        let resp = self.post(saml_response).await;
        assert_eq!(resp.status(), 403, "{what}");
        assert!(
            resp.headers().get("set-cookie").is_none(),
            "{what}: a refused response set a cookie"
        );
        let page = resp.text().await.expect("page");
        assert!(
            page.contains(reason),
            "{what}: expected {reason:?} in\n{page}"
        );
    }
}

fn decode(form: &PostedForm) -> String {
    String::from_utf8(
        STANDARD
            .decode(&form.fields["SAMLResponse"])
            .expect("base64"),
    )
    .expect("utf-8")
}

fn encode(xml: &str) -> String {
    STANDARD.encode(xml)
}

/// `xml` without its `<ds:Signature>…</ds:Signature>` elements.
fn without_signatures(xml: &str) -> String {
    let mut out = xml.to_owned();
    while let Some(start) = out.find("<ds:Signature") {
        let end = out[start..].find("</ds:Signature>").expect("signature end")
            + start
            + "</ds:Signature>".len();
        out.replace_range(start..end, "");
    }
    out
}

/// The session cookie pair a response set.
fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("capstan_session="))
        .and_then(|v| v.split(';').next())
        .expect("the ACS sets the session cookie")
        .to_owned()
}

async fn userinfo(app: &TestApp, cookie: &str) -> reqwest::Response {
    http()
        .get(format!("{}/api/v1/session/userinfo", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .expect("userinfo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_response_from_simplesamlphp_signs_the_user_in_with_their_groups_only_once() {
    let saml = start().await;
    let app = &saml.app;

    // What the IdP's administrator imports, and the login page's button.
    let metadata = http()
        .get(format!("{}/auth/saml/metadata", app.address))
        .send()
        .await
        .expect("metadata");
    assert_eq!(metadata.status(), 200);
    let metadata = metadata.text().await.expect("text");
    assert!(
        metadata.contains(&format!(r#"entityID="{SP}""#)),
        "{metadata}"
    );
    assert!(
        metadata.contains(&format!(r#"Location="{}""#, saml.acs_url)),
        "{metadata}"
    );
    let login_page = http()
        .get(format!("{}/login", app.address))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("text");
    assert!(
        login_page.contains(r#"href="/auth/saml/login""#) && login_page.contains("Log in via SAML"),
        "{login_page}"
    );

    let form = saml.genuine(&ALICE).await;
    let resp = saml.post(&form.fields["SAMLResponse"]).await;
    assert_eq!(
        resp.status(),
        303,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    assert_eq!(resp.headers()["location"], "/projects");
    let cookie = session_cookie(&resp);
    let me = userinfo(app, &cookie).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["iss"], "saml");
    assert_eq!(me["groups"], serde_json::json!(["deployers", "everyone"]));

    // The same response again, as someone who copied it would post it.
    saml.refused(
        &form.fields["SAMLResponse"],
        "the assertion was already used",
        "a replayed response",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_unsigned_and_wrapped_assertions_are_refused() {
    let saml = start().await;
    let form = saml.genuine(&BOB).await;
    let xml = decode(&form);
    assert!(
        xml.contains("<ds:Signature"),
        "SimpleSAMLphp signs its responses"
    );

    // Bob's group changed to one that may deploy: the digest no longer matches.
    assert!(xml.contains(">everyone<"), "{xml}");
    let promoted = xml.replace(">everyone<", ">deployers<");
    saml.refused(
        &encode(&promoted),
        "a signature does not verify",
        "a changed attribute",
    )
    .await;

    // No signature at all.
    saml.refused(
        &encode(&without_signatures(&xml)),
        "neither the response nor its assertion is signed",
        "an unsigned response",
    )
    .await;

    // A second, unsigned assertion for someone else beside the signed one (signature wrapping).
    let start = xml.find("<saml:Assertion").expect("assertion");
    let end = xml.find("</saml:Assertion>").expect("assertion end") + "</saml:Assertion>".len();
    let evil = without_signatures(&xml[start..end])
        .replace(">bob<", ">admin<")
        .replacen(" ID=\"", " ID=\"evil", 1);
    let mut wrapped = xml.clone();
    wrapped.insert_str(start, &evil);
    saml.refused(
        &encode(&wrapped),
        "the response carries 2 assertions; exactly one is accepted",
        "a wrapped assertion",
    )
    .await;
    // Only the signed assertion, but the response claims it answers another request.
    let rerouted = xml.replacen("InResponseTo=\"", "InResponseTo=\"x", 1);
    assert_ne!(rerouted, xml);
    saml.refused(
        &encode(&rerouted),
        "a signature does not verify",
        "a response rerouted to another request",
    )
    .await;

    // Refusals consumed nothing: the untouched response still signs Bob in, as a reader.
    let resp = saml.post(&form.fields["SAMLResponse"]).await;
    assert_eq!(resp.status(), 303);
    let me: Value = userinfo(&saml.app, &session_cookie(&resp))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "bob");
    assert_eq!(me["groups"], serde_json::json!(["everyone"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_for_another_audience_expired_or_answering_no_request_of_ours_are_refused() {
    let saml = start().await;

    // Signed by the IdP, but for another service provider that shares our ACS URL.
    let other = saml.foreign(OTHER_SP, &ALICE).await;
    assert!(decode(&other).contains(OTHER_SP));
    saml.refused(
        &other.fields["SAMLResponse"],
        "the assertion is meant for another audience",
        "another audience",
    )
    .await;

    // Signed by the IdP for us, but already past NotOnOrAfter.
    let expired = saml.foreign(EXPIRED_SP, &ALICE).await;
    saml.refused(
        &expired.fields["SAMLResponse"],
        "the assertion has expired",
        "an expired assertion",
    )
    .await;

    // Signed by the IdP for us, answering an AuthnRequest Capstan never issued.
    let unsolicited = saml.foreign(SP, &ALICE).await;
    saml.refused(
        &unsolicited.fields["SAMLResponse"],
        "the response answers no login this server started",
        "an unknown InResponseTo",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_logs_in_via_saml_in_the_browser_syncs_what_their_group_allows_and_logs_out() {
    let saml = start().await;
    let app = &saml.app;
    for name in ["allowed", "forbidden"] {
        app.repo
            .write(&format!("{name}/cm.yaml"), &config_map(name, "1"));
    }
    app.repo.commit("two apps");
    for name in ["allowed", "forbidden"] {
        assert_eq!(app.create_app(name, name, None).await.status(), 201);
    }
    let profile = tempfile::tempdir().expect("profile");
    let b = browser::browser(profile.path()).await;
    let c = &b.client;

    c.goto(&format!("{}/login", app.address))
        .await
        .expect("login page");
    c.find(Locator::LinkText("Log in via SAML"))
        .await
        .expect("the SAML button")
        .click()
        .await
        .expect("click");
    // SimpleSAMLphp's own login form.
    let user = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("input[name=username]"))
        .await
        .expect("SimpleSAMLphp's login form");
    assert!(
        c.current_url()
            .await
            .expect("url")
            .as_str()
            .starts_with(&saml.idp.base_url)
    );
    user.send_keys(ALICE.name).await.expect("type user");
    let password = c
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field");
    password
        .send_keys(&format!("{}\u{E007}", ALICE.password))
        .await
        .expect("type password and Enter");
    // SimpleSAMLphp's page posts the response to our ACS; Capstan shows who is signed in.
    until_js(
        c,
        30,
        "signed in to Capstan as alice",
        &format!(
            "return location.origin === {:?} && document.querySelector('.who')?.textContent === 'alice'",
            app.address
        ),
    )
    .await;
    let who: Value = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/v1/session/userinfo').then(r => r.json()).then(done);",
            vec![],
        )
        .await
        .expect("userinfo in the page");
    assert_eq!(who["groups"], serde_json::json!(["deployers", "everyone"]));
    assert_eq!(who["iss"], "saml");

    // The sync dialog on each app's page: allowed for deployers, refused with the reason otherwise.
    for (name, expected) in [
        ("allowed", "Sync queued"),
        ("forbidden", "permission denied"),
    ] {
        c.goto(&format!(
            "{}/applications/{APP_NAMESPACE}/{name}",
            app.address
        ))
        .await
        .expect("app page");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("button[data-action='sync-open']"))
            .await
            .expect("sync button")
            .click()
            .await
            .expect("open the sync dialog");
        c.find(Locator::Css("#sync-dialog button[value='sync']"))
            .await
            .expect("synchronize")
            .click()
            .await
            .expect("synchronize");
        until_js(
            c,
            10,
            &format!("the toast says {expected:?} for {name}"),
            &format!(
                "return (document.getElementById('toast')?.textContent || '').includes({expected:?})"
            ),
        )
        .await;
    }
    let cookie = c
        .get_named_cookie("capstan_session")
        .await
        .expect("the session cookie");
    let cookie = format!("capstan_session={}", cookie.value());
    assert_eq!(userinfo(app, &cookie).await.status(), 200);

    // Logging out ends the session on the server, not only in this browser.
    c.find(Locator::Css("form.logout button[type=submit]"))
        .await
        .expect("log out")
        .click()
        .await
        .expect("click");
    until_js(
        c,
        10,
        "back on the login page",
        "return location.pathname === '/login'",
    )
    .await;
    assert_eq!(userinfo(app, &cookie).await.status(), 401);
}
