//! The connection table: tracked flows, their protocol state and expiry.
//!
//! Not built yet: it arrives with the Director work (issue 4).
