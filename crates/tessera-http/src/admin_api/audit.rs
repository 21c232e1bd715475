//! The audit trail on the admin API: `GET /admin/audit` (scope `audit:read`) lists it with
//! the filters and paging of `tessera audit` ([`tessera_core::admin::audit`]); and the admin
//! API's own events are recorded here ([`tessera_core::audit`]).
//!
//! - Every credential checked by the frame is recorded: accepted (`admin_token_used`, with
//!   the scope the route needed) or refused (`admin_token_refused`: none, unknown, expired,
//!   revoked, or too little scope), with the request id and the source address. The
//!   presented value is never recorded.
//! - Every change made through the API ([`record_changes`], a layer over the routes) is
//!   recorded once the handler has answered: its kind from the route ([`change_kind`]), the
//!   admin token as the actor, the record named in the path (or, for a creation, the id in
//!   the answer: `client_id`, `id`, `user_id` or `name`, never another field) as the target,
//!   and the outcome (`failure` with the status for a refused change). Reads are not
//!   recorded beyond the credential's use.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::audit::{self as core_audit, AuditQuery};
use tessera_core::audit::{self, Actor, AuditEvent, AuditKind, RequestMeta};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{AdminActor, ApiResult, AuditRead, Need, Query, RequestId};
use crate::state::AppState;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/audit", get(list))
}

/// The description of these routes.
#[derive(OpenApi)]
#[openapi(paths(list), components(schemas(AuditEntry, AuditPage)))]
pub struct AuditApi;

/// Which entries to list; each parameter given narrows the listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only entries at or after this time: Unix seconds, RFC 3339 in UTC
    /// (`2026-12-05T01:00:00Z`) or an age back from now (`15m`, `24h`, `7d`).
    pub since: Option<String>,
    /// Only entries at or before this time (same forms as `since`).
    pub until: Option<String>,
    /// Only entries by this actor: `cli`, `admin_token:ID`, `client:ID`, `user:ID` or
    /// `anonymous`.
    pub actor: Option<String>,
    /// Only entries about this target (a client id, a user id, ...).
    pub target: Option<String>,
    /// Only entries of this kind (`client_created`, `client_auth_failed`, ...).
    pub kind: Option<String>,
    /// Only entries with this outcome.
    #[param(pattern = "^(success|failure)$")]
    pub outcome: Option<String>,
    /// Entries per page, 1 to 1000 [default: 50].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Where to go on: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One entry of the trail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Its position in the trail.
    pub id: i64,
    /// When it happened, Unix seconds.
    pub at: i64,
    /// The same time in RFC 3339 (UTC).
    pub time: String,
    /// What happened (`client_created`, `client_auth_failed`, `code_replayed`, ...).
    pub kind: String,
    /// Who did it: `cli`, `admin_token:ID`, `client:ID`, `user:ID` or `anonymous`.
    pub actor: String,
    /// What it was done to, if anything.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The request it happened in, if it came through HTTP.
    pub request_id: Option<String>,
    /// The address the request came from, if it came through HTTP.
    pub source: Option<String>,
    /// Further facts (never a secret).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<core_audit::AuditEntry> for AuditEntry {
    fn from(e: core_audit::AuditEntry) -> Self {
        AuditEntry {
            id: e.id,
            at: e.at,
            time: e.time,
            kind: e.kind,
            actor: e.actor,
            target: e.target,
            outcome: e.outcome,
            request_id: e.request_id,
            source: e.source,
            detail: e.detail,
        }
    }
}

