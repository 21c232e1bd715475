//! Usernames and the names shown on pages: one spelling per person, nothing hidden.
//!
//! Owns [`prepare`], the RFC 8265 §3.3 `UsernameCaseMapped` profile (width mapping, lower
//! case, NFC, the IdentifierClass of RFC 8264 and the bidi rule of RFC 5893), applied to a
//! username when a user is created, looked up by the command line, and signing in: `Alice`,
//! `ａｌｉｃｅ` (full width) and the NFC and NFD spellings of `zoë` are one user. Invisible
//! characters (zero-width space, soft hyphen, joiners, byte-order mark, …) and bidirectional
//! controls (U+202A–U+202E, U+2066–U+2069, …) are refused with an error that names them.
//! [`check_new`] adds the rules for a new username (Unicode TR #39): its letters may not mix
//! Latin with Cyrillic or Greek (at most "moderately restrictive", §5.2), and its confusable
//! skeleton (§4) may not be an existing user's (`аlice` with a Cyrillic `а` next to `alice`).
//! [`check_display_name`] keeps control, invisible and bidirectional characters out of names
//! shown on pages (client names, users' display names), and [`shown`] drops them from a name
//! stored before. [`prepare_stored`] moves usernames stored before these
//! rules to their prepared form.

use precis_profiles::precis_core::profile::Profile as _;
use precis_profiles::precis_core::Error as PrecisError;
use precis_profiles::UsernameCaseMapped;
use unicode_security::{skeleton, RestrictionLevel, RestrictionLevelDetection as _};

use crate::store::{StoreError, UserStore};

/// Longest username, in bytes of its prepared form.
pub const MAX_LEN: usize = 256;

/// Why a username or a name is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// Nothing left.
    #[error("a username must not be empty")]
    Empty,
    /// Too long.
    #[error("a username is at most {MAX_LEN} bytes")]
    TooLong,
    /// An invisible or bidirectional control character, or a control character.
    #[error(
        "U+{0:04X} is an invisible, bidirectional or control character: names may not contain \
         one"
    )]
    Hidden(u32),
    /// A character the PRECIS IdentifierClass does not allow (a space, a symbol, …).
    #[error(
        "U+{0:04X} is not allowed in a username (RFC 8265: letters, digits and ASCII \
         punctuation, no spaces)"
    )]
    Disallowed(u32),
    /// Not a valid PRECIS username for another reason (say, the bidi rule).
    #[error("this is not a valid username (RFC 8265 UsernameCaseMapped)")]
    Invalid,
    /// Letters of scripts that are not mixed in one name.
    #[error("a username may not mix Latin letters with Cyrillic or Greek ones")]
    MixedScripts,
    /// Looks like an existing user.
    #[error("this username looks like the existing user '{0}'")]
    LooksLike(String),
}

/// Whether `c` is invisible (default-ignorable: zero-width characters, joiners, soft hyphen,
/// variation selectors, byte-order mark, tags, …), a bidirectional control, or a control
/// character.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c as u32,
            0x00AD
                | 0x034F
                | 0x061C
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x2028..=0x202E
                | 0x2060..=0x206F
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFFB
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
}

/// The prepared form of a username (RFC 8265 §3.3 `UsernameCaseMapped`, enforced).
pub fn prepare(input: &str) -> Result<String, NameError> {
    if let Some(c) = input.chars().find(|c| hidden(*c)) {
        return Err(NameError::Hidden(c as u32));
    }
    if input.is_empty() {
        return Err(NameError::Empty);
    }
    let prepared = UsernameCaseMapped::new()
        .enforce(input)
        .map_err(|e| match e {
            PrecisError::BadCodepoint(info) => NameError::Disallowed(info.cp),
            _ => NameError::Invalid,
        })?
        .into_owned();
    if prepared.is_empty() {
        return Err(NameError::Empty);
    }
    if prepared.len() > MAX_LEN {
        return Err(NameError::TooLong);
    }
    Ok(prepared)
}

fn skeleton_of(s: &str) -> String {
    skeleton(s).collect()
}

/// The rules for a new (prepared) username beyond [`prepare`]: its letters at most
/// moderately restrictive (Unicode TR #39 §5.2) and its skeleton (§4) not that of any of
/// `existing`.
pub fn check_new<'a>(
    prepared: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<(), NameError> {
    let letters: String = prepared.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.as_str().detect_restriction_level() > RestrictionLevel::ModeratelyRestrictive {
        return Err(NameError::MixedScripts);
    }
    let mine = skeleton_of(prepared);
    for other in existing {
        let theirs = prepare(other).unwrap_or_else(|_| other.to_owned());
        if skeleton_of(&theirs) == mine {
            return Err(NameError::LooksLike(other.to_owned()));
        }
    }
    Ok(())
}

