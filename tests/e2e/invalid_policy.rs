//! A policy the engine rejects must stop Envoy from taking the
//! configuration (`proxy_on_configure` returns false, the filter
//! fails closed) and the log must say which field is wrong.

use serde_json::json;

use super::envoy::Envoy;
use super::gateway::namespace;
use super::policy;
use super::upstream::Upstream;

/// The field the bad path template sits in, as the filter names it.
const BAD_FIELD: &str = "authorization[0].rules[0].to[0].operation.paths[0]";

#[test]
fn envoy_refuses_an_invalid_policy_and_the_log_names_the_field() {
    // The ambient-waypoint policy with an Istio path template that is not
    // valid: `{**}` must be the last segment.
    let bad_rule = json!({"to": [{"operation": {"paths": ["/{**}/x/{*}"]}}]});
    let policy = policy::with(policy::example("ambient-waypoint"), "/authorization/0/rules/0", bad_rule);
    let netns = namespace(&[]);
    let upstream = netns.run(|| Upstream::start(200));

    let failure = match Envoy::start(Some(&policy), upstream.addr(), netns) {
        Ok(envoy) => panic!("Envoy took a policy with an invalid path template:\n{}", envoy.log_tail()),
        Err(failure) => failure,
    };

    // Envoy 1.40 treats a plugin that fails to configure with fail_open
    // false as a fatal configuration error: it exits with status 1.
    assert!(
        failure.exit.is_some_and(|status| !status.success()),
        "Envoy should exit with an error, not {:?}: {failure}",
        failure.exit
    );
    assert!(
        failure.log.contains(&format!("warden: invalid configuration: {BAD_FIELD}: ")),
        "the log should name {BAD_FIELD}: {failure}"
    );
    assert!(upstream.paths().is_empty(), "nothing may reach the upstream");
}
