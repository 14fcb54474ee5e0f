use super::*;

fn import_yaml(yaml: &str) -> Result<Import, LoadError> {
    import(&[Source::new("istio.yaml", yaml)], &Options::default())
}

fn doc(yaml: &str) -> Value {
    match import_yaml(yaml) {
        Ok(i) => i.document(),
        Err(e) => panic!("{e}"),
    }
}

fn error(yaml: &str) -> String {
    match import_yaml(yaml) {
        Ok(i) => panic!("expected an error, got {}", i.document()),
        Err(e) => e.message(),
    }
}

fn notes(yaml: &str) -> Vec<String> {
    match import_yaml(yaml) {
        Ok(i) => i.notes.iter().map(|n| n.message.clone()).collect(),
        Err(e) => panic!("{e}"),
    }
}

const SE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: egress}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
  location: MESH_EXTERNAL
  resolution: DNS
";

fn with_se(ap: &str) -> String {
    format!("{SE}---\n{ap}")
}

fn ap(spec: &str) -> String {
    with_se(&format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: egress}}\nspec:\n{spec}"
        ))
}

#[test]
fn a_service_entry_is_a_service_named_namespace_slash_name_on_its_port_numbers() {
    for version in ["v1", "v1beta1", "v1alpha3"] {
        let d = doc(&SE.replace("networking.istio.io/v1", &format!("networking.istio.io/{version}")));
        assert_eq!(d["services"], json!([{"name": "egress/httpbin", "hosts": ["httpbin.org"], "ports": [80]}]));
    }
    // Every resolution Istio has: how the proxy finds endpoints, not who may call.
    for resolution in ["NONE", "STATIC", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] {
        let d = doc(&SE.replace("resolution: DNS\n", &format!("resolution: {resolution}\n")));
        assert_eq!(d["services"][0]["ports"], json!([80]), "{resolution}");
    }
    let d = doc(SE);
    assert_eq!(d["name"], DEFAULT_NAME);
    assert_eq!(d["outboundTrafficPolicy"], "REGISTRY_ONLY");
    assert_eq!(d["pathNormalization"], "BASE");
    assert_eq!(d["identity"], json!([{"peerCertificate": {}}, {"filterState": "io.istio.peer_principal"}]));
    assert_eq!(d["authorization"], json!([]));
    let no_ns = doc("apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: a}\nspec: {hosts: [a.com], ports: [{number: 443}]}\n");
    assert_eq!(no_ns["services"][0]["name"], "default/a");
}

#[test]
fn service_entry_fields_that_do_not_change_the_decision_are_noted() {
    let n = notes(&SE.replace(
            "  location: MESH_EXTERNAL\n",
            "  location: MESH_INTERNAL\n  addresses: [10.0.0.1]\n  endpoints: [{address: 1.2.3.4}]\n  subjectAltNames: [x]\n  exportTo: ['*']\n",
        ));
    assert!(n.iter().any(|n| n.contains("MESH_INTERNAL")), "{n:?}");
    assert!(n.iter().any(|n| n.contains("spec.addresses ignored")), "{n:?}");
    assert!(n.iter().any(|n| n.contains("spec.endpoints, spec.subjectAltNames ignored")), "{n:?}");
}

