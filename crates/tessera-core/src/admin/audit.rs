//! Reading the audit trail: the one listing that `tessera audit` and `GET /admin/audit` both
//! call.
//!
//! Owns [`AuditQuery`] (the filters as a caller types them: a time range, an actor, a target,
//! a kind, an outcome, a page size and an opaque cursor), their checking, and the page it
//! answers ([`AuditPage`], newest first, with the cursor of the next page). Times are Unix
//! seconds, RFC 3339 timestamps in UTC (`2026-12-05T01:00:00Z`), or an age back from now
//! (`15m`, `24h`, `7d`). Recording events is [`crate::audit`]'s.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{AdminError, AdminResult};
use crate::audit::{AuditKind, Outcome};
use crate::model::{AuditFilter, AuditRecord, AUDIT_PAGE_MAX};
use crate::store::AuditStore;

/// Entries in a page when the caller names no limit.
pub const DEFAULT_LIMIT: i64 = 50;

/// Which entries to list. Every field is optional; each one set narrows the listing.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries at or after this time.
    pub since: Option<String>,
    /// Only entries at or before this time.
    pub until: Option<String>,
    /// Only entries by this actor, exactly as listed (`cli`, `admin_token:ID`, `client:ID`,
    /// `user:ID`, `anonymous`).
    pub actor: Option<String>,
    /// Only entries about this target (a client id, a user id, …), exactly.
    pub target: Option<String>,
    /// Only entries of this kind (`client_created`, `client_auth_failed`, …).
    pub kind: Option<String>,
    /// Only entries with this outcome: `success` or `failure`.
    pub outcome: Option<String>,
    /// Most entries in the page: 1 to 1000, 50 unless given.
    pub limit: Option<i64>,
    /// Where the page starts: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One entry as listed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its position in the trail.
    pub id: i64,
    /// When it happened, Unix seconds.
    pub at: i64,
    /// The same time in RFC 3339 (UTC).
    pub time: String,
    /// What happened.
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// What it was done to, if anything.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The request it happened in, if it came through HTTP.
    pub request_id: Option<String>,
    /// The address the request came from, if it came through HTTP.
    pub source: Option<String>,
    /// Further facts (a JSON object).
    pub detail: serde_json::Value,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            time: rfc3339(r.at),
            at: r.at,
            kind: r.kind,
            actor: r.actor,
            target: r.target,
            outcome: r.outcome,
            request_id: r.request_id,
            source: r.source,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail)),
        }
    }
}

/// One page of the trail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditPage {
    /// The entries, newest first.
    pub events: Vec<AuditEntry>,
    /// The cursor of the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the entries `query` selects, newest first, one page at a time.
pub async fn list(store: &dyn AuditStore, query: &AuditQuery, now: i64) -> AdminResult<AuditPage> {
    let filter = filter(query, now)?;
    let limit = filter.limit;
    let records = store.list_audit(&filter).await?;
    let next_cursor = match records.last() {
        Some(last) if records.len() as i64 == limit => Some(cursor(last.id)),
        _ => None,
    };
    Ok(AuditPage {
        events: records.into_iter().map(AuditEntry::from).collect(),
        next_cursor,
    })
}

/// The store's filter for a query, or which field is wrong.
pub fn filter(query: &AuditQuery, now: i64) -> AdminResult<AuditFilter> {
    let time = |field: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(|t| {
                parse_time(t, now).ok_or_else(|| {
                    AdminError::invalid(
                        field,
                        format!(
                            "{field} must be Unix seconds, an RFC 3339 time in UTC \
                             (2026-12-05T01:00:00Z) or an age such as 15m, 24h or 7d"
                        ),
                    )
                })
            })
            .transpose()
    };
    let from = time("since", &query.since)?;
    let to = time("until", &query.until)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(AdminError::invalid(
                "since",
                "since must not be after until",
            ));
        }
    }
    if let Some(kind) = &query.kind {
        if AuditKind::parse(kind).is_none() {
            let names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(AdminError::invalid(
                "kind",
                format!("kind must be one of: {}", names.join(", ")),
            ));
        }
    }
    if let Some(outcome) = &query.outcome {
        if ![Outcome::Success, Outcome::Failure]
            .iter()
            .any(|o| o.as_str() == outcome)
        {
            return Err(AdminError::invalid(
                "outcome",
                "outcome must be success or failure",
            ));
        }
    }
    let text = |field: &'static str, v: &Option<String>| match v {
        Some(s) if s.is_empty() || s.len() > 512 => Err(AdminError::invalid(
            field,
            format!("{field} must be 1 to 512 bytes"),
        )),
        _ => Ok(v.clone()),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
        return Err(AdminError::invalid(
            "limit",
            format!("limit must be between 1 and {AUDIT_PAGE_MAX}"),
        ));
    }
    let before_id = query
        .cursor
        .as_deref()
        .map(|c| {
            parse_cursor(c).ok_or_else(|| {
                AdminError::invalid("cursor", "cursor must be a next_cursor of a listing")
            })
        })
        .transpose()?;
    Ok(AuditFilter {
        from,
        to,
        actor: text("actor", &query.actor)?,
        target: text("target", &query.target)?,
        kind: query.kind.clone(),
        outcome: query.outcome.clone(),
        before_id,
        limit,
    })
}

const CURSOR_PREFIX: &str = "audit:";

/// The opaque cursor of the page after the entry `id`.
pub fn cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{id}"))
}

/// The entry id a cursor stands for, if it is one.
fn parse_cursor(cursor: &str) -> Option<i64> {
    if cursor.len() > 64 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let digits = text.strip_prefix(CURSOR_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id: &i64| *id > 0)
}

