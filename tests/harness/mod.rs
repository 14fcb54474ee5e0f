//! The harness running Warden's compiled filter.

mod warden;
