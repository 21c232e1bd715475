//! The languages of the sign-in, consent and logout pages.
//!
//! Owns [`Lang`] (English and Japanese), its choice from `ui_locales` (OpenID Connect Core
//! §3.1.2.1) or else `Accept-Language` (RFC 9110 §12.5.4, by quality), and every text the
//! pages show. Templates receive these texts as `t.<name>`; an operator restyles the
//! templates, the words stay consistent across them.

use std::collections::BTreeMap;

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// Japanese.
    Ja,
}

impl Lang {
    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The first supported language of `ui_locales`, else the best of `Accept-Language`,
    /// else English.
    pub fn choose(ui_locales: Option<&str>, accept_language: Option<&str>) -> Self {
        if let Some(l) = ui_locales
            .into_iter()
            .flat_map(|v| v.split(' '))
            .find_map(Self::from_tag)
        {
            return l;
        }
        let mut ranked: Vec<(u16, Lang)> = accept_language
            .into_iter()
            .flat_map(|v| v.split(','))
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = Self::from_tag(parts.next()?)?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1000), |q| {
                        q.trim().parse::<f32>().ok().map(|q| (q * 1000.0) as u16)
                    })?;
                (q > 0).then_some((q, lang))
            })
            .collect();
        // Stable: equal qualities keep the order the browser gave.
        ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
        ranked.first().map_or(Lang::En, |(_, l)| *l)
    }

    /// Every text of the pages, with `{client}` and `{user}` filled in.
    pub fn texts(self, client: &str, user: &str) -> BTreeMap<&'static str, String> {
        let table: &[(&'static str, &'static str)] = match self {
            Lang::En => EN,
            Lang::Ja => JA,
        };
        table
            .iter()
            .map(|(k, v)| (*k, fill(v, client, user)))
            .collect()
    }

    /// One text, without placeholders filled.
    pub fn text(self, key: &str) -> String {
        let table: &[(&'static str, &'static str)] = match self {
            Lang::En => EN,
            Lang::Ja => JA,
        };
        table
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_default()
    }

    /// A scope in words.
    pub fn scope_text(self, scope: &str) -> String {
        let known = match (self, scope) {
            (Lang::En, "openid") => Some("Know who you are"),
            (Lang::En, "profile") => Some("See your name and username"),
            (Lang::En, "email") => Some("See your email address"),
            (Lang::En, "offline_access") => Some("Keep access when you are not using it"),
            (Lang::Ja, "openid") => Some("あなたが誰であるかを確認する"),
            (Lang::Ja, "profile") => Some("あなたの名前とユーザー名を見る"),
            (Lang::Ja, "email") => Some("あなたのメールアドレスを見る"),
            (Lang::Ja, "offline_access") => Some("あなたが使っていない間もアクセスを続ける"),
            _ => None,
        };
        match (known, self) {
            (Some(t), _) => t.to_owned(),
            (None, Lang::En) => format!("Use “{scope}” on your behalf"),
            (None, Lang::Ja) => format!("あなたの代わりに「{scope}」を利用する"),
        }
    }
}

