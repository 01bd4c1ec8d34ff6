//! Persistence templates: keeping a client on one real server across connections.
//!
//! Not built yet: it arrives with the Director work (issue 4).
