//! The OIDC client against npm's real `oidc-provider` on loopback (`tests/oidc-provider/`).
//!
//! Each test starts its own provider with `node server.mjs` on a free port and drives its login
//! form with plain HTTP and a cookie jar, stopping at the redirect to Gantry's callback.
//! Node comes from `GANTRY_NODE` (default `node` on the PATH), the provider from
//! `npm ci --prefix crates/gantry-server/tests/oidc-provider`.
//! Like the relay-sdk test, a missing Node or provider fails the test rather than skipping it:
//! CI installs both.

use std::error::Error as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use gantry_server::authz::Role;
use gantry_server::oidc::{
    map_groups, Grants, GroupMapping, OidcClient, OidcError, OidcSettings, PendingLogin,
};

const CLIENT_ID: &str = "gantry";
const CLIENT_SECRET: &str = "gantry-test-client-secret";
// Nothing listens here: the browser stand-in stops at the redirect to it.
const REDIRECT_URL: &str = "http://127.0.0.1:1/auth/oidc/callback";

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// A running `server.mjs`; dropping it stops the process.
struct Provider {
    issuer: String,
    stderr: Arc<Mutex<String>>,
    _child: Child,
    // Closing it makes the provider exit even if this process dies before the kill.
    _stdin: ChildStdin,
}

impl Provider {
    async fn start() -> Provider {
        Provider::start_for(REDIRECT_URL).await
    }

    /// A provider whose one client comes back to `redirect`.
    async fn start_for(redirect: &str) -> Provider {
        let node = std::env::var_os("GANTRY_NODE").unwrap_or_else(|| "node".into());
        let dir = harness_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the OpenID provider is not installed in {} (run `npm ci --prefix {} --no-audit \
             --no-fund`)",
            dir.display(),
            dir.display()
        );
        let mut child = Command::new(&node)
            .current_dir(&dir)
            .args(["server.mjs", "--port", "0", "--exit-on-stdin-close"])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .args(["--redirect-uri", redirect])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): the OIDC tests need Node 18 or later (set GANTRY_NODE, \
                     or `apt-get install nodejs npm`)",
                    node.to_string_lossy()
                )
            });
        let stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut stderr_pipe = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text).await;
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&text);
        });

        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let issuer = match first {
            Ok(Ok(Some(line))) if line.starts_with("ready ") => {
                // Keep the pipe open and drained: a provider writing to a closed pipe would die.
                let sink = stderr.clone();
                tokio::spawn(async move {
                    while let Ok(Some(line)) = lines.next_line().await {
                        let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                        log.push_str(&line);
                        log.push('\n');
                    }
                });
                line["ready ".len()..].to_owned()
            }
            other => {
                // Give the stderr reader a moment to collect why the provider died.
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!(
                    "the OpenID provider did not start ({other:?}); its stderr:\n{}",
                    stderr.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        };
        Provider {
            issuer,
            stderr,
            _child: child,
            _stdin: stdin,
        }
    }

    fn settings(&self) -> OidcSettings {
        OidcSettings {
            issuer: self.issuer.clone(),
            client_id: CLIENT_ID.to_owned(),
            client_secret: Some(CLIENT_SECRET.to_owned()),
            redirect_url: REDIRECT_URL.to_owned(),
            scopes: ["email", "profile", "groups"].map(String::from).to_vec(),
            groups_claim: "groups".to_owned(),
        }
    }

    async fn client(&self) -> OidcClient {
        OidcClient::discover(self.settings())
            .await
            .unwrap_or_else(|e| panic!("discovery: {e}\nprovider stderr:\n{}", self.stderr()))
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the provider sent the browser back to Gantry with.
#[derive(Debug)]
struct Callback {
    code: String,
    state: String,
}

fn form_action(html: &str) -> Option<&str> {
    let start = html.find("action=\"")? + "action=\"".len();
    let len = html[start..].find('"')?;
    Some(&html[start..start + len])
}

/// Plays the browser: follows the provider's redirects, fills its login form as `login`, and
/// stops at the redirect to Gantry's callback.
async fn log_in(authorize_url: &str, login: &str) -> Callback {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("browser: {e}"));
    let send = |request: reqwest::RequestBuilder| async move {
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to the provider: {e} ({:?})", e.source()))
    };
    let mut response = send(browser.get(authorize_url)).await;
    for _ in 0..10 {
        let here = response.url().clone();
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or_else(|| panic!("a {status} from {here} without a Location"));
            let next = here
                .join(location)
                .unwrap_or_else(|e| panic!("Location {location}: {e}"));
            if next.as_str().starts_with(REDIRECT_URL) {
                return callback(&next);
            }
            response = send(browser.get(next)).await;
        } else if status == StatusCode::OK {
            let html = response.text().await.unwrap_or_default();
            let action =
                form_action(&html).unwrap_or_else(|| panic!("no login form at {here}:\n{html}"));
            let target = here
                .join(action)
                .unwrap_or_else(|e| panic!("form action {action}: {e}"));
            response = send(browser.post(target).form(&[("login", login)])).await;
        } else {
            let body = response.text().await.unwrap_or_default();
            panic!("{status} from {here}:\n{body}");
        }
    }
    panic!("the provider did not redirect to the callback within 10 steps");
}