/// A name shown on pages (a client's name): anything but control, invisible and bidirectional
/// characters.
pub fn check_display_name(name: &str) -> Result<(), NameError> {
    match name.chars().find(|c| hidden(*c)) {
        Some(c) => Err(NameError::Hidden(c as u32)),
        None => Ok(()),
    }
}

/// `name` as a page shows it: without control, invisible and bidirectional characters (a
/// client or user named before [`check_display_name`] was enforced).
pub fn shown(name: &str) -> String {
    name.chars().filter(|c| !hidden(*c)).collect()
}

/// Moves every stored username that is not in its prepared form to it (users created before
/// usernames were prepared), so that they are found by what they type. A name that cannot be
/// prepared, or whose prepared form another user has, is left as it is; their user ids are
/// returned, for the operator to rename or delete.
pub async fn prepare_stored<S: UserStore + ?Sized>(store: &S) -> Result<Vec<String>, StoreError> {
    let mut left = Vec::new();
    for u in store.list_users().await? {
        match prepare(&u.username) {
            Ok(p) if p == u.username => {}
            Ok(p) => match store.rename_user(&u.user_id, &p).await {
                Ok(_) => {}
                Err(StoreError::Conflict) => left.push(u.user_id),
                Err(e) => return Err(e),
            },
            Err(_) => left.push(u.user_id),
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<String, NameError> {
        prepare(s)
    }

    #[test]
    fn spellings_of_one_name_prepare_to_one_username() {
        let alice = Ok("alice".to_owned());
        assert_eq!(p("alice"), alice);
        assert_eq!(p("Alice"), alice);
        assert_eq!(p("ＡＬＩＣＥ"), alice, "full width");
        assert_eq!(p("zo\u{e9}"), p("zoe\u{301}"), "NFC and NFD");
        assert_eq!(p("zoe\u{301}"), Ok("zo\u{e9}".to_owned()));
        assert_eq!(p("alice@example.com"), Ok("alice@example.com".to_owned()));
        assert_eq!(p("田中"), Ok("田中".to_owned()));
    }

    #[test]
    fn invisible_bidi_control_and_spaces_are_refused() {
        assert_eq!(p("alice\u{200B}"), Err(NameError::Hidden(0x200B)));
        assert_eq!(p("ali\u{AD}ce"), Err(NameError::Hidden(0xAD)));
        assert_eq!(p("\u{202E}ecila"), Err(NameError::Hidden(0x202E)));
        assert_eq!(p("\u{FEFF}alice"), Err(NameError::Hidden(0xFEFF)));
        assert_eq!(p("al\nice"), Err(NameError::Hidden(0x0A)));
        assert_eq!(p("al ice"), Err(NameError::Disallowed(0x20)));
        assert_eq!(p(""), Err(NameError::Empty));
        assert_eq!(p(&"a".repeat(257)), Err(NameError::TooLong));
        assert!(NameError::Hidden(0x202E).to_string().contains("U+202E"));
    }

    #[test]
    fn new_usernames_do_not_mix_scripts_or_look_like_another() {
        // Cyrillic а (U+0430) with Latin letters.
        let mixed = p("\u{430}lice").unwrap_or_default();
        assert_eq!(check_new(&mixed, []), Err(NameError::MixedScripts));
        // All Cyrillic, but the same skeleton as an existing Latin name.
        let cyrillic = p("\u{430}\u{435}").unwrap_or_default();
        assert_eq!(check_new(&cyrillic, []), Ok(()));
        assert_eq!(
            check_new(&cyrillic, ["ae"]),
            Err(NameError::LooksLike("ae".into()))
        );
        assert_eq!(check_new("bob", ["alice"]), Ok(()));
        assert_eq!(check_new("tanaka田中", ["alice"]), Ok(()));
        assert_eq!(
            check_new("alice", ["Alice"]),
            Err(NameError::LooksLike("Alice".into()))
        );
    }

    #[test]
    fn display_names_keep_out_hidden_characters_only() {
        assert_eq!(check_display_name("Reports {user} app"), Ok(()));
        assert_eq!(check_display_name("レポート"), Ok(()));
        assert_eq!(
            check_display_name("Reports\u{202E}ppa"),
            Err(NameError::Hidden(0x202E))
        );
        assert_eq!(
            check_display_name("Re\u{200B}ports"),
            Err(NameError::Hidden(0x200B))
        );
        assert_eq!(shown("Re\u{200B}ports\u{202E}ppa\n"), "Reportsppa");
        assert_eq!(shown("レポート {user}"), "レポート {user}");
    }
}