#[test]
fn service_entry_fields_that_change_the_meaning_are_errors() {
    let e = error(&SE.replace("  location: MESH_EXTERNAL\n", "  exportTo: ['.']\n"));
    assert!(e.starts_with("ServiceEntry egress/httpbin: spec.exportTo: "), "{e}");
    let e = error(&SE.replace("  location: MESH_EXTERNAL\n", "  hostz: [a]\n"));
    // A field Istio's ServiceEntry does not have: the error lists those it has.
    assert_eq!(
        e,
        "ServiceEntry egress/httpbin: spec.hostz: unknown field `hostz`, expected one of `hosts`, `addresses`, \
         `ports`, `location`, `resolution`, `endpoints`, `workloadSelector`, `exportTo`, `subjectAltNames`"
    );
    let e = error(&SE.replace("DNS", "DNZ"));
    assert!(
        e.starts_with("ServiceEntry egress/httpbin: spec.resolution: unknown variant `DNZ`, expected one of"),
        "{e}"
    );
    let e = error(&SE.replace("[httpbin.org]", "httpbin.org"));
    assert_eq!(e, "ServiceEntry egress/httpbin: spec.hosts: invalid type: string \"httpbin.org\", expected a sequence");
    let e = error(&SE.replace("number: 80", "number: http"));
    assert_eq!(e, "ServiceEntry egress/httpbin: spec.ports[0].number: expected a port number");
    let e = error(&SE.replace("number: 80", "number: -80"));
    assert!(e.starts_with("ServiceEntry egress/httpbin: spec.ports[0].number: invalid value: integer `-80`"), "{e}");
    let e = error(&SE.replace("  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]\n", ""));
    assert!(e.starts_with("ServiceEntry egress/httpbin: spec.ports: required"), "{e}");
    let e = error(&SE.replace("number: 80", "number: 70000"));
    assert_eq!(e, "ServiceEntry egress/httpbin: spec.ports[0].number: 70000 is not a port (1-65535)");
    let e = error(&SE.replace("[httpbin.org]", "[httpbin.org, '*']"));
    assert!(e.starts_with("ServiceEntry egress/httpbin: spec.hosts[1]: '*' would register every host"), "{e}");
    let e = error(&SE.replace("metadata: {name: httpbin, namespace: egress}", "metadata: {namespace: egress}"));
    assert_eq!(e, "ServiceEntry: metadata.name: required");
    let e = error(&format!("{SE}---\n{SE}"));
    assert_eq!(e, "ServiceEntry egress/httpbin: metadata.name: 'egress/httpbin' is defined twice");
}

#[test]
fn target_refs_to_a_service_entry_scope_the_policy() {
    let d =
        doc(&ap("  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin}]\n  rules: [{}]\n"));
    assert_eq!(
        d["authorization"],
        json!([{"name": "egress/p", "action": "ALLOW", "services": ["egress/httpbin"], "rules": [{}]}])
    );
    // The deprecated singular targetRef too.
    let d = doc(&ap("  targetRef: {kind: ServiceEntry, group: networking.istio.io, name: httpbin}\n  rules: [{}]\n"));
    assert_eq!(d["authorization"][0]["services"], json!(["egress/httpbin"]));
    // A ServiceEntry of another namespace, or one not in the input.
    let e = error(&ap("  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: other}]\n"));
    assert!(
        e.starts_with(
            "AuthorizationPolicy egress/p: spec.targetRefs[0]: ServiceEntry egress/other is not in the input"
        ),
        "{e}"
    );
    let e = error(&ap(
        "  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin, namespace: other}]\n",
    ));
    assert!(e.starts_with("AuthorizationPolicy egress/p: spec.targetRefs[0].namespace: 'other'"), "{e}");
    let e = error(&ap("  targetRefs: [{kind: ServiceEntry, name: httpbin}]\n"));
    assert!(e.starts_with("AuthorizationPolicy egress/p: spec.targetRefs[0].group:"), "{e}");
    let e = error(&ap("  targetRefs: [{kind: Service, group: '', name: httpbin}]\n"));
    assert!(e.starts_with("AuthorizationPolicy egress/p: spec.targetRefs[0]: Service httpbin: Warden scopes"), "{e}");
}

#[test]
fn a_gateway_target_a_selector_or_no_target_applies_to_every_request() {
    let gateway = import_yaml(&ap(
            "  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}\n  - {kind: ServiceEntry, group: networking.istio.io, name: httpbin}\n  rules: [{}]\n",
        ))
        .unwrap();
    assert!(gateway.document()["authorization"][0].get("services").is_none());
    assert!(gateway.notes.iter().any(|n| n.message.contains("Gateway waypoint: applies to every request")));
    let selector = import_yaml(&ap("  selector: {matchLabels: {istio: egressgateway}}\n  rules: [{}]\n")).unwrap();
    assert!(selector.document()["authorization"][0].get("services").is_none());
    assert!(selector.notes.iter().any(|n| n.message.contains("spec.selector: applies to every request")));
    let namespace_wide = doc(&ap("  rules: [{}]\n"));
    assert!(namespace_wide["authorization"][0].get("services").is_none());
    let e = error(&ap(
            "  selector: {matchLabels: {a: b}}\n  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin}]\n",
        ));
    assert!(e.starts_with("AuthorizationPolicy egress/p: spec.selector: only one of"), "{e}");
}