fn callback(url: &Url) -> Callback {
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        panic!(
            "the provider refused the login: {error} ({})",
            param("error_description").unwrap_or_default()
        );
    }
    Callback {
        code: param("code").unwrap_or_else(|| panic!("no code in the callback")),
        state: param("state").unwrap_or_else(|| panic!("no state in the callback")),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|&s| s.to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_logs_in_and_her_groups_grant_a_team_and_a_role() {
    let provider = Provider::start().await;
    let client = provider.client().await;
    let (url, pending) = client.begin();
    let authorize = Url::parse(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let query: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let has = |k: &str, v: &str| query.iter().any(|(a, b)| a == k && b == v);
    assert!(has("code_challenge_method", "S256"), "{url}");
    assert!(has("scope", "openid email profile groups"), "{url}");
    assert!(has("state", &pending.state), "{url}");

    // The caller keeps the pending login in its own store between the two requests.
    let stored = serde_json::to_string(&pending).unwrap_or_else(|e| panic!("{e}"));
    let pending: PendingLogin = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{e}"));

    let back = log_in(&url, "alice").await;
    assert_eq!(back.state, pending.state);
    let alice = client
        .finish(&back.code, &back.state, &pending)
        .await
        .unwrap_or_else(|e| panic!("finish: {e}\nprovider stderr:\n{}", provider.stderr()));
    assert_eq!(alice.subject, "alice");
    assert_eq!(alice.issuer, provider.issuer);
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert!(alice.email_verified);
    assert_eq!(alice.name.as_deref(), Some("Alice Example"));
    assert_eq!(alice.groups, names(&["platform", "sre"]));

    let mapping: GroupMapping =
        serde_json::from_str(r#"{"platform": {"team": "platform"}, "sre": {"role": "approver"}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        map_groups(&alice.groups, &mapping),
        Grants {
            teams: names(&["platform"]),
            role: Some(Role::Approver),
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bob_has_no_groups_and_an_unverified_email() {
    let provider = Provider::start().await;
    let client = provider.client().await;
    let (url, pending) = client.begin();
    let back = log_in(&url, "bob").await;
    let bob = client
        .finish(&back.code, &back.state, &pending)
        .await
        .unwrap_or_else(|e| panic!("finish: {e}"));
    assert_eq!(bob.subject, "bob");
    assert_eq!(bob.email.as_deref(), Some("bob@example.com"));
    assert!(!bob.email_verified);
    assert!(bob.groups.is_empty());
    assert_eq!(
        map_groups(&bob.groups, &GroupMapping::default()),
        Grants::default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_code_needs_the_pkce_verifier_of_its_own_login() {
    let provider = Provider::start().await;
    let client = provider.client().await;
    let (url, pending) = client.begin();
    let (_, other) = client.begin();
    let back = log_in(&url, "alice").await;

    let err = client
        .exchange(&back.code, &other)
        .await
        .err()
        .unwrap_or_else(|| panic!("a code was exchanged with another login's verifier"));
    assert!(matches!(err, OidcError::CodeRefused(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(!message.contains(&back.code), "{message}");
    // The refusal was about the verifier: the same code with its own verifier still works.
    let token = client
        .exchange(&back.code, &pending)
        .await
        .unwrap_or_else(|e| panic!("the code with its own verifier: {e}"));
    assert!(client.verify(&token, &pending).is_ok());
}

/// `token` with its payload rewritten by `edit`, the header and signature kept.
fn with_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "an ID token is a JWS in compact form");
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap_or_else(|e| panic!("payload: {e}"));
    let mut payload: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
    edit(&mut payload);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// `token` with one character in the middle of its signature changed.
fn with_signature_changed(token: &str) -> String {
    let (signed, signature) = token
        .rsplit_once('.')
        .unwrap_or_else(|| panic!("no signature"));
    let mut chars: Vec<char> = signature.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", chars.into_iter().collect::<String>())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_id_token_is_rejected() {
    let provider = Provider::start().await;
    let client = provider.client().await;
    let (url, pending) = client.begin();
    let back = log_in(&url, "alice").await;
    let token = client
        .exchange(&back.code, &pending)
        .await
        .unwrap_or_else(|e| panic!("exchange: {e}"));

    let untouched = client
        .verify(&token, &pending)
        .unwrap_or_else(|e| panic!("the provider's own token: {e}"));
    assert_eq!(untouched.groups, names(&["platform", "sre"]));

    let promoted = with_payload(&token, |claims| {
        claims["groups"] = serde_json::json!(["admin"])
    });
    assert_ne!(promoted, token);
    let err = client
        .verify(&promoted, &pending)
        .err()
        .unwrap_or_else(|| panic!("a token with rewritten groups verified"));
    assert!(matches!(err, OidcError::Signature(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the ID token's signature does not verify"),
        "{err}"
    );
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(!err.to_string().contains(signature), "{err}");

    let resigned = with_signature_changed(&token);
    let err = client
        .verify(&resigned, &pending)
        .err()
        .unwrap_or_else(|| panic!("a token with a changed signature verified"));
    assert!(matches!(err, OidcError::Signature(_)), "{err:?}");

    let err = client
        .verify("not.a-token", &pending)
        .err()
        .unwrap_or_else(|| panic!("garbage verified"));
    assert!(matches!(err, OidcError::MalformedIdToken), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_state_or_nonce_is_rejected() {
    let provider = Provider::start().await;
    let client = provider.client().await;
    let (url, pending) = client.begin();
    let (_, other) = client.begin();
    let back = log_in(&url, "alice").await;

    let err = client
        .finish(&back.code, &other.state, &pending)
        .await
        .err()
        .unwrap_or_else(|| panic!("finished with another login's state"));
    assert!(matches!(err, OidcError::StateMismatch), "{err:?}");
    assert_eq!(err.to_string(), "state does not match");

    // The state is checked before the code is spent, so the code still works.
    let token = client
        .exchange(&back.code, &pending)
        .await
        .unwrap_or_else(|e| panic!("exchange: {e}"));
    let err = client
        .verify(&token, &other)
        .err()
        .unwrap_or_else(|| panic!("verified with another login's nonce"));
    assert!(matches!(err, OidcError::Nonce(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the ID token's nonce does not match"),
        "{err}"
    );
    assert!(client.verify(&token, &pending).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_works_once() {
    let provider = Provider::start().await;
    let client = provider.client().await;
    let (url, pending) = client.begin();
    let back = log_in(&url, "alice").await;
    client
        .finish(&back.code, &back.state, &pending)
        .await
        .unwrap_or_else(|e| panic!("first use: {e}"));
    let err = client
        .finish(&back.code, &back.state, &pending)
        .await
        .err()
        .unwrap_or_else(|| panic!("a code was used twice"));
    assert!(matches!(err, OidcError::CodeRefused(_)), "{err:?}");
    assert!(err.to_string().contains("invalid_grant"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn discovering_an_unreachable_issuer_says_where_and_why() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("bind: {e}"))
        .port();
    let settings = OidcSettings {
        issuer: format!("http://127.0.0.1:{port}"),
        client_id: CLIENT_ID.to_owned(),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        redirect_url: REDIRECT_URL.to_owned(),
        scopes: Vec::new(),
        groups_claim: "groups".to_owned(),
    };
    let err = OidcClient::discover(settings.clone())
        .await
        .err()
        .unwrap_or_else(|| panic!("discovered nothing"));
    assert!(matches!(err, OidcError::Discovery { .. }), "{err:?}");
    let message = err.to_string();
    let expected =
        format!("discovery at http://127.0.0.1:{port}/.well-known/openid-configuration failed: ");
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.to_lowercase().contains("connect"), "{message}");
    assert!(!message.contains(CLIENT_SECRET), "{message}");

    let err = OidcClient::discover(OidcSettings {
        issuer: "not a url".to_owned(),
        ..settings
    })
    .await
    .err()
    .unwrap_or_else(|| panic!("discovered nothing"));
    assert_eq!(err.to_string(), "the issuer `not a url` is not a valid URL");
}

/// Plays a browser through Gantry's own sign-in: `/auth/oidc/login`, the provider's form,
/// Gantry's callback; returns the last answer (Gantry's redirect home, or its refusal).
async fn sign_in_through(
    browser: &reqwest::Client,
    gantry: &str,
    login: &str,
) -> reqwest::Response {
    let mut response = browser
        .get(format!("{gantry}/auth/oidc/login?next=/runs"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..12 {
        let here = response.url().clone();
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()[reqwest::header::LOCATION]
                .to_str()
                .unwrap_or_else(|e| panic!("{e}"))
                .to_owned();
            let next = here.join(&location).unwrap_or_else(|e| panic!("{e}"));
            // Gantry's redirect home ends the dance.
            if here
                .as_str()
                .starts_with(&format!("{gantry}/auth/oidc/callback"))
            {
                return response;
            }
            response = browser
                .get(next)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        } else if status == StatusCode::OK && !here.as_str().starts_with(gantry) {
            let html = response.text().await.unwrap_or_default();
            let action = form_action(&html).unwrap_or_else(|| panic!("no form at {here}"));
            let target = here.join(action).unwrap_or_else(|e| panic!("{e}"));
            response = browser
                .post(target)
                .form(&[("login", login)])
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        } else {
            return response;
        }
    }
    panic!("the sign-in did not end within 12 steps");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gantry_server_signs_alice_in_and_her_groups_grant_a_team_and_a_role() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gantry = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let provider = Provider::start_for(&format!("{gantry}/auth/oidc/callback")).await;
    let config: gantry_server::api::login::SsoConfig = serde_json::from_value(serde_json::json!({
        "issuer": provider.issuer,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "defaultRole": "viewer",
        "groups": {"platform": {"team": "platform"}, "sre": {"role": "approver"}},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let api = crate::api::api_with(&gantry, Some(config.into_sso(&gantry))).await;
    let app = api
        .app()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));

    let home = sign_in_through(&browser, &gantry, "alice").await;
    assert_eq!(
        home.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        home.text().await
    );
    assert_eq!(home.headers()[reqwest::header::LOCATION], "/runs");
    let me: Value = browser
        .get(format!("{gantry}/api/v1/me"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    assert_eq!(me["name"], "alice@example.com", "{me}");
    assert_eq!(me["role"], "approver", "{me}");
    let (_, users) = api.as_admin("GET", "/api/v1/users", "").await;
    let alice = users["items"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["email"] == "alice@example.com"))
        .cloned()
        .unwrap_or_else(|| panic!("alice was not created: {users}"));
    assert_eq!(alice["ssoOnly"], true);
    assert_eq!(
        alice["teams"],
        serde_json::json!([{"team": "platform", "maintainer": false}])
    );
    // The session is an SSO one, and the changes it made are audited as Alice's.
    let session: Value = browser
        .get(format!("{gantry}/auth/session"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    assert_eq!(session["via"], "oidc");
    let (_, log) = api
        .as_admin("GET", "/api/v1/audit?actor=alice@example.com", "")
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .map(|i| i.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        [
            "session.create",
            "team.member.put",
            "team.create",
            "user.create"
        ]
    );

    // Bob's email is not verified: no session, and the failure is audited.
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = sign_in_through(&other, &gantry, "bob").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value =
        serde_json::from_str(&refused.text().await.unwrap_or_default()).unwrap_or_default();
    assert_eq!(body["code"], "login_failed");
    let (_, failed) = api
        .as_admin("GET", "/api/v1/audit?action=login.failed", "")
        .await;
    assert_eq!(
        failed["items"][0]["after"]["reason"],
        "the provider gave no verified email"
    );
    // A callback with no login in progress in the browser is refused too.
    let forged = other
        .get(format!("{gantry}/auth/oidc/callback?code=abc&state=def"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}