/// `text` with `{client}` and `{user}` replaced, in one pass over `text`: a value is copied
/// as it is, never searched for placeholders itself (a client named `{user}` shows as
/// `{user}`, not as the signed-in user's name).
fn fill(text: &str, client: &str, user: &str) -> String {
    let mut out = String::with_capacity(text.len() + client.len() + user.len());
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        if let Some(after) = from.strip_prefix("{client}") {
            out.push_str(client);
            rest = after;
        } else if let Some(after) = from.strip_prefix("{user}") {
            out.push_str(user);
            rest = after;
        } else {
            out.push('{');
            rest = from.get(1..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    out
}

const EN: &[(&str, &str)] = &[
    ("product", "Tessera"),
    ("login_title", "Sign in"),
    ("login_lead", "Sign in to continue to {client}."),
    ("username", "Username"),
    ("password", "Password"),
    ("login_submit", "Sign in"),
    ("login_failed", "The username or password is incorrect."),
    (
        "login_locked",
        "Too many failed sign-ins. Wait a few minutes and try again.",
    ),
    (
        "login_busy",
        "Too many sign-ins at this moment. Wait a second and try again.",
    ),
    ("consent_title", "Allow access?"),
    ("consent_lead", "{client} wants to:"),
    ("signed_in_as", "Signed in as {user}."),
    ("allow", "Allow"),
    ("deny", "Deny"),
    ("error_title", "This request cannot be completed"),
    (
        "form_expired",
        "This form has expired. Go back to the application and start again.",
    ),
    ("logout_title", "Sign out?"),
    ("logout_submit", "Sign out"),
    ("logged_out", "You are signed out."),
    ("sso_or", "Or"),
    ("sso_continue_title", "Returning to the application"),
    ("sso_continue", "Continue"),
    ("sso_with", "Sign in with {idp}"),
    (
        "sso_unavailable",
        "The identity provider cannot be reached now. Try again shortly.",
    ),
    (
        "sso_failed",
        "Signing in with the identity provider did not succeed. Go back to the application and start again.",
    ),
    ("device_title", "Connect a device"),
    ("device_lead", "Enter the code shown on your device."),
    (
        "device_confirm_lead",
        "Check that this is the code shown on your device, then continue.",
    ),
    ("device_code", "Code"),
    ("device_submit", "Continue"),
    (
        "device_unknown",
        "This code is not valid. Check the code on your device and try again.",
    ),
    ("device_expired", "This code has expired. Start again on your device."),
    ("device_decided", "This code has already been used."),
    (
        "device_locked",
        "Too many wrong codes. Wait a few minutes and try again.",
    ),
    (
        "device_consent_check",
        "Allow this only if you started it yourself and your device shows this code:",
    ),
    ("device_approved", "Your device is connected. You can return to it now."),
    ("device_denied", "Access was denied. You can close this page."),
];

const JA: &[(&str, &str)] = &[
    ("product", "Tessera"),
    ("login_title", "サインイン"),
    ("login_lead", "{client} を続けるにはサインインしてください。"),
    ("username", "ユーザー名"),
    ("password", "パスワード"),
    ("login_submit", "サインイン"),
    ("login_failed", "ユーザー名またはパスワードが正しくありません。"),
    (
        "login_locked",
        "サインインの失敗が多すぎます。数分待ってからもう一度お試しください。",
    ),
    (
        "login_busy",
        "現在サインインが混み合っています。少し待ってからもう一度お試しください。",
    ),
    ("consent_title", "アクセスを許可しますか？"),
    ("consent_lead", "{client} が次のことを求めています:"),
    ("signed_in_as", "{user} としてサインインしています。"),
    ("allow", "許可する"),
    ("deny", "拒否する"),
    ("error_title", "このリクエストを完了できません"),
    (
        "form_expired",
        "このフォームは有効期限が切れています。アプリケーションに戻って最初からやり直してください。",
    ),
    ("logout_title", "サインアウトしますか？"),
    ("logout_submit", "サインアウト"),
    ("logged_out", "サインアウトしました。"),
    ("sso_or", "または"),
    ("sso_continue_title", "アプリケーションに戻ります"),
    ("sso_continue", "続ける"),
    ("sso_with", "{idp} でサインイン"),
    (
        "sso_unavailable",
        "現在 ID プロバイダーに接続できません。しばらくしてからもう一度お試しください。",
    ),
    (
        "sso_failed",
        "ID プロバイダーでのサインインに失敗しました。アプリケーションに戻って最初からやり直してください。",
    ),
    ("device_title", "デバイスを接続"),
    ("device_lead", "デバイスに表示されているコードを入力してください。"),
    (
        "device_confirm_lead",
        "このコードがデバイスに表示されているものと同じか確認してから続けてください。",
    ),
    ("device_code", "コード"),
    ("device_submit", "続ける"),
    (
        "device_unknown",
        "このコードは無効です。デバイスのコードを確認してもう一度入力してください。",
    ),
    ("device_expired", "このコードは有効期限が切れています。デバイスでやり直してください。"),
    ("device_decided", "このコードはすでに使用されています。"),
    (
        "device_locked",
        "誤ったコードが多すぎます。数分待ってからもう一度お試しください。",
    ),
    (
        "device_consent_check",
        "ご自身で開始し、デバイスにこのコードが表示されている場合にのみ許可してください:",
    ),
    ("device_approved", "デバイスが接続されました。デバイスに戻ってください。"),
    ("device_denied", "アクセスを拒否しました。このページは閉じてかまいません。"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_locales_win_then_accept_language_by_quality() {
        assert_eq!(Lang::choose(Some("fr ja-JP"), Some("en")), Lang::Ja);
        assert_eq!(
            Lang::choose(Some("fr"), Some("de, ja;q=0.8, en;q=0.5")),
            Lang::Ja
        );
        assert_eq!(Lang::choose(None, Some("en;q=0.4, ja;q=0.9")), Lang::Ja);
        assert_eq!(Lang::choose(None, Some("ja;q=0, en")), Lang::En);
        assert_eq!(Lang::choose(None, Some("garbage;;q=x")), Lang::En);
        assert_eq!(Lang::choose(None, None), Lang::En);
    }

    #[test]
    fn both_languages_have_the_same_texts() {
        let en: Vec<_> = Lang::En.texts("c", "u").into_keys().collect();
        let ja: Vec<_> = Lang::Ja.texts("c", "u").into_keys().collect();
        assert_eq!(en, ja);
        assert_eq!(Lang::Ja.texts("", "")["allow"], "許可する");
    }

    #[test]
    fn substituted_values_are_never_searched_for_placeholders() {
        let t = Lang::En.texts("{user} & {client}", "Alice {client}");
        assert_eq!(t["login_lead"], "Sign in to continue to {user} & {client}.");
        assert_eq!(t["consent_lead"], "{user} & {client} wants to:");
        assert_eq!(t["signed_in_as"], "Signed in as Alice {client}.");
        let t = Lang::Ja.texts("{user}", "");
        assert_eq!(t["consent_lead"], "{user} が次のことを求めています:");
        assert_eq!(fill("{a} {client} {", "c", "u"), "{a} c {");
    }
}
