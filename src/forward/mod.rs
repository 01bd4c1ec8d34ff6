//! Packet rewrites for each IPVS forwarding method, in place.
//!
//! Every function here validates the whole packet before it writes a byte, so an `Err`
//! means the buffer is exactly as it was. Checksums are updated incrementally (RFC 1624
//! eqn. 3) where the change is a few fields, and computed in full only for headers this
//! crate creates.

pub mod dr;
pub mod icmp_reply;
pub mod nat;
pub mod pmtu;
pub mod ttl;
pub mod tunnel;
