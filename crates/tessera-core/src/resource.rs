//! Audiences of access tokens: resource indicators (RFC 8707).
//!
//! Owns [`resolve`]: a token request may name the APIs it wants a token for,
//! with `resource` (RFC 8707 §2, repeatable) or `audience` (space-delimited, as Hydra and Auth0
//! accept); each must be one the client was registered for, else `invalid_target`. A request
//! that names none gets the client's registered audiences, or the server's default audience
//! (the issuer unless configured) for a client registered with none. The result is the
//! token's `aud` (RFC 9068 §3, RFC 9700 §2.3: audience-restricted tokens).

pub use crate::audience::Audience;
use crate::config::Config;
use crate::error::OAuthError;
use crate::model::ClientRecord;
use crate::params::Params;

/// The audience of a token for this request and client.
pub fn resolve(
    params: &Params,
    client: &ClientRecord,
    config: &Config,
) -> Result<Audience, OAuthError> {
    let mut asked: Vec<String> = params.get_all("resource").map(str::to_owned).collect();
    if let Some(a) = params.get("audience")? {
        asked.extend(a.split(' ').filter(|v| !v.is_empty()).map(str::to_owned));
    }
    if asked.is_empty() {
        return Ok(if client.audiences.is_empty() {
            Audience::one(config.default_audience.clone())
        } else {
            Audience::many(client.audiences.clone())
        });
    }
    let mut out: Vec<String> = Vec::with_capacity(asked.len());
    for r in asked {
        // RFC 8707 §2: an absolute URI without a fragment.
        if r.contains('#') || !r.contains(':') {
            return Err(OAuthError::invalid_target(
                "a resource must be an absolute URI without a fragment",
            ));
        }
        let allowed = client.audiences.contains(&r)
            || (client.audiences.is_empty() && r == config.default_audience);
        if !allowed {
            return Err(OAuthError::invalid_target(format!(
                "this client may not get tokens for resource '{}'",
                r.chars().take(100).collect::<String>()
            )));
        }
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(Audience::many(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::secret::SecretHash;
    use crate::store::testsuite::client;

    fn with_audiences(auds: &[&str]) -> ClientRecord {
        ClientRecord {
            audiences: auds.iter().map(|a| (*a).to_owned()).collect(),
            ..client(&SecretHash::of("s"))
        }
    }

    #[test]
    fn no_request_gets_the_registered_audiences_or_the_default() {
        let config = Config::new("https://issuer");
        let p = Params::from_form(b"").unwrap();
        assert_eq!(
            resolve(&p, &with_audiences(&[]), &config).unwrap(),
            Audience::one("https://issuer")
        );
        let c = with_audiences(&["https://api.a", "https://api.b"]);
        assert_eq!(resolve(&p, &c, &config).unwrap().values().len(), 2);
    }

    #[test]
    fn requested_resources_must_be_registered() {
        let config = Config::new("https://issuer");
        let c = with_audiences(&["https://api.a", "https://api.b"]);
        let p = Params::from_form(b"resource=https%3A%2F%2Fapi.b").unwrap();
        assert_eq!(
            resolve(&p, &c, &config).unwrap(),
            Audience::one("https://api.b")
        );
        let p = Params::from_form(b"resource=https%3A%2F%2Fapi.a&resource=https%3A%2F%2Fapi.b")
            .unwrap();
        assert_eq!(resolve(&p, &c, &config).unwrap().values().len(), 2);
        let p = Params::from_form(b"audience=https%3A%2F%2Fapi.a").unwrap();
        assert_eq!(
            resolve(&p, &c, &config).unwrap(),
            Audience::one("https://api.a")
        );
        for bad in [
            &b"resource=https%3A%2F%2Fapi.c"[..],
            b"resource=relative",
            b"resource=https%3A%2F%2Fapi.a%23frag",
        ] {
            let p = Params::from_form(bad).unwrap();
            assert_eq!(
                resolve(&p, &c, &config).unwrap_err().code,
                ErrorCode::InvalidTarget
            );
        }
    }

    #[test]
    fn one_value_is_a_string_and_several_an_array() {
        assert_eq!(serde_json::to_string(&Audience::one("a")).unwrap(), "\"a\"");
        let two = Audience::from_stored("a b");
        assert_eq!(serde_json::to_string(&two).unwrap(), r#"["a","b"]"#);
        assert_eq!(
            serde_json::from_str::<Audience>(r#"["a","b"]"#).unwrap(),
            two
        );
        assert_eq!(
            serde_json::from_str::<Audience>("\"a\"").unwrap(),
            Audience::one("a")
        );
    }
}