/// One page of the trail, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub events: Vec<AuditEntry>,
    /// The cursor of the next (older) page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Lists the audit trail.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "audit",
    params(AuditParams),
    security(("admin_token" = ["audit:read"])),
    responses((status = 200, description = "A page of entries, newest first.", body = AuditPage))
)]
async fn list(
    _: Need<AuditRead>,
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let query = AuditQuery {
        since: p.since,
        until: p.until,
        actor: p.actor,
        target: p.target,
        kind: p.kind,
        outcome: p.outcome,
        limit: p.limit,
        cursor: p.cursor,
    };
    let page = core_audit::list(state.store(), &query, state.now()).await?;
    Ok(Json(AuditPage {
        events: page.events.into_iter().map(AuditEntry::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// How the trail names an admin token (`bootstrap` for the configured bootstrap token).
fn actor_of(actor: &AdminActor) -> Actor {
    Actor::AdminToken(actor.token_id().to_owned())
}

fn meta(request_id: &str, source: Option<IpAddr>) -> RequestMeta {
    RequestMeta {
        request_id: (!request_id.is_empty()).then(|| request_id.to_owned()),
        source,
        ..RequestMeta::default()
    }
}

/// Records an accepted admin credential.
pub(super) async fn record_used(state: &AppState, actor: &AdminActor, parts: &Parts, needed: &str) {
    let event = AuditEvent::new(state.now(), AuditKind::AdminTokenUsed, actor_of(actor))
        .request(&meta(&actor.request_id, actor.source))
        .detail(serde_json::json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "scope": needed,
        }));
    audit::record(state.store(), event).await;
}

/// Records a refused admin credential: `actor` when the token was valid but short of
/// scope, else nobody known; `reason` says why.
pub(super) async fn record_refused(
    state: &AppState,
    actor: Option<&AdminActor>,
    parts: &Parts,
    reason: &str,
) {
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map_or_else(String::new, |r| r.0.clone());
    let source = crate::extract::client_address(parts, &state.http().trusted_proxies);
    let who = actor.map_or(Actor::Anonymous, actor_of);
    let event = AuditEvent::new(state.now(), AuditKind::AdminTokenRefused, who)
        .failed()
        .request(&meta(&request_id, source))
        .detail(serde_json::json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "reason": reason,
        }));
    audit::record(state.store(), event).await;
}

/// Where the frame leaves the actor of a request for [`record_changes`].
#[derive(Debug, Clone, Default)]
pub struct ActorSlot(Arc<Mutex<Option<AdminActor>>>);

impl ActorSlot {
    /// Leaves the authenticated actor of this request.
    pub fn set(&self, actor: &AdminActor) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(actor.clone());
        }
    }

    fn take(&self) -> Option<AdminActor> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// The kind of change a route makes, by method and route path; `None` for a read.
pub fn change_kind(method: &Method, route: &str) -> Option<AuditKind> {
    use AuditKind::*;
    let m = method.as_str();
    Some(match (m, route) {
        ("POST", "/admin/clients") => ClientCreated,
        ("PATCH" | "PUT", "/admin/clients/{client_id}") => ClientUpdated,
        ("PUT" | "POST", "/admin/clients/{client_id}/keys") => ClientUpdated,
        ("DELETE", "/admin/clients/{client_id}") => ClientDeleted,
        ("POST", "/admin/clients/{client_id}/secret") => ClientSecretRotated,
        ("POST", "/admin/clients/{client_id}/revoke-tokens") => ClientTokensRevoked,
        ("POST", "/admin/users") => UserCreated,
        ("PATCH" | "PUT", "/admin/users/{user}") => UserUpdated,
        ("DELETE", "/admin/users/{user}") => UserDeleted,
        ("PUT" | "POST", "/admin/users/{user}/password") => UserPasswordSet,
        ("DELETE", "/admin/users/{user}/consents/{client_id}") => ConsentRevoked,
        ("DELETE", "/admin/users/{user}/grants/{grant_id}") => GrantRevoked,
        ("POST", "/admin/users/{user}/revoke-tokens") => GrantRevoked,
        ("POST", "/admin/trust") => TrustAdded,
        ("PUT" | "PATCH", "/admin/trust/{id}" | "/admin/trust/{id}/keys") => TrustUpdated,
        ("DELETE", "/admin/trust/{id}") => TrustRemoved,
        ("POST", "/admin/envs") => EnvCreated,
        ("PATCH" | "PUT", "/admin/envs/{name}") => EnvUpdated,
        ("DELETE", "/admin/envs/{name}") => EnvDeleted,
        ("POST", "/admin/keys/rotate" | "/admin/keys/reseal") => KeyRotated,
        ("POST", "/admin/idps") => IdpAdded,
        ("DELETE", "/admin/idps/{name}") => IdpRemoved,
        ("POST", "/admin/tokens/revoke") => TokenRevoked,
        ("POST", "/admin/admin-tokens") => AdminTokenCreated,
        ("DELETE", "/admin/admin-tokens/{id}") => AdminTokenRevoked,
        // Reads, and reads by POST (introspection).
        ("GET" | "HEAD" | "OPTIONS", _) | (_, "/admin/tokens/introspect") => return None,
        // A change this table does not name yet: recorded all the same.
        _ => AdminChange,
    })
}

