//! Input that deploys Warden at Istio's classic egress gateway without
//! saying what ports that gateway listens on.
//!
//! The gateway's Envoy listens on container ports (8080 for the Gateway's
//! port 80, 8443 for 443, the `istio-egressgateway` chart's defaults), and
//! that listener port is the `destination.port` Warden sees. A policy
//! whose services are registered on 80 and 443 needs `gatewayPorts` to map
//! the listener ports back; without it every request arriving there is
//! looked up on 8080 and refused as unregistered. Tests cannot catch it:
//! they send requests as a workload does, on port 80. So a selector that
//! looks like the egress gateway, with no `gatewayPorts`, gets a warning.

use super::Note;

use serde_json::Value;
use std::path::Path;

/// The label of a workload selector that looks like Istio's egress
/// gateway (`istio=egressgateway`, `app=istio-egressgateway`, any value
/// naming an egress gateway), as `key=value`. Reads `spec.selector.matchLabels`
/// (AuthorizationPolicy, WasmPlugin) and `spec.selector` (Gateway).
pub fn egress_gateway_label(resource: &Value) -> Option<String> {
    let selector = resource.get("spec")?.get("selector")?.as_object()?;
    let labels = match selector.get("matchLabels") {
        Some(Value::Object(labels)) => labels,
        _ => selector,
    };
    labels.iter().find_map(|(key, value)| {
        let value = value.as_str()?;
        value.to_ascii_lowercase().contains("egressgateway").then(|| format!("{key}={value}"))
    })
}

/// Whether a `gatewayPorts` setting maps any listener port.
pub fn maps_ports(gateway_ports: Option<&Value>) -> bool {
    gateway_ports.and_then(Value::as_object).is_some_and(|m| !m.is_empty())
}

/// The warning for `resource` (`WasmPlugin istio-system/warden`), which
/// selects `label`; `settings` says where `gatewayPorts` goes.
pub fn missing_gateway_ports(file: Option<&Path>, resource: &str, label: &str, settings: &str) -> Note {
    Note::warning(
        file,
        format!(
            "{resource} selects {label}, which looks like Istio's egress gateway: its Envoy listens on 8080 for \
             port 80 and 8443 for 443, and without gatewayPorts each request there is looked up on that listener \
             port, so every request to a service registered on 80 or 443 is refused as unregistered; give \
             gatewayPorts: {{\"8080\": 80, \"8443\": 443}} (the gateway's own listener ports) in {settings}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_that_look_like_the_egress_gateway() {
        let ap = json!({"spec": {"selector": {"matchLabels": {"app": "x", "istio": "egressgateway"}}}});
        assert_eq!(egress_gateway_label(&ap).as_deref(), Some("istio=egressgateway"));
        let gateway = json!({"spec": {"selector": {"istio": "egressgateway"}, "servers": []}});
        assert_eq!(egress_gateway_label(&gateway).as_deref(), Some("istio=egressgateway"));
        let chart = json!({"spec": {"selector": {"matchLabels": {"app": "istio-egressgateway"}}}});
        assert_eq!(egress_gateway_label(&chart).as_deref(), Some("app=istio-egressgateway"));
        for other in [
            json!({"spec": {"selector": {"matchLabels": {"istio": "ingressgateway"}}}}),
            json!({"spec": {"targetRefs": [{"kind": "Gateway", "name": "egressgateway"}]}}),
            json!({"spec": {}}),
            json!({"spec": {"selector": {"matchLabels": {"istio": 1}}}}),
        ] {
            assert_eq!(egress_gateway_label(&other), None, "{other}");
        }
        assert!(maps_ports(Some(&json!({"8080": 80}))));
        assert!(!maps_ports(Some(&json!({}))));
        assert!(!maps_ports(None));
    }
}
