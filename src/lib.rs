//! # lvs: the core of Linux Virtual Server, without the I/O
//!
//! `lvs` holds the logic of the kernel's IPVS load balancer as a library that never reads
//! a clock, never seeds itself from the operating system and never touches a socket, file
//! or device. An embedder (a TUN or AF_XDP datapath, DPDK, a pcap replayer, a fuzzer or a
//! property test) owns the packets and the time and hands them in.
//!
//! - [`Director`]: the engine. Feed it packets with [`Director::handle_packet`] (or a
//!   receive ring's worth at once with [`Director::handle_burst`], faster on a large
//!   table) and time with [`Director::handle_timeout`]; it answers each packet with a
//!   [`Verdict`] and reports what happened through [`Director::poll_event`].
//! - [`scheduler`]: the fourteen IPVS schedulers, decision for decision (checked against a
//!   real kernel), plus a weighted canonical Maglev and slow start.
//! - [`conn_table`]: connections and their TCP/UDP/SCTP state, keyed SipHash, a timing
//!   wheel; [`persistence`]: templates; [`stats`]: counters and the rate estimator.
//! - [`ipvsadm`]: the rule language and the `ipvsadm -S -n` / `-L -n` texts.
//! - [`forward`]: every rewrite IPVS performs (NAT both ways, ICMP errors about NAT
//!   connections, IPIP / 6in6 / 4in6 / 6in4, GUE and GRE tunnels and their
//!   decapsulation, direct routing, TTL decrement, ICMP replies), in place over a
//!   [`PacketBuf`] with headroom; [`wire`]: zero-copy views and [`PacketSummary`];
//!   [`checksum`]: RFC 1071 / RFC 1624 and CRC32c.
//!
//! Every rewrite validates the whole packet before it writes a byte: on error the buffer
//! is exactly as it was.
//!
//! ## The drive loop
//!
//! ```
//! use lvs::{Config, Director, Instant, PacketBuf, PacketMeta, Verdict};
//!
//! let rules = "-A -t 192.0.2.1:80 -s wlc\n\
//!              -a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m -w 1\n\
//!              -a -t 192.0.2.1:80 -r 10.0.0.3:8080 -m -w 2\n";
//! let seed = [42u8; 32]; // from the embedder's own randomness
//! let mut director = Director::from_rules(Config::default(), seed, rules).unwrap();
//!
//! // The embedder's clock: here a capture's timestamps, or a monotonic clock.
//! let mut now = Instant::from_secs(1_700_000_000);
//! let syn = lvs::fuzzing::sample_tcp_v4(); // 198.51.100.7:40000 -> 192.0.2.1:80
//! let mut buf = PacketBuf::with_headroom(lvs::buf::DEFAULT_HEADROOM, &syn);
//!
//! match director.handle_packet(now, &mut buf, PacketMeta::default()) {
//!     Verdict::Forward { next_hop, .. } => {
//!         // Send buf.packet() towards next_hop (a real server, rewritten by NAT here).
//!         assert!(next_hop.to_string().starts_with("10.0.0."));
//!     }
//!     Verdict::Reply { to } => { /* send the ICMP error now in buf to `to` */ let _ = to; }
//!     Verdict::Pass => { /* not for a virtual service: deliver it normally */ }
//!     other => panic!("{other:?}"),
//! }
//! // After every call, drain the events and ask when to call back.
//! while let Some(event) = director.poll_event() {
//!     let _ = event; // connection created / expired, server overloaded, ...
//! }
//! if let Some(t) = director.poll_timeout() {
//!     now = t; // ... when the embedder's clock reaches t:
//!     director.handle_timeout(now);
//! }
//! ```
#![forbid(unsafe_code)]

pub mod buf;
pub mod checksum;
pub mod conn_table;
pub mod director;
pub mod error;
pub mod forward;
pub mod fuzzing;
pub mod ipvsadm;
pub mod persistence;
pub mod scheduler;
pub mod service;
pub mod siphash;
pub mod stats;
pub mod time;
pub mod wire;

pub use buf::PacketBuf;
pub use director::{BurstError, Config, Director, DropReason, Event, PacketMeta, Verdict};
pub use service::{ServiceConfig, ServiceId, ServiceKey};

/// The README's examples, compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use error::{Layer, ParseError, ParseErrorKind, RewriteError};
pub use time::Instant;
pub use wire::PacketSummary;
