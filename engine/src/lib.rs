//! Warden's policy engine: parse, validate and compile a `warden/v1` policy,
//! then decide requests. Plain Rust with no proxy dependency; it reaches the
//! proxy only through the [`Attributes`] trait.
//!
//! ```
//! use warden_engine::{compile, FakeAttributes, Outcome};
//!
//! let policy = compile::load(br#"{
//!   "name": "httpbin-egress",
//!   "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [80]}],
//!   "authorization": [{
//!     "name": "httpbin", "action": "ALLOW", "services": ["httpbin.org"],
//!     "rules": [
//!       {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"]}}]},
//!       {"to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]}
//!     ]
//!   }]
//! }"#).unwrap();
//!
//! let sleep = FakeAttributes::request("POST", "httpbin.org", "/post")
//!     .principal("cluster.local/ns/default/sa/sleep");
//! assert_eq!(policy.decide(&sleep).outcome, Outcome::Denied);
//!
//! let admin = FakeAttributes::request("POST", "httpbin.org", "/post")
//!     .principal("cluster.local/ns/default/sa/admin");
//! assert_eq!(policy.decide(&admin).outcome, Outcome::Allow);
//!
//! let elsewhere = FakeAttributes::get("aliyun.com", "/");
//! assert_eq!(policy.decide(&elsewhere).outcome, Outcome::Unregistered);
//! ```

//!
//! What a user of the crate needs is re-exported here: [`compile::load`]
//! and [`Policy::decide`], the [`Attributes`] trait the proxy implements,
//! [`Decision`] with its [`Outcome`] and [`Reason`], and [`record`], the
//! vocabulary of what the filter emits. The public modules below serve
//! the filter and the tools ([`bundle`], [`document`], [`dlp`],
//! [`identity`], [`normalize`], [`request`]); matching, the registry and
//! the rule evaluation are private.

#![deny(missing_docs)]

pub mod authz;
pub mod bundle;
pub mod compile;
mod connection;
mod decision;
pub mod dlp;
pub mod document;
mod error;
pub mod identity;
pub mod matcher;
mod needs;
pub mod normalize;
mod policy;
pub mod record;
mod registry;
pub mod request;

pub use decision::Decision;
pub use document::Document;
pub use error::{ErrorKind, PolicyError, Problem, ValueError};
pub use policy::{Policy, Processed, Response, Responses, Trace, TraceStep};
pub use record::{Outcome, Reason};
pub use registry::{Registry, Service, ServiceId};
pub use request::{Attributes, FakeAttributes};
