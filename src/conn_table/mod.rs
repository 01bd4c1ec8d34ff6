//! The connection table: tracked flows, their protocol state and expiry.
//!
//! - [`state`]: the kernel's per-protocol state machines and timeouts.
//! - [`ConnTable`]: records in a slab, one keyed-SipHash index by client tuple (attacker
//!   chosen tuples cannot degrade it), interned virtual and real-server addresses, and a
//!   hierarchical timing wheel that expires records in amortised O(1). Capacity is set by
//!   the embedder and allocated up front.

mod addr_pool;
mod conn;
pub mod state;
mod store;
mod table;

pub use conn::{Conn, ConnFlags};
pub use state::{Direction, SctpState, TcpState, Timeouts};
pub use store::MAX_CAPACITY;
pub(crate) use table::Hint;
pub use table::{ConnId, ConnTable, ConnUpdate, KeyedSip, NewConn, TICK, TableFull};