#[test]
fn actions_and_the_dry_run_annotation() {
    assert_eq!(doc(&ap("  action: DENY\n  rules: [{}]\n"))["authorization"][0]["action"], "DENY");
    assert_eq!(doc(&ap("  action: AUDIT\n  rules: [{}]\n"))["authorization"][0]["action"], "AUDIT");
    // spec: {} is ALLOW with no rules: Istio's allow-nothing.
    assert_eq!(doc(&ap("  {}\n"))["authorization"][0], json!({"name": "egress/p", "action": "ALLOW", "rules": []}));
    let e = error(&ap("  action: CUSTOM\n  provider: {name: ext}\n"));
    assert!(
        e.starts_with("AuthorizationPolicy egress/p: spec.action: CUSTOM (external authorization) is not supported"),
        "{e}"
    );
    let dry = |value: &str, action: &str| {
        with_se(&format!(
                "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: egress\n  annotations: {{istio.io/dry-run: {value}}}\nspec: {{action: {action}, rules: [{{}}]}}\n"
            ))
    };
    assert_eq!(doc(&dry("\"true\"", "DENY"))["authorization"][0]["dryRun"], true);
    assert_eq!(doc(&dry("\"True\"", "ALLOW"))["authorization"][0]["dryRun"], true);
    assert!(doc(&dry("\"false\"", "DENY"))["authorization"][0].get("dryRun").is_none());
    let e = error(&dry("\"yes\"", "DENY"));
    assert!(e.starts_with("AuthorizationPolicy egress/p: metadata.annotations[\"istio.io/dry-run\"]: 'yes'"), "{e}");
    let e = error(&dry("\"true\"", "AUDIT"));
    assert!(e.contains("dry-run applies to ALLOW and DENY only"), "{e}");
}

#[test]
fn rules_map_one_to_one() {
    let d = doc(&ap("  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/admin]
        notNamespaces: [sandbox]
        ipBlocks: [10.0.0.0/8]
        notRemoteIpBlocks: [192.0.2.1]
    to:
    - operation: {methods: [GET], paths: [/get, '/status/{*}'], ports: ['80'], notPaths: [/x]}
    when:
    - {key: 'request.headers[x-env]', values: [prod]}
    - {key: source.namespace, notValues: [test]}
"));
    assert_eq!(
        d["authorization"][0]["rules"],
        json!([{
            "from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"], "notNamespaces": ["sandbox"],
                                 "ipBlocks": ["10.0.0.0/8"], "notRemoteIpBlocks": ["192.0.2.1"]}}],
            "to": [{"operation": {"methods": ["GET"], "paths": ["/get", "/status/{*}"], "ports": ["80"], "notPaths": ["/x"]}}],
            "when": [{"key": "request.headers[x-env]", "values": ["prod"]}, {"key": "source.namespace", "notValues": ["test"]}]
        }])
    );
}

#[test]
fn newer_source_fields_map_one_to_one() {
    let d = doc(&ap("  rules:\n  - from: [{source: {serviceAccounts: [admin, other/bot], notServiceAccounts: [x], \
             trustDomains: [td1], notTrustDomains: ['bad*']}}]\n"));
    assert_eq!(
        d["authorization"][0]["rules"][0]["from"][0]["source"],
        json!({"serviceAccounts": ["egress/admin", "other/bot"], "notServiceAccounts": ["egress/x"],
                   "trustDomains": ["td1"], "notTrustDomains": ["bad*"]})
    );
    let e = error(&ap("  rules:\n  - from: [{source: {serviceAccounts: ['a/b/c']}}]\n"));
    assert!(
        e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].from[0].source.serviceAccounts[0]: 'a/b/c'"),
        "{e}"
    );
    // Istio never matches a principal written with its scheme.
    let e = error(&ap("  rules:\n  - from: [{source: {principals: ['spiffe://td/ns/a/sa/b']}}]\n"));
    assert!(
        e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].from[0].source.principals[0]: 'spiffe://"),
        "{e}"
    );
}

