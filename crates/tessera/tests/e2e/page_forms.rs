//! The sign-in and consent forms as a browser submits them: the served HTML form is parsed
//! and every one of its fields is posted, in document order, with the button clicked. The
//! authorization request never reaches the forms' fields, so parameters of a crafted request
//! (`decision=allow`, `username=…`) can neither answer the consent page nor sign anyone in.

use reqwest::StatusCode;

use crate::browser_support::*;
use crate::support::Creds;

/// One control of a form, as served.
#[derive(Debug, Clone)]
pub struct Control {
    tag: String,
    kind: String,
    pub name: String,
    value: String,
}

fn attrs(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default()
            .to_owned();
        let after = &rest[eq + 2..];
        let end = after.find('"').expect("closed attribute");
        out.push((name, unescape(&after[..end])));
        rest = &after[end + 1..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The controls of the page's one form, in document order.
pub fn controls(page: &Page) -> Vec<Control> {
    let start = page.body.find("<form").expect("a form");
    let end = page.body[start..].find("</form>").expect("form end") + start;
    let form = &page.body[start..end];
    let mut out = Vec::new();
    for piece in form.split('<').skip(1) {
        let tag: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        if tag != "input" && tag != "button" {
            continue;
        }
        let head = piece.split('>').next().unwrap_or_default();
        let a = attrs(head);
        let get = |n: &str| a.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let Some(name) = get("name") else { continue };
        let kind = get("type")
            .unwrap_or_else(|| if tag == "button" { "submit" } else { "text" }.to_owned());
        out.push(Control {
            tag,
            kind,
            name,
            value: get("value").unwrap_or_default(),
        });
    }
    out
}

/// What a browser posts for the form of `page`: every field in document order, the text
/// and password inputs filled from `typed`, and of the submit buttons only `clicked`.
pub fn submission(
    page: &Page,
    typed: &[(&str, &str)],
    clicked: Option<(&str, &str)>,
) -> Vec<(String, String)> {
    controls(page)
        .into_iter()
        .filter_map(|c| match c.kind.as_str() {
            "submit" => {
                (clicked == Some((c.name.as_str(), c.value.as_str()))).then_some((c.name, c.value))
            }
            "text" | "password" => {
                let v = typed
                    .iter()
                    .find(|(k, _)| *k == c.name)
                    .map_or(c.value.clone(), |(_, v)| (*v).to_owned());
                Some((c.name, v))
            }
            _ => Some((c.name, c.value)),
        })
        .collect()
}

async fn sign_in(b: &mut Browser, page: &Page, username: &str) -> Page {
    assert!(page.is_login(), "{} {}", page.status, page.body);
    let fields = submission(
        page,
        &[("username", username), ("password", PASSWORD)],
        None,
    );
    b.post("/oauth2/authorize", &fields).await
}

async fn click(b: &mut Browser, page: &Page, decision: &str) -> Page {
    assert!(page.is_consent(), "{} {}", page.status, page.body);
    let fields = submission(page, &[], Some(("decision", decision)));
    b.post("/oauth2/authorize", &fields).await
}

/// Whether the server remembers a consent of this browser's user for `scope`: `prompt=none`
/// gets a code only then.
async fn consent_remembered(b: &mut Browser, client: &Creds, scope: &str) -> bool {
    let page = b.get(&authorize_path(client, scope, "prompt=none")).await;
    let p = page.redirect_params();
    match p.get("error").map(String::as_str) {
        Some("consent_required") => false,
        None => p.contains_key("code"),
        Some(other) => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn the_forms_carry_their_own_fields_only_and_the_flow_works_as_submitted() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let login = b
        .get(&authorize_path(&client, "openid read", "productId=p-42"))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let names: Vec<String> = controls(&login).into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["_request", "_csrf", "_action", "username", "password"],
        "{}",
        login.body
    );
    // The request's values are sealed in the handle, not copied into the page.
    assert!(!login.body.contains("p-42") && !login.body.contains("st-123"));
    let consent = sign_in(&mut b, &login, "alice").await;
    let fields: Vec<(String, String, String)> = controls(&consent)
        .into_iter()
        .map(|c| (c.tag, c.name, c.value))
        .filter(|(_, n, _)| n != "_request" && n != "_csrf")
        .collect();
    assert_eq!(
        fields,
        [
            ("input".into(), "_action".into(), "consent".into()),
            ("button".into(), "decision".into(), "deny".into()),
            ("button".into(), "decision".into(), "allow".into()),
        ]
    );
    let done = click(&mut b, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let p = done.redirect_params();
    assert_eq!(p["state"], "st-123");
    let res = exchange(&server, &client, &p["code"], Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_smuggled_decision_cannot_turn_deny_into_allow() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid read", "")).await;
    let consent = sign_in(&mut b, &login, "alice").await;
    assert!(consent.is_consent());
    // A crafted request naming the consent form's field is refused outright.
    let crafted = b
        .get(&authorize_path(
            &client,
            "openid read",
            "prompt=consent&decision=allow",
        ))
        .await;
    assert_eq!(crafted.status, StatusCode::BAD_REQUEST, "{}", crafted.body);
    assert!(crafted.location().is_none());
    assert!(crafted.body.contains("decision"), "{}", crafted.body);
    // A post where a second `decision` precedes the clicked one is refused too.
    let mut doubled = submission(&consent, &[], Some(("decision", "deny")));
    doubled.insert(1, ("decision".into(), "allow".into()));
    let refused = b.post("/oauth2/authorize", &doubled).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.location().is_none());
    // Deny, as clicked: the client gets access_denied and nothing is remembered.
    let denied = click(&mut b, &consent, "deny").await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.body);
    let p = denied.redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert!(!p.contains_key("code"));
    assert!(!consent_remembered(&mut b, &client, "openid read").await);
}

#[tokio::test]
async fn a_smuggled_login_signs_nobody_in_and_keeps_the_signed_in_user() {
    let (server, client) = setup(&[]).await;
    server.create_user("mallory", "mallory's password").await;
    let crafted = authorize_path(
        &client,
        "openid",
        "_action=login&username=mallory&password=mallory%27s+password",
    );
    // A victim with no session: refused, no session made.
    let mut victim = Browser::new(&server);
    let page = victim.get(&crafted).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(!victim.cookies.keys().any(|k| k.contains("session")));
    // The victim signs in on a page of that crafted request's shape (without the smuggled
    // fields) with their own name: they are who they typed.
    let login = victim.get(&authorize_path(&client, "openid", "")).await;
    let consent = sign_in(&mut victim, &login, "alice").await;
    assert!(consent.body.contains("alice"), "{}", consent.body);
    assert!(!consent.body.contains("mallory"));
    let session = victim.cookies.clone();
    // A signed-in victim: refused, and the session is not swapped.
    let page = victim.get(&crafted).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert_eq!(victim.cookies, session);
    let again = victim
        .get(&authorize_path(&client, "openid", "prompt=consent"))
        .await;
    assert!(again.body.contains("alice") && !again.body.contains("mallory"));
}

#[tokio::test]
async fn forms_with_unknown_repeated_or_foreign_fields_are_refused() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let good = submission(
        &login,
        &[("username", "alice"), ("password", PASSWORD)],
        None,
    );
    let post = |fields: Vec<(String, String)>| {
        let mut b2 = Browser::new(&server);
        b2.cookies = b.cookies.clone();
        async move { b2.post("/oauth2/authorize", &fields).await }
    };
    // An unknown field (a request parameter, as the old forms carried them).
    let mut unknown = good.clone();
    unknown.push(("scope".into(), "openid read".into()));
    let page = post(unknown).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(!page_sets_session(&page));
    // A repeated field.
    let mut repeated = good.clone();
    repeated.insert(0, ("username".into(), "mallory".into()));
    let page = post(repeated).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    // A consent form field on the sign-in form.
    let mut foreign = good.clone();
    foreign.push(("decision".into(), "allow".into()));
    assert_eq!(post(foreign).await.status, StatusCode::BAD_REQUEST);
    // Without the handle, or with another browser's handle, the form has expired.
    let without: Vec<_> = good
        .iter()
        .filter(|(k, _)| k != "_request")
        .cloned()
        .collect();
    assert_eq!(post(without).await.status, StatusCode::FORBIDDEN);
    let mut other = Browser::new(&server);
    let other_login = other.get(&authorize_path(&client, "openid", "")).await;
    let theirs = controls(&other_login)
        .into_iter()
        .find(|c| c.name == "_request")
        .unwrap()
        .value;
    let swapped: Vec<_> = good
        .iter()
        .map(|(k, v)| {
            let v = if k == "_request" {
                theirs.clone()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    assert_eq!(post(swapped).await.status, StatusCode::FORBIDDEN);
    // The genuine submission still works, and its consent form refuses a made-up decision.
    let consent = b.post("/oauth2/authorize", &good).await;
    assert!(consent.is_consent(), "{}", consent.body);
    let page = b
        .post(
            "/oauth2/authorize",
            &submission(&consent, &[], Some(("decision", "deny")))
                .into_iter()
                .map(|(k, v)| {
                    let v = if k == "decision" { "maybe".into() } else { v };
                    (k, v)
                })
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location().is_none());
}

fn page_sets_session(page: &Page) -> bool {
    page.headers
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap_or_default().contains("session"))
}
