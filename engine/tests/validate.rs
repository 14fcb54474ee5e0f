//! Invalid policies are refused with the path of the offending field.

use serde_json::{json, Value};
use warden_engine::compile;

fn error_of(doc: Value) -> String {
    let bytes = serde_json::to_vec(&doc).unwrap();
    match compile::load(&bytes) {
        Ok(_) => panic!("policy should be refused: {doc}"),
        Err(e) => e.to_string(),
    }
}

fn base(extra: Value) -> Value {
    let mut doc = json!({"name": "t", "services": [{"name": "h", "hosts": ["httpbin.org"]}]});
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    doc
}

fn authz_rule(rule: Value) -> Value {
    base(json!({"authorization": [{"name": "ok", "rules": [{}]}, {"name": "p", "rules": [{}, rule]}]}))
}

#[test]
fn errors_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            authz_rule(json!({"to": [{"operation": {"paths": ["/ok", "/{**}/x/{*}"]}}]})),
            "authorization[1].rules[1].to[0].operation.paths[1]: ",
        ),
        (
            authz_rule(json!({"to": [{"operation": {"paths": ["/a/{x}"]}}]})),
            "authorization[1].rules[1].to[0].operation.paths[0]: ",
        ),
        (
            authz_rule(json!({"to": [{"operation": {"methods": ["G*T"]}}]})),
            "authorization[1].rules[1].to[0].operation.methods[0]: ",
        ),
        (
            authz_rule(json!({"to": [{"operation": {"ports": ["http"]}}]})),
            "authorization[1].rules[1].to[0].operation.ports[0]: ",
        ),
        (
            authz_rule(json!({"to": [{"operation": {"notPorts": [70000]}}]})),
            "authorization[1].rules[1].to[0].operation.notPorts[0]: ",
        ),
        (
            authz_rule(json!({"to": [{"operation": {"hosts": ["evil.com:99999"]}}]})),
            "authorization[1].rules[1].to[0].operation.hosts[0]: ",
        ),
        (
            authz_rule(json!({"from": [{"source": {"ipBlocks": ["10.0.0.0/40"]}}]})),
            "authorization[1].rules[1].from[0].source.ipBlocks[0]: ",
        ),
        (
            authz_rule(json!({"from": [{"source": {"notRemoteIpBlocks": ["nope"]}}]})),
            "authorization[1].rules[1].from[0].source.notRemoteIpBlocks[0]: ",
        ),
        (
            authz_rule(json!({"from": [{"source": {"principals": [""]}}]})),
            "authorization[1].rules[1].from[0].source.principals[0]: ",
        ),
        (
            authz_rule(json!({"when": [{"key": "request.auth.claims[iss]", "values": ["x"]}]})),
            "authorization[1].rules[1].when[0].key: ",
        ),
        (authz_rule(json!({"when": [{"key": "request.headers[x-a]"}]})), "authorization[1].rules[1].when[0]: "),
        (
            authz_rule(json!({"when": [{"key": "destination.port", "values": ["eighty"]}]})),
            "authorization[1].rules[1].when[0].values[0]: ",
        ),
        (
            base(json!({"authorization": [{"name": "p", "services": ["nope"]}]})),
            "authorization[0].services[0]: no service named 'nope'",
        ),
        (base(json!({"authorization": [{"name": "p"}, {"name": "p"}]})), "authorization[1].name: "),
        (base(json!({"authorization": [{"name": ""}]})), "authorization[0].name: "),
        (
            base(json!({"services": [{"name": "a", "hosts": ["a.com"]}, {"name": "b", "hosts": ["x.*.com"]}]})),
            "services[1].hosts[0]: ",
        ),
        (base(json!({"services": [{"name": "a", "hosts": ["*"]}]})), "services[0].hosts[0]: "),
        (base(json!({"services": [{"name": "a", "hosts": ["a.com:443"]}]})), "services[0].hosts[0]: "),
        (base(json!({"services": [{"name": "a", "hosts": []}]})), "services[0].hosts: "),
        (base(json!({"services": [{"name": "a", "hosts": ["a.com"], "ports": [0]}]})), "services[0].ports[0]: "),
        (
            base(json!({"services": [{"name": "a", "hosts": ["a.com"]}, {"name": "a", "hosts": ["b.com"]}]})),
            "services[1].name: ",
        ),
        (base(json!({"identity": []})), "identity: "),
        (base(json!({"identity": [{"header": "bad header"}]})), "identity[0].header: "),
        (base(json!({"responses": {"denied": {"status": 99}}})), "responses.denied.status: "),
        (base(json!({"dlp": [{"name": ""}]})), "dlp[0].name: "),
        (base(json!({"dlp": [{"name": "x"}, {"name": "x"}]})), "dlp[1].name: "),
        (base(json!({"dlp": [{"name": "x", "detectors": ["credit_card", "visa"]}]})), "dlp[0].detectors[1]: "),
        (base(json!({"dlp": [{"name": "x", "detectors": []}]})), "dlp[0].detectors: "),
        (base(json!({"dlp": [{"name": "x", "services": ["nope"]}]})), "dlp[0].services[0]: "),
        (base(json!({"dlp": [{"name": "x", "services": []}]})), "dlp[0].services: "),
        (base(json!({"dlp": [{"name": "x", "scan": []}]})), "dlp[0].scan: "),
        (base(json!({"dlp": [{"name": "x", "maxBodyBytes": 0}]})), "dlp[0].maxBodyBytes: "),
        (base(json!({"dlp": [{"name": "x", "maxBodyBytes": 1_u64 << 40}]})), "dlp[0].maxBodyBytes: "),
        (
            base(json!({"dlp": [{"name": "x", "patterns": [{"name": "t", "regex": "itk_[A-Z"}]}]})),
            "dlp[0].patterns[0].regex: ",
        ),
        (
            base(json!({"dlp": [{"name": "x", "patterns": [{"name": "t", "regex": "a*"}]}]})),
            "dlp[0].patterns[0].regex: ",
        ),
        (
            base(json!({"dlp": [{"name": "x", "patterns": [{"name": "email", "regex": "ab"}]}]})),
            "dlp[0].patterns[0].name: ",
        ),
        (
            base(json!({"dlp": [{"name": "x", "patterns": [{"name": "t", "regex": "ab"}]},
                                {"name": "y", "patterns": [{"name": "t", "regex": "cd"}]}]})),
            "dlp[1].patterns[0].name: ",
        ),
        (base(json!({"gatewayPorts": {"http": 80}})), "gatewayPorts.http: "),
        (base(json!({"gatewayPorts": {"8080": 0}})), "gatewayPorts.8080: "),
        (json!({"services": []}), "name: "),
    ];
    for (doc, want) in cases {
        let got = error_of(doc.clone());
        assert!(got.starts_with(want), "for {doc}\n  expected prefix: {want}\n  got: {got}");
    }
}