#[test]
fn fields_warden_cannot_honour_are_errors_naming_resource_and_field() {
    let cases = [
            (
                "  rules:\n  - from: [{source: {requestPrincipals: ['*']}}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].from[0].source.requestPrincipals: JWT request principals are not supported",
            ),
            (
                "  rules:\n  - {}\n  - from: [{source: {notRequestPrincipals: ['*']}}]\n",
                "AuthorizationPolicy egress/p: spec.rules[1].from[0].source.notRequestPrincipals: JWT",
            ),
            (
                "  rules:\n  - when: [{key: 'request.auth.claims[groups]', values: [admin]}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].when[0].key: 'request.auth.claims[groups]': JWT claims",
            ),
            (
                "  rules:\n  - when: [{key: destination.ip, values: [1.2.3.4]}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].when[0].key: 'destination.ip' is not a supported condition key",
            ),
            (
                "  rules:\n  - to: [{operation: {paths: ['/a{*}']}}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.paths[0]: ",
            ),
            ("  rules:\n  - from: [{source: {}}]\n", "AuthorizationPolicy egress/p: spec.rules[0].from[0].source: must not be empty"),
            ("  rules:\n  - to: [{operation: {}}]\n", "AuthorizationPolicy egress/p: spec.rules[0].to[0].operation: must not be empty"),
            ("  rules:\n  - to: [{operation: {hostz: [a]}}]\n", "AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.hostz: unknown field `hostz`, expected one of `hosts`, `notHosts`"),
            ("  rules:\n  - fro: []\n", "AuthorizationPolicy egress/p: spec.rules[0].fro: unknown field `fro`, expected one of `from`, `to`, `when`"),
            ("  rulez: []\n", "AuthorizationPolicy egress/p: spec.rulez: unknown field `rulez`, expected one of `selector`, `targetRef`"),
            ("  action: ALLOWED\n", "AuthorizationPolicy egress/p: spec.action: unknown variant `ALLOWED`, expected one of `ALLOW`, `DENY`, `AUDIT`, `CUSTOM`"),
        ];
    for (spec, expected) in cases {
        let e = error(&ap(spec));
        assert!(e.starts_with(expected), "{spec}\n  got      {e}\n  expected {expected}");
    }
}