/// A time as a caller types it: Unix seconds, RFC 3339 in UTC, or an age (`15m`) back from
/// `now`.
pub fn parse_time(text: &str, now: i64) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 40 {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if let Some(age) = parse_age(text) {
        return Some(now.saturating_sub(age));
    }
    parse_rfc3339_utc(text)
}

/// `N` followed by `s`, `m`, `h` or `d`, in seconds.
fn parse_age(text: &str) -> Option<i64> {
    let unit = match text.as_bytes().last()? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    let digits = text.get(..text.len() - 1)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(unit)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or `+00:00`) as Unix seconds.
fn parse_rfc3339_utc(text: &str) -> Option<i64> {
    let rest = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = rest.split_once(['T', 't', ' '])?;
    let time = time.split_once('.').map_or(time, |(t, frac)| {
        if frac.bytes().all(|b| b.is_ascii_digit()) {
            t
        } else {
            ""
        }
    });
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let mut t = time.split(':');
    let (h, min, s) = (num(t.next()?, 2)?, num(t.next()?, 2)?, num(t.next()?, 2)?);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    if !(1..=12).contains(&m)
        || day < 1
        || day > days_in_month(y, m)
        || h > 23
        || min > 59
        || s > 60
    {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + s)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(at: i64) -> String {
    let days = at.div_euclid(86_400);
    let secs = at.rem_euclid(86_400);
    // The inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000;

    #[test]
    fn times_are_seconds_rfc3339_or_an_age() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1796000000", Some(NOW)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2000-02-29T12:30:15Z", Some(951_827_415)),
            ("2000-02-29T12:30:15.250Z", Some(951_827_415)),
            ("2000-02-29T12:30:15+00:00", Some(951_827_415)),
            ("15m", Some(NOW - 900)),
            ("24h", Some(NOW - 86_400)),
            ("7d", Some(NOW - 7 * 86_400)),
            ("", None),
            ("-5", None),
            ("7w", None),
            ("d", None),
            ("1999-02-29T00:00:00Z", None),
            ("2000-13-01T00:00:00Z", None),
            ("2000-01-01T24:00:00Z", None),
            ("2000-01-01T00:00:00+02:00", None),
            ("2000-01-01T00:00:00", None),
            ("2000-01-01", None),
            ("99999999999999999999d", None),
            ("2000-01-01T00:00:00.x1Z", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_time(text, NOW), *want, "{text:?}");
        }
    }

    #[test]
    fn rfc3339_round_trips() {
        for at in [0, 951_827_415, NOW, 4_102_444_800, 1_709_251_199] {
            let text = rfc3339(at);
            assert_eq!(parse_time(&text, NOW), Some(at), "{text}");
        }
        assert_eq!(rfc3339(951_827_415), "2000-02-29T12:30:15Z");
    }

    #[test]
    fn cursors_are_opaque_and_only_ours_are_accepted() {
        let c = cursor(42);
        assert!(!c.contains("42"), "{c}");
        assert_eq!(parse_cursor(&c), Some(42));
        for bad in [
            "",
            "42",
            "YXVkaXQ6",
            "YXVkaXQ6LTE",
            "YXVkaXQ6MA",
            "not base64!",
            "../../etc/passwd",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
        assert_eq!(parse_cursor(&"A".repeat(100)), None);
    }

    #[test]
    fn every_bad_filter_names_its_field() {
        let bad = |q: AuditQuery, field: &str| match filter(&q, NOW) {
            Err(AdminError::Invalid { field: f, .. }) => assert_eq!(f, field, "{q:?}"),
            other => panic!("{q:?}: {other:?}"),
        };
        bad(
            AuditQuery {
                since: Some("yesterday".into()),
                ..AuditQuery::default()
            },
            "since",
        );
        bad(
            AuditQuery {
                until: Some("1 OR 1=1".into()),
                ..AuditQuery::default()
            },
            "until",
        );
        bad(
            AuditQuery {
                since: Some("200".into()),
                until: Some("100".into()),
                ..AuditQuery::default()
            },
            "since",
        );
        bad(
            AuditQuery {
                kind: Some("client_created%".into()),
                ..AuditQuery::default()
            },
            "kind",
        );
        bad(
            AuditQuery {
                outcome: Some("ok".into()),
                ..AuditQuery::default()
            },
            "outcome",
        );
        for limit in [0, -1, AUDIT_PAGE_MAX + 1, i64::MAX] {
            bad(
                AuditQuery {
                    limit: Some(limit),
                    ..AuditQuery::default()
                },
                "limit",
            );
        }
        bad(
            AuditQuery {
                cursor: Some("garbage".into()),
                ..AuditQuery::default()
            },
            "cursor",
        );
        bad(
            AuditQuery {
                actor: Some(String::new()),
                ..AuditQuery::default()
            },
            "actor",
        );
        bad(
            AuditQuery {
                target: Some("x".repeat(513)),
                ..AuditQuery::default()
            },
            "target",
        );
    }

    #[test]
    fn a_good_query_becomes_the_store_filter() {
        let f = filter(
            &AuditQuery {
                since: Some("1h".into()),
                until: Some("1796000000".into()),
                actor: Some("cli".into()),
                target: Some("c1".into()),
                kind: Some("client_created".into()),
                outcome: Some("success".into()),
                limit: Some(10),
                cursor: Some(cursor(7)),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(
            f,
            AuditFilter {
                from: Some(NOW - 3600),
                to: Some(NOW),
                actor: Some("cli".into()),
                target: Some("c1".into()),
                kind: Some("client_created".into()),
                outcome: Some("success".into()),
                before_id: Some(7),
                limit: 10,
            }
        );
        assert_eq!(
            filter(&AuditQuery::default(), NOW).unwrap().limit,
            DEFAULT_LIMIT
        );
    }
}
