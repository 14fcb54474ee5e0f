//! Data loss prevention: the detectors that find secrets and personal data
//! in what a request carries.
//!
//! - [`CATALOGUE`]: the built-in detectors, one [`Detector`] per id a
//!   policy may name, and [`reference_scan`], the slow, obviously-correct
//!   oracle the fast scanner is tested against;
//! - [`compile_custom`]: a policy's own `patterns`, with limits;
//! - [`DlpSet`]: a policy's DLP policies compiled into scanners, and
//!   [`BodyScan`], the streaming scan of one request's body.
//!
//! The scanner's parts (decoding, the catalogue's internals, the scanner,
//! the check-digit validators) are private; the `internals` feature makes
//! them public for the engine's tests, the benchmarks and the fuzz targets.
//!
//! ```
//! use warden_engine::dlp::{compile_custom, reference_scan};
//!
//! let body = br#"{"card": "4111 1111 1111 1111", "key": "AKIAZ7VQ2XK4MHL3RWTN"}"#;
//! let ids: Vec<&str> = reference_scan(body).iter().map(|f| f.id).collect();
//! assert_eq!(ids, ["credit_card", "aws_access_key_id"]);
//!
//! let itk = compile_custom("internal-token", "itk_[A-Za-z0-9]{32}").unwrap();
//! assert!(itk.is_match(b"token=itk_0123456789abcdef0123456789ABCDEF"));
//! assert!(compile_custom("bad", "itk_[A-Z").unwrap_err().to_string().contains("unclosed character class"));
//! ```

pub(crate) mod body;
mod custom;
mod error;
pub(crate) mod finding;
pub(crate) mod policy;
pub(crate) mod trace;

// The scanner's parts, public with the `internals` feature only: for the
// engine's own tests, the benchmarks and the fuzz targets, not for users
// (each module's own docs say what it holds).
macro_rules! internals {
    ($($name:ident),*) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code)]
        pub(crate) mod $name;
    )*};
}

internals!(classes, decode, detectors, scanner, validators);

pub use body::{BodyScan, BodyStep};
pub use custom::{compile_custom, CUSTOM_DFA_SIZE_LIMIT, CUSTOM_NEST_LIMIT, CUSTOM_SIZE_LIMIT};
pub use detectors::{detector, reference_scan, Anchor, Detector, Group, RefFinding, CATALOGUE};
pub use error::{BuildError, PatternError, PatternProblem};
pub use finding::{Finding, Location, MAX_LOCATIONS};
pub use policy::{DlpPolicy, DlpSet, DlpSpec, DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES_LIMIT};
pub use scanner::custom_anchors;
