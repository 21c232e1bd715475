//! The five presets that ship in the binary, as the changes each makes to the defaults of a
//! dialect ([`super::DialectOverrides`]). The product documents they imitate are summarised
//! in `docs/dialects/` and in the README's table of dialects.

use std::collections::BTreeMap;

use super::{DialectOverrides, SdkOverrides};

/// The preset names, in the order dialects are listed.
pub const NAMES: &[&str] = &[ANYFLOW, WORKATO, WORKFRONT_DOCUMENTS, VANTAGE, WORKFRONT];

/// The Anyflow dialect: the JSON exchange of a vendor-signed JWT at `/sdk/token`.
pub const ANYFLOW: &str = "anyflow";
/// The Workato dialect: client credentials in every body style.
pub const WORKATO: &str = "workato";
/// The Workfront document-provider dialect: a token endpoint on its own path, short codes.
pub const WORKFRONT_DOCUMENTS: &str = "workfront_documents";
/// The ABBYY Vantage dialect: code + PKCE, long access tokens, absolute refresh tokens.
pub const VANTAGE: &str = "vantage";
/// The Workfront custom OAuth2 apps dialect: the `/integrations/oauth2/...` code flow.
pub const WORKFRONT: &str = "workfront";

/// The path of the Anyflow dialect's JSON exchange.
pub const ANYFLOW_SDK_PATH: &str = "/sdk/token";

fn paths(entries: &[(&str, &str)]) -> Option<BTreeMap<String, Vec<String>>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (endpoint, path) in entries {
        map.entry((*endpoint).to_owned())
            .or_default()
            .push((*path).to_owned());
    }
    Some(map)
}

fn strings(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| (*s).to_owned()).collect())
}

/// The preset of `name`, if there is one.
pub fn preset(name: &str) -> Option<DialectOverrides> {
    let mut d = DialectOverrides::default();
    match name {
        ANYFLOW => {
            d.enabled = Some(true);
            d.paths = paths(&[("sdk_token", ANYFLOW_SDK_PATH)]);
            d.sdk = Some(SdkOverrides {
                assertion: Some("jwt".into()),
                env: Some("env".into()),
                ttl: Some(300),
                single_use_ttl: Some(600),
                audience: Some("optional".into()),
            });
        }
        WORKATO => {
            d.token_type = Some("bearer".into());
            d.request_styles = strings(&["form", "json", "multipart"]);
        }
        WORKFRONT_DOCUMENTS => {
            d.paths = paths(&[("token", "/document-provider/oauth2/token")]);
            d.code_ttl = Some(600);
        }
        VANTAGE => {
            d.standard_paths = Some(true);
            d.access_token_ttl = Some(86_400);
            d.refresh_token_ttl = Some(2_592_000);
            d.refresh_tokens = Some("offline_access".into());
            d.carry_params = strings(&["productId"]);
            d.offline_access_at_exchange = Some(true);
        }
        WORKFRONT => {
            d.paths = paths(&[
                ("authorize", "/integrations/oauth2/authorize"),
                ("token", "/integrations/oauth2/api/v1/token"),
            ]);
            d.token_type = Some("sessionID".into());
            d.response_fields = strings(&["wid"]);
            d.token_headers = strings(&["sessionID"]);
            d.code_ttl = Some(120);
            d.request_styles = strings(&["form", "json"]);
        }
        _ => return None,
    }
    Some(d)
}
