//! `warden test`: the `*.test.yaml` format ([`testfile`]), requests shaped
//! as Envoy hands them to a filter ([`envoy`]), running cases through the
//! compiled filter in the harness ([`runner`]), rule coverage
//! ([`coverage`]) and the reports, human, JSON and JUnit ([`report`]).

pub mod coverage;
pub mod envoy;
pub mod report;
pub mod runner;
pub mod testfile;