#[test]
fn unknown_and_mistyped_fields_are_refused_with_their_path() {
    let cases: Vec<(Value, &str)> = vec![
        (base(json!({"authorisation": []})), "authorisation"),
        (authz_rule(json!({"to": [{"operation": {"path": ["/x"]}}]})), "authorization[1].rules[1].to[0].operation"),
        (
            authz_rule(json!({"from": [{"source": {"requestPrincipals": ["*"]}}]})),
            "authorization[1].rules[1].from[0].source",
        ),
        (base(json!({"authorization": [{"name": "p", "action": "CUSTOM"}]})), "authorization[0].action"),
        (base(json!({"outboundTrafficPolicy": "ALLOW_SOME"})), "outboundTrafficPolicy"),
        (base(json!({"pathNormalization": "merge_slashes"})), "pathNormalization"),
        (base(json!({"services": [{"name": "a", "hosts": "a.com"}]})), "services[0].hosts"),
        (base(json!({"identity": [{"certificate": {}}]})), "identity[0]"),
        (base(json!({"dlp": [{"name": "x", "acton": "BLOCK"}]})), "dlp[0]"),
        (base(json!({"dlp": [{"name": "x", "action": "DROP"}]})), "dlp[0].action"),
        (base(json!({"dlp": [{"name": "x", "scan": ["cookies"]}]})), "dlp[0].scan[0]"),
        (base(json!({"dlp": [{"name": "x", "onOversize": "REDACT"}]})), "dlp[0].onOversize"),
    ];
    for (doc, want) in cases {
        let got = error_of(doc.clone());
        assert!(got.starts_with(want), "for {doc}\n  expected prefix: {want}\n  got: {got}");
    }
}

