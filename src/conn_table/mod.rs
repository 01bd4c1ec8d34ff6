//! The connection table: tracked flows, their protocol state and expiry.
//!
//! [`state`] holds the kernel's per-protocol state machines and timeouts; the table itself
//! (keyed lookups, expiry, defence) arrives with the Director work (issue 4).

pub mod state;

pub use state::{Direction, SctpState, TcpState, Timeouts};
