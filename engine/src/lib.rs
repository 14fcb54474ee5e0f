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

pub mod authz;
pub mod bundle;
pub mod compile;
pub mod decision;
pub mod dlp;
pub mod document;
pub mod error;
pub mod identity;
pub mod matcher;
mod needs;
pub mod normalize;
pub mod policy;
pub mod record;
pub mod registry;
pub mod request;

pub use decision::Decision;
pub use document::Document;
pub use error::{ErrorKind, PolicyError};
pub use policy::{Policy, Processed, Response, Responses, Trace, TraceStep};
pub use record::{Outcome, Reason};
pub use request::{Attributes, FakeAttributes};
