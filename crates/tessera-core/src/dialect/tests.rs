use super::*;

fn config(toml_like: &[(&str, DialectOverrides)]) -> BTreeMap<String, DialectOverrides> {
    toml_like
        .iter()
        .map(|(n, d)| ((*n).to_owned(), d.clone()))
        .collect()
}

fn parse(json: &str) -> BTreeMap<String, DialectOverrides> {
    serde_json::from_str(json).unwrap()
}

fn resolve_err(json: &str) -> DialectError {
    Dialects::resolve(&parse(json)).unwrap_err()
}

#[test]
fn the_presets_ship_with_only_anyflow_on_at_sdk_token() {
    let d = Dialects::presets();
    let on: Vec<&str> = d.enabled().map(|d| d.name.as_str()).collect();
    assert_eq!(on, ["anyflow"]);
    let (anyflow, id) = d.by_path("/sdk/token").unwrap();
    assert_eq!(anyflow.name, "anyflow");
    assert_eq!(id, EndpointId::SdkToken);
    assert_eq!(anyflow.sdk, SdkRules::default());
    assert_eq!(anyflow.token_type, "bearer");
    assert!(d.by_path("/integrations/oauth2/api/v1/token").is_none());
    assert!(d.on_standard_paths().is_none());
    assert!(d.token_headers().is_empty());
    assert_eq!(Dialects::default(), d);
}

#[test]
fn presets_carry_the_values_of_their_products() {
    let d = Dialects::resolve(&parse(
        r#"{"workfront": {}, "vantage": {}, "workato": {}, "workfront_documents": {}}"#,
    ))
    .unwrap();
    let wf = d.get("workfront").unwrap();
    assert_eq!(wf.token_type, "sessionID");
    assert_eq!(wf.response_fields, [ResponseField::Wid]);
    assert_eq!(wf.token_headers, ["sessionid"]);
    assert_eq!(wf.code_ttl, Some(120));
    assert_eq!(wf.request_styles, [BodyStyle::Form, BodyStyle::Json]);
    assert!(
        wf.redirect_params.is_empty(),
        "domain and lane are unset by default"
    );
    assert_eq!(
        d.by_path("/integrations/oauth2/authorize")
            .map(|(d, id)| (d.name.as_str(), id)),
        Some(("workfront", EndpointId::Authorize))
    );
    let v = d.get("vantage").unwrap();
    assert!(v.standard_paths);
    assert_eq!(v.access_token_ttl, Some(86_400));
    assert_eq!(v.refresh_token_ttl, Some(2_592_000));
    assert_eq!(v.refresh_tokens, Some(RefreshPolicy::OfflineAccess));
    assert_eq!(v.carry_params, ["productId"]);
    assert_eq!(
        d.on_standard_paths().map(|d| d.name.as_str()),
        Some("vantage")
    );
    let docs = d.get("workfront_documents").unwrap();
    assert_eq!(docs.code_ttl, Some(600));
    assert_eq!(
        d.by_path("/document-provider/oauth2/token")
            .map(|(_, id)| id),
        Some(EndpointId::Token)
    );
    let wk = d.get("workato").unwrap();
    assert!(wk.paths.is_empty());
    assert_eq!(wk.request_styles.len(), 3);
    assert_eq!(d.enabled().count(), 5);
}