#[test]
fn garbage_and_empty_configurations_are_refused() {
    for config in [&b""[..], b"   ", b"{", b"[]", b"null", b"\xff\xfe", b"WARDEN\0B\x01"] {
        assert!(compile::load(config).is_err(), "{config:?} should be refused");
    }
}

/// A bad pattern is a typed error: the field, the value as written and
/// what is wrong, for tools that point at it rather than print it.
#[test]
fn a_bad_value_carries_the_value_and_the_problem() {
    use warden_engine::{ErrorKind, Problem};
    let cases: Vec<(Value, &str, &str, Problem)> = vec![
        (
            authz_rule(json!({"to": [{"operation": {"paths": ["/ok", "/{**}/x/{*}"]}}]})),
            "authorization[1].rules[1].to[0].operation.paths[1]",
            "/{**}/x/{*}",
            Problem::RestNotLast,
        ),
        (
            authz_rule(json!({"from": [{"source": {"ipBlocks": ["10.0.0.0/33"]}}]})),
            "authorization[1].rules[1].from[0].source.ipBlocks[0]",
            "10.0.0.0/33",
            Problem::PrefixLength { max: 32 },
        ),
        (
            authz_rule(json!({"to": [{"operation": {"hosts": ["a*b.org"]}}]})),
            "authorization[1].rules[1].to[0].operation.hosts[0]",
            "a*b.org",
            Problem::InnerWildcard,
        ),
        (
            authz_rule(json!({"to": [{"operation": {"ports": ["http"]}}]})),
            "authorization[1].rules[1].to[0].operation.ports[0]",
            "http",
            Problem::NotAPort,
        ),
        (
            authz_rule(json!({"when": [{"key": "request.headers[x y]", "values": ["a"]}]})),
            "authorization[1].rules[1].when[0].key",
            "x y",
            Problem::NotAHeaderName,
        ),
        (
            base(json!({"services": [{"name": "h", "hosts": ["api.example.com:443"]}]})),
            "services[0].hosts[0]",
            "api.example.com:443",
            Problem::HostWithPort,
        ),
        (
            base(json!({"services": [{"name": "h", "hosts": ["a*.example.com"]}]})),
            "services[0].hosts[0]",
            "a*.example.com",
            Problem::NotAHostName,
        ),
    ];
    for (doc, path, value, problem) in cases {
        let err = compile::load(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
        assert_eq!(err.path, path, "{err}");
        match &err.kind {
            ErrorKind::Value(v) => assert_eq!((v.value.as_str(), &v.problem), (value, &problem), "{err}"),
            other => panic!("{path}: not a value error: {other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("{path}: '{value}'")), "{err}");
    }
    // A port number out of range is written as the number it is; `*` as a
    // registry host is every host.
    let err = compile::load(
        &serde_json::to_vec(&base(json!({"services": [{"name": "h", "hosts": ["a.org"], "ports": [70000]}]}))).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "services[0].ports[0]: 70000 is not a port (1-65535)");
    let err = compile::load(&serde_json::to_vec(&base(json!({"services": [{"name": "h", "hosts": ["*"]}]}))).unwrap())
        .unwrap_err();
    assert!(matches!(&err.kind, ErrorKind::Value(v) if v.problem == Problem::EveryHost), "{err}");
    assert!(err.to_string().starts_with("services[0].hosts[0]: '*' would register every host"), "{err}");
}
