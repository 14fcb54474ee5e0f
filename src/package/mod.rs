//! Shipping the filter: as an OCI image for `oci://` WasmPlugin urls
//! ([`oci`]) and as the Istio WasmPlugin manifest that deploys it with a
//! policy ([`wasmplugin`]).

pub mod oci;
pub mod wasmplugin;