#[test]
fn hosts_keep_their_ports() {
    let rules = |hosts: &str| {
        doc(&ap(&format!("  rules:\n  - to: [{{operation: {{methods: [GET], hosts: {hosts}}}}}]\n")))["authorization"]
            [0]["rules"][0]["to"]
            .clone()
    };
    assert_eq!(
        rules("[a.com, 'b.com:*', '*.c.com:443', '[::1]:8080']"),
        json!([{"operation": {"hosts": ["a.com", "b.com:*", "*.c.com:443", "[::1]:8080"], "methods": ["GET"]}}])
    );
    // An error names the to[] entry as written.
    let e = error(&ap("  rules:\n  - to:\n    - operation: {hosts: ['a.com:1']}\n    - operation: {hosts: ['c.com:3'], paths: ['/a{*}']}\n"));
    assert!(e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].to[1].operation.paths[0]"), "{e}");
    for literal in ["'*.a.com:*'", "'a*b.com:80'", "'a.com:http'", "':80'"] {
        let e = error(&ap(&format!("  rules:\n  - to: [{{operation: {{hosts: [{literal}]}}}}]\n")));
        assert!(e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.hosts[0]: "), "{e}");
    }
}

#[test]
fn the_mesh_config_sets_the_trust_domain_and_its_aliases() {
    let mesh = "trustDomain: td1\ntrustDomainAliases: [cluster.local, old-td]\n";
    let d = doc(&format!("{SE}---\n{mesh}"));
    assert_eq!(d["trustDomain"], "td1");
    assert_eq!(d["trustDomainAliases"], json!(["cluster.local", "old-td"]));
    // Aliases without a trust domain are aliases of Istio's default.
    let d = doc(&format!("{SE}---\nmeshConfig: {{trustDomainAliases: [old-td]}}\n"));
    assert_eq!(d["trustDomain"], "cluster.local");
    // None given: none written (principals are matched as written).
    assert_eq!(doc(SE).get("trustDomain"), None);
}

#[test]
fn the_mesh_config_sets_outbound_traffic_policy_and_path_normalization() {
    let bare = "outboundTrafficPolicy: {mode: ALLOW_ANY}\npathNormalization: {normalization: MERGE_SLASHES}\n";
    let d = doc(&format!("{SE}---\n{bare}"));
    assert_eq!(
        (d["outboundTrafficPolicy"].as_str(), d["pathNormalization"].as_str()),
        (Some("ALLOW_ANY"), Some("MERGE_SLASHES"))
    );
    let operator = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n    outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n    pathNormalization: {normalization: DEFAULT}\n";
    let d = doc(&format!("{SE}---\n{operator}"));
    assert_eq!(
        (d["outboundTrafficPolicy"].as_str(), d["pathNormalization"].as_str()),
        (Some("REGISTRY_ONLY"), Some("BASE"))
    );
    let helm = "meshConfig:\n  outboundTrafficPolicy: {mode: ALLOW_ANY}\n";
    assert_eq!(doc(&format!("{SE}---\n{helm}"))["outboundTrafficPolicy"], "ALLOW_ANY");
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |-\n    outboundTrafficPolicy:\n      mode: ALLOW_ANY\n";
    assert_eq!(doc(&format!("{SE}---\n{config_map}"))["outboundTrafficPolicy"], "ALLOW_ANY");
    // The command line wins.
    let options = Options { outbound_traffic_policy: Some(OutboundTrafficPolicy::RegistryOnly), ..Options::default() };
    let i = import(&[Source::new("a.yaml", format!("{SE}---\n{helm}"))], &options).unwrap();
    assert_eq!(i.document()["outboundTrafficPolicy"], "REGISTRY_ONLY");
    // Two mesh configs that disagree.
    let e = import(
        &[Source::new("a.yaml", format!("{SE}---\n{helm}")), Source::new("b.yaml", operator)],
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(e.file, PathBuf::from("b.yaml"));
    assert!(
        e.message().starts_with("mesh outboundTrafficPolicy.mode: RegistryOnly here, but AllowAny in a.yaml"),
        "{}",
        e.message()
    );
    let e = error(&format!("{SE}---\noutboundTrafficPolicy: {{mode: NOPE}}\n"));
    assert!(e.starts_with("mesh config: outboundTrafficPolicy.mode: unknown variant `NOPE`"), "{e}");
    let e = error(&format!("{SE}---\noutboundTrafficPolicy: {{mod: ALLOW_ANY}}\n"));
    assert!(
        e.starts_with("mesh config: outboundTrafficPolicy.mod: unknown field `mod`, expected `mode` or `tls`"),
        "{e}"
    );
    // Istio's newer modes: ALLOW_ANY_DYNAMIC_DNS lets the same requests leave as ALLOW_ANY.
    let dynamic = import_yaml(&format!("{SE}---\noutboundTrafficPolicy: {{mode: ALLOW_ANY_DYNAMIC_DNS}}\n")).unwrap();
    assert_eq!(dynamic.document()["outboundTrafficPolicy"], "ALLOW_ANY");
    assert!(dynamic.notes.iter().any(|n| n
        .message
        .starts_with("mesh config: outboundTrafficPolicy.mode ALLOW_ANY_DYNAMIC_DNS: read as ALLOW_ANY")));
    // The rest of the mesh config is istiod's to check.
    let d = doc(&format!(
        "{SE}---\nmeshConfig: {{accessLogFile: /dev/stdout, outboundTrafficPolicy: {{mode: ALLOW_ANY}}}}\n"
    ));
    assert_eq!(d["outboundTrafficPolicy"], "ALLOW_ANY");
    // Without one: REGISTRY_ONLY, noted.
    assert!(notes(SE).iter().any(|n| n.starts_with("no mesh outboundTrafficPolicy in the input: REGISTRY_ONLY")));
}

#[test]
fn a_warden_document_gives_the_settings_istio_has_no_word_for() {
    let base = "apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: gw}\nspec:\n  gatewayPorts: {'8080': 80}\n  identity: [{peerCertificate: {}}]\n  outboundTrafficPolicy: ALLOW_ANY\n";
    let d = doc(&format!("{base}---\n{SE}"));
    assert_eq!(d["name"], "gw");
    assert_eq!(d["gatewayPorts"], json!({"8080": 80}));
    assert_eq!(d["identity"], json!([{"peerCertificate": {}}]));
    assert_eq!(d["outboundTrafficPolicy"], "ALLOW_ANY");
    let options = Options { name: Some("cli".into()), ..Options::default() };
    let i = import(&[Source::new("a.yaml", format!("{base}---\n{SE}"))], &options).unwrap();
    assert_eq!(i.document()["name"], "cli");
    let e = error(&format!("name: x\nservices: [{{name: a, hosts: [a.com]}}]\n---\n{SE}"));
    assert!(e.starts_with("warden/v1: services: beside Istio resources"), "{e}");
    let e = error(&format!("name: x\n---\nname: y\n---\n{SE}"));
    assert!(e.starts_with("a second warden/v1 document"), "{e}");
    // Its own errors name its fields.
    let e = import(
        &[Source::new("base.yaml", "name: x\nresponses: {denied: {status: 99}}\n"), Source::new("se.yaml", SE)],
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(e.file, PathBuf::from("base.yaml"));
    assert!(e.message().starts_with("the converted policy: responses.denied.status"), "{}", e.message());
}

#[test]
fn a_gateway_listener_port_in_a_policy_is_the_port_workloads_called() {
    let base = "name: gw\ngatewayPorts: {'8080': 80}\n---\n";
    let i = import_yaml(&format!(
            "{base}{}",
            ap("  rules:\n  - to: [{operation: {ports: ['8080', '9090'], hosts: [a.com]}}, {operation: {hosts: ['b.com:8080']}}]\n    when: [{key: destination.port, notValues: ['8080']}]\n")
        ))
        .unwrap();
    let rule = &i.document()["authorization"][0]["rules"][0];
    // The listener port is rewritten; the port of a host:port (the authority's) is not.
    assert_eq!(
        rule["to"],
        json!([
            {"operation": {"hosts": ["a.com"], "ports": ["80", "9090"]}},
            {"operation": {"hosts": ["b.com:8080"]}}
        ])
    );
    assert_eq!(rule["when"], json!([{"key": "destination.port", "notValues": ["80"]}]));
    let notes: Vec<&str> = i.notes.iter().map(|n| n.message.as_str()).collect();
    assert!(notes.iter().any(|n| n.starts_with("AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.ports[0]: 8080 is the gateway's listener port for 80")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("spec.rules[0].when[0].notValues[0]: 8080")), "{notes:?}");
}

#[test]
fn other_kinds_are_skipped_with_a_note() {
    let yaml = format!(
            "{SE}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: tls, namespace: egress}}\nspec: {{host: httpbin.org}}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: waypoint, namespace: egress}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: sleep}}\n---\n"
        );
    let n = notes(&yaml);
    assert!(
        n.contains(
            &"skipped DestinationRule egress/tls (networking.istio.io/v1): routing and TLS, not policy".to_owned()
        ),
        "{n:?}"
    );
    assert!(
        n.iter().any(|n| n.starts_with(
            "skipped Gateway egress/waypoint (gateway.networking.k8s.io/v1): the gateway or waypoint itself"
        )),
        "{n:?}"
    );
    assert!(n.iter().any(|n| n.starts_with("skipped Deployment sleep (apps/v1): not a kind Warden reads")), "{n:?}");
    // A kubectl List is read item by item.
    let list = format!("apiVersion: v1\nkind: List\nitems:\n- {}", SE.replace('\n', "\n  "));
    assert_eq!(doc(&list)["services"][0]["name"], "egress/httpbin");
    let e = error("apiVersion: security.istio.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n");
    assert!(e.starts_with("document 1: apiVersion: security.istio.io/v1alpha1: Warden reads AuthorizationPolicy of security.istio.io v1, v1beta1"), "{e}");
}

#[test]
fn istio_input_is_told_from_a_warden_document() {
    assert!(is_istio(SE));
    assert!(is_istio("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"));
    assert!(is_istio("name: a\n---\nname: b\n"));
    assert!(!is_istio("name: a\noutboundTrafficPolicy: REGISTRY_ONLY\n"));
    assert!(!is_istio("apiVersion: warden/v1\nkind: EgressPolicy\nspec: {name: a}\n"));
    assert!(!is_istio("{\"name\": \"a\"}"));
    assert!(!is_istio("a: [\n"));
}

#[test]
fn the_yaml_output_names_where_each_entry_came_from() {
    let i = import_yaml(&ap("  rules: [{}]\n")).unwrap();
    let yaml = i.to_yaml().unwrap();
    assert!(
        yaml.starts_with(
            "# warden/v1 policy converted by `warden import` from Istio resources\n\
             #   services[0]       ServiceEntry egress/httpbin (istio.yaml)\n\
             #   authorization[0]  AuthorizationPolicy egress/p (istio.yaml)\n\
             name: istio\noutboundTrafficPolicy: REGISTRY_ONLY\n"
        ),
        "{yaml}"
    );
    let back: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(back, i.document());
    assert_eq!(i.counts(), (1, 1));
}

#[test]
fn errors_name_the_line_of_the_field() {
    let err = |sources: &[(&str, &str)]| {
        let sources: Vec<Source> = sources.iter().map(|(f, t)| Source::new(f, *t)).collect();
        match import(&sources, &Options::default()) {
            Ok(i) => panic!("expected an error, got {}", i.document()),
            Err(e) => e,
        }
    };
    // A field Istio's schema does not have, in the second document of a file.
    let e = err(&[("se.yaml", &SE.replace("  location: MESH_EXTERNAL\n", "  hostz: [a]\n"))]);
    assert_eq!((e.line, e.field.as_deref()), (Some(7), Some("spec.hostz")), "{e}");
    assert!(e.to_string().starts_with("se.yaml:7: ServiceEntry egress/httpbin: spec.hostz: unknown field"), "{e}");
    let e = err(&[("ap.yaml", &ap("  rules:\n  - from:\n    - source:\n        requestPrincipals: ['*']\n"))]);
    assert_eq!(e.line, Some(17), "{e}");
    assert_eq!(e.resource.as_deref(), Some("AuthorizationPolicy egress/p"));
    // A value the compiler refuses, traced back to the resource's field.
    let e = err(&[("se.yaml", &SE.replace("number: 80", "number: 70000"))]);
    assert_eq!((e.line, e.field.as_deref()), (Some(6), Some("spec.ports[0].number")), "{e}");
    // An item of a kubectl List.
    let list = format!("apiVersion: v1\nkind: List\nitems:\n- {}", SE.replace('\n', "\n  ").replace("DNS", "DNZ"));
    let e = err(&[("list.yaml", &list)]);
    assert_eq!((e.line, e.field.as_deref()), (Some(11), Some("spec.resolution")), "{e}");
    // YAML that does not parse, and the document it is in.
    let e = err(&[("bad.yaml", &format!("{SE}---\na: [\n"))]);
    assert_eq!(e.resource.as_deref(), Some("document 2"), "{e}");
    assert!(e.line.is_some_and(|l| l >= 10), "{e}");
    // A mesh config in Helm values.
    let e = err(&[("values.yaml", &format!("{SE}---\nmeshConfig:\n  outboundTrafficPolicy: {{mode: NOPE}}\n"))]);
    assert_eq!((e.line, e.resource.as_deref()), (Some(11), Some("mesh config")), "{e}");
}

/// Istio's "egress gateway for HTTPS traffic" task: a ServiceEntry with a
/// TLS port, a Gateway passing TLS through, a VirtualService routing by
/// server name, and a policy on the entry.
const PASSTHROUGH: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn, namespace: egress}
spec:
  hosts: [edition.cnn.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: egress}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [edition.cnn.com, www.other.example]
    tls: {mode: PASSTHROUGH}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-cnn-through-egress-gateway, namespace: egress}
spec:
  hosts: [edition.cnn.com]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match: [{gateways: [mesh], port: 443, sniHosts: [edition.cnn.com]}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, port: {number: 443}}}]
  - match: [{gateways: [istio-egressgateway], port: 443, sniHosts: [edition.cnn.com, api.unknown.example]}]
    route: [{destination: {host: edition.cnn.com, port: {number: 443}}, weight: 100}]
