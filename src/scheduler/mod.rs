//! Schedulers: which real server a new connection goes to.
//!
//! Not built yet: the fourteen IPVS schedulers arrive with the scheduler work (issue 3).
//! This module exists so the crate's layout shows where they go.