#[test]
fn config_changes_merge_over_the_preset_key_by_key() {
    let d = Dialects::resolve(&parse(
        r#"{"workfront": {
              "paths": {"token": ["/wf/token"]},
              "redirect_params": {"domain": "myorganization", "lane": "my"},
              "code_ttl": 60,
              "clients": {"c1": {"redirect_params": {"lane": "preview"}}}
           },
           "anyflow": {"enabled": false}}"#,
    ))
    .unwrap();
    let wf = d.get("workfront").unwrap();
    // `paths` merges per endpoint: the token path is replaced, authorize kept.
    assert_eq!(
        d.by_path("/wf/token").map(|(_, id)| id),
        Some(EndpointId::Token)
    );
    assert!(d.by_path("/integrations/oauth2/api/v1/token").is_none());
    assert!(d.by_path("/integrations/oauth2/authorize").is_some());
    assert_eq!(wf.code_ttl, Some(60));
    assert_eq!(
        wf.token_type, "sessionID",
        "unset keys keep the preset's value"
    );
    assert_eq!(
        wf.redirect_params_for("other"),
        [
            ("domain".to_owned(), "myorganization".to_owned()),
            ("lane".to_owned(), "my".to_owned())
        ]
    );
    assert_eq!(
        wf.redirect_params_for("c1"),
        [
            ("domain".to_owned(), "myorganization".to_owned()),
            ("lane".to_owned(), "preview".to_owned())
        ]
    );
    assert!(
        d.get("anyflow").is_none(),
        "enabled = false switches a preset off"
    );
    assert!(d.by_path("/sdk/token").is_none());
    // sdk keys merge one by one.
    let a = Dialects::resolve(&parse(r#"{"anyflow": {"sdk": {"ttl": 60}}}"#)).unwrap();
    let rules = &a.get("anyflow").unwrap().sdk;
    assert_eq!(
        (rules.ttl, rules.single_use_ttl, rules.assertion.as_str()),
        (60, 600, "jwt")
    );
    let listed = config(&[("workato", DialectOverrides::default())]);
    assert!(
        Dialects::resolve(&listed).unwrap().get("workato").is_some(),
        "listing switches on"
    );
}

#[test]
fn bad_settings_are_start_up_errors_naming_the_key() {
    let cases = [
        (r#"{"workfrnt": {}}"#, "dialects.workfrnt"),
        (
            r#"{"workfront": {"paths": {"tokn": ["/x"]}}}"#,
            "dialects.workfront.paths.tokn",
        ),
        (
            r#"{"workfront": {"paths": {"token": ["x/y"]}}}"#,
            "dialects.workfront.paths.token",
        ),
        (
            r#"{"workfront": {"paths": {"token": ["/a/{b}"]}}}"#,
            "dialects.workfront.paths.token",
        ),
        (
            r#"{"workfront": {"paths": {"token": ["/a/"]}}}"#,
            "dialects.workfront.paths.token",
        ),
        (
            r#"{"workfront": {"paths": {"token": ["/a/../b"]}}}"#,
            "dialects.workfront.paths.token",
        ),
        (
            r#"{"workfront": {"response_fields": ["uid"]}}"#,
            "dialects.workfront.response_fields",
        ),
        (
            r#"{"workfront": {"request_styles": ["xml"]}}"#,
            "dialects.workfront.request_styles",
        ),
        (
            r#"{"workfront": {"request_styles": []}}"#,
            "dialects.workfront.request_styles",
        ),
        (
            r#"{"workfront": {"refresh_tokens": "sometimes"}}"#,
            "dialects.workfront.refresh_tokens",
        ),
        (
            r#"{"workfront": {"code_ttl": 601}}"#,
            "dialects.workfront.code_ttl",
        ),
        (
            r#"{"workfront": {"code_ttl": 0}}"#,
            "dialects.workfront.code_ttl",
        ),
        (
            r#"{"vantage": {"access_token_ttl": -1}}"#,
            "dialects.vantage.access_token_ttl",
        ),
        (
            r#"{"workfront": {"token_headers": ["Authorization"]}}"#,
            "dialects.workfront.token_headers",
        ),
        (
            r#"{"workfront": {"token_headers": ["bad header"]}}"#,
            "dialects.workfront.token_headers",
        ),
        (
            r#"{"workfront": {"token_type": "two words"}}"#,
            "dialects.workfront.token_type",
        ),
        (
            r#"{"workfront": {"redirect_params": {"code": "x"}}}"#,
            "dialects.workfront.redirect_params.code",
        ),
        (
            r#"{"workfront": {"redirect_params": {"iss": "x"}}}"#,
            "dialects.workfront.redirect_params.iss",
        ),
        (
            r#"{"workfront": {"clients": {"c": {"redirect_params": {"state": "x"}}}}}"#,
            "dialects.workfront.clients.\"c\".redirect_params.state",
        ),
        (
            r#"{"vantage": {"carry_params": ["sub"]}}"#,
            "dialects.vantage.carry_params",
        ),
        (
            r#"{"vantage": {"carry_params": ["wid"]}}"#,
            "dialects.vantage.carry_params",
        ),
        (
            r#"{"anyflow": {"sdk": {"audience": "maybe"}}}"#,
            "dialects.anyflow.sdk.audience",
        ),
        (
            r#"{"anyflow": {"sdk": {"env": "jwt"}}}"#,
            "dialects.anyflow.sdk",
        ),
        (
            r#"{"workfront": {"paths": {"token": ["/oauth2/token"]}}}"#,
            "dialects.workfront.paths",
        ),
        (
            r#"{"workfront": {"paths": {"token": ["/metrics"]}}}"#,
            "dialects.workfront.paths",
        ),
        (
            r#"{"workfront": {"paths": {"token": ["/sdk/token"]}}}"#,
            "dialects.workfront.paths",
        ),
        (
            r#"{"workfront": {"standard_paths": true}, "vantage": {}}"#,
            "dialects.workfront.standard_paths",
        ),
    ];
    for (json, key) in cases {
        let e = resolve_err(json);
        let shown = e.to_string();
        assert!(shown.starts_with(key), "{json}: {shown}");
        assert_eq!(e.key, key, "{json}");
    }
    // The same path twice within a dialect, or in two dialects.
    let e = resolve_err(r#"{"workfront": {"paths": {"token": ["/a", "/a"]}}}"#);
    assert_eq!(e.key, "dialects.workfront.paths");
    let e = resolve_err(
        r#"{"workfront_documents": {"paths": {"token": ["/x"]}}, "workfront": {"paths": {"revoke": ["/x"]}}}"#,
    );
    assert!(e.message.contains("twice"), "{e}");
    // Disabled dialects take no path: no clash.
    assert!(Dialects::resolve(&parse(
        r#"{"workfront": {"enabled": false, "paths": {"token": ["/sdk/token"]}}}"#
    ))
    .is_ok());
    // Unknown keys are refused by the deserializer, naming them.
    let unknown = serde_json::from_str::<BTreeMap<String, DialectOverrides>>(
        r#"{"workfront": {"token_typ": "x"}}"#,
    )
    .unwrap_err();
    assert!(unknown.to_string().contains("token_typ"), "{unknown}");
}

#[test]
fn no_carried_parameter_can_be_a_claim_tessera_sets() {
    for claim in crate::jwt::REGISTERED_CLAIMS {
        assert!(RESERVED_CLAIMS.contains(claim), "{claim}");
        let json = format!(r#"{{"vantage": {{"carry_params": ["{claim}"]}}}}"#);
        assert_eq!(resolve_err(&json).key, "dialects.vantage.carry_params");
    }
}

#[test]
fn a_style_not_listed_is_invalid_request() {
    let d = Dialects::resolve(&parse(r#"{"workfront": {}}"#)).unwrap();
    let wf = d.get("workfront").unwrap();
    assert!(wf.check_style(Some(BodyStyle::Form)).is_ok());
    assert!(wf.check_style(Some(BodyStyle::Json)).is_ok());
    for refused in [Some(BodyStyle::Multipart), None] {
        let e = wf.check_style(refused).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
    }
    assert_eq!(
        BodyStyle::of_content_type("Application/JSON; charset=utf-8"),
        Some(BodyStyle::Json)
    );
    assert_eq!(
        BodyStyle::of_content_type("multipart/form-data; boundary=x"),
        Some(BodyStyle::Multipart)
    );
    assert_eq!(BodyStyle::of_content_type("text/plain"), None);
}

#[test]
fn an_access_token_comes_from_one_place_only() {
    assert_eq!(
        access_token_from(&["Bearer abc"], &[]).unwrap(),
        Some("abc")
    );
    assert_eq!(access_token_from(&[], &["abc"]).unwrap(), Some("abc"));
    assert_eq!(
        access_token_from(&["bearer abc"], &["abc"]).unwrap(),
        Some("abc")
    );
    assert_eq!(access_token_from(&["Basic xyz"], &[]).unwrap(), None);
    assert_eq!(access_token_from(&[], &[]).unwrap(), None);
    for (auth, others) in [
        (&["Bearer abc"][..], &["def"][..]),
        (&[][..], &["abc", "def"][..]),
        (&["Bearer a", "Bearer b"][..], &[][..]),
    ] {
        let e = access_token_from(auth, others).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
    }
}