";

#[test]
fn tls_gateways_and_sni_routes_are_read_and_checked_against_the_registry() {
    let n = notes(PASSTHROUGH);
    let gateway: Vec<&String> = n.iter().filter(|n| n.starts_with("Gateway egress/istio-egressgateway: ")).collect();
    assert_eq!(gateway.len(), 1, "{n:?}");
    assert!(gateway[0].contains("spec.servers[0] (port 443, PASSTHROUGH) passes the client's TLS through"), "{n:?}");
    assert!(gateway[0].contains("root id warden.network"), "{n:?}");
    assert!(gateway[0].contains("no ServiceEntry registers www.other.example on port 443"), "{n:?}");
    assert!(!gateway[0].contains("edition.cnn.com on"), "registered: {n:?}");
    let routes: Vec<&String> = n.iter().filter(|n| n.starts_with("VirtualService egress/direct-cnn")).collect();
    assert_eq!(routes.len(), 1, "the sidecars' route (mesh) is not a way out: {n:?}");
    assert!(
        routes[0].contains("spec.tls[1].match[0] routes server names edition.cnn.com, api.unknown.example"),
        "{n:?}"
    );
    assert!(routes[0].ends_with("not registered: api.unknown.example (closed under REGISTRY_ONLY)"), "{n:?}");
    assert!(!n.iter().any(|n| n.starts_with("skipped Gateway") || n.starts_with("skipped VirtualService")), "{n:?}");
    // The services are the ServiceEntries, as always.
    assert_eq!(
        doc(PASSTHROUGH)["services"],
        json!([{"name": "egress/cnn", "hosts": ["edition.cnn.com"], "ports": [443]}])
    );
}