/// The first path parameter of `path` matched by `route` (`{...}` segments).
fn path_target(route: &str, path: &str) -> Option<String> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(r, _)| r.starts_with('{'))
        .map(|(_, p)| percent_decode(p))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fields of a creation's answer that name what was made; never any other (the answer
/// may hold a secret shown this once).
const ID_FIELDS: &[&str] = &["client_id", "id", "user_id", "name"];

/// Largest answer read back for the id of what it made.
const MAX_ANSWER: usize = 256 * 1024;

/// Records every change made through the admin API once its handler has answered (see the
/// module documentation). Never changes the answer.
pub async fn record_changes(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let Some((route, kind)) = route.and_then(|r| change_kind(req.method(), &r).map(|k| (r, k)))
    else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let slot = ActorSlot::default();
    req.extensions_mut().insert(slot.clone());
    let res = next.run(req).await;
    // No actor: the credential was refused, which the frame recorded.
    let Some(actor) = slot.take() else {
        return res;
    };
    let status = res.status();
    let mut target = path_target(&route, &path);
    let res = if target.is_none() && status.is_success() && is_json(&res) {
        let (parts, body) = res.into_parts();
        match axum::body::to_bytes(body, MAX_ANSWER).await {
            Ok(bytes) => {
                target = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| {
                        ID_FIELDS
                            .iter()
                            .find_map(|f| v.get(f).and_then(|x| x.as_str()).map(str::to_owned))
                    });
                Response::from_parts(parts, axum::body::Body::from(bytes))
            }
            Err(_) => Response::from_parts(parts, axum::body::Body::empty()),
        }
    } else {
        res
    };
    let mut event = AuditEvent::new(state.now(), kind, actor_of(&actor))
        .request(&meta(&actor.request_id, actor.source))
        .detail(serde_json::json!({
            "method": method.as_str(),
            "path": path,
            "status": status.as_u16(),
        }));
    if !status.is_success() {
        event = event.failed();
    }
    if let Some(t) = target {
        event = event.target(t);
    }
    audit::record(state.store(), event).await;
    res
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_route_has_its_kind_and_reads_have_none() {
        let post = Method::POST;
        assert_eq!(
            change_kind(&post, "/admin/clients"),
            Some(AuditKind::ClientCreated)
        );
        assert_eq!(
            change_kind(&Method::DELETE, "/admin/users/{user}/consents/{client_id}"),
            Some(AuditKind::ConsentRevoked)
        );
        assert_eq!(change_kind(&Method::GET, "/admin/clients"), None);
        assert_eq!(change_kind(&post, "/admin/tokens/introspect"), None);
        assert_eq!(
            change_kind(&post, "/admin/something-new"),
            Some(AuditKind::AdminChange)
        );
    }

    #[test]
    fn the_target_is_the_first_path_parameter_decoded() {
        assert_eq!(
            path_target(
                "/admin/clients/{client_id}/secret",
                "/admin/clients/c%201/secret"
            ),
            Some("c 1".into())
        );
        assert_eq!(path_target("/admin/clients", "/admin/clients"), None);
        assert_eq!(
            path_target("/admin/users/{user}", "/admin/users/%zz"),
            Some("%zz".into())
        );
    }
}