#[test]
fn an_http_gateway_is_still_skipped_as_routing() {
    let http = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: egress}\nspec:\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]\n";
    let n = notes(&format!("{SE}---\n{http}"));
    let skipped = "skipped Gateway egress/gw (networking.istio.io/v1): routing and TLS, not policy";
    assert!(n.contains(&skipped.to_owned()), "{n:?}");
    // ISTIO_MUTUAL around TLS is a connection too; around HTTP it is not.
    let mutual = http
        .replace("protocol: HTTP}, hosts: ['*']}", "protocol: TLS}, hosts: [httpbin.org], tls: {mode: ISTIO_MUTUAL}}");
    let n = notes(&format!("{SE}---\n{mutual}"));
    assert!(n.iter().any(|n| n.contains("(port 80, ISTIO_MUTUAL) terminates mesh mTLS")), "{n:?}");
}

#[test]
fn policies_on_tls_services_are_told_what_tcp_semantics_do_to_their_rules() {
    let policy = |action: &str| {
        format!(
            "{PASSTHROUGH}---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: cnn, namespace: egress}}\nspec:\n  action: {action}\n  targetRefs: [{{kind: ServiceEntry, group: networking.istio.io, name: cnn}}]\n  rules:\n  - to: [{{operation: {{methods: [GET]}}}}]\n  - from: [{{source: {{namespaces: [news]}}}}]\n"
        )
    };
    let n = notes(&policy("ALLOW"));
    let about: Vec<&String> =
        n.iter().filter(|n| n.starts_with("AuthorizationPolicy egress/cnn: spec.rules")).collect();
    assert_eq!(about.len(), 1, "only the rule with an HTTP field: {n:?}");
    assert!(
        about[0].starts_with("AuthorizationPolicy egress/cnn: spec.rules[0] reads to[0].operation.methods"),
        "{n:?}"
    );
    assert!(about[0].contains("ServiceEntry egress/cnn (TLS/TCP ports only) it never matches them"), "{n:?}");
    let n = notes(&policy("DENY"));
    assert!(
        n.iter().any(|n| n.contains("those fields are dropped, so the rule applies to every such connection")),
        "{n:?}"
    );
    // An HTTP service gets no such note.
    let n = notes(&ap("  rules:\n  - to: [{operation: {methods: [GET]}}]\n"));
    assert!(!n.iter().any(|n| n.contains("TCP semantics")), "{n:?}");
}
