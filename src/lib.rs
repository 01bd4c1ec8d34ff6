//! # lvs: the core of Linux Virtual Server, without the I/O
//!
//! `lvs` holds the logic of the kernel's IPVS load balancer as a library that never reads
//! a clock, never seeds itself from the operating system and never touches a socket, file
//! or device. An embedder (a TUN or AF_XDP datapath, DPDK, a pcap replayer, a fuzzer or a
//! property test) owns the packets and the time and hands them in.
//!
//! This release holds the foundation:
//! - [`wire`]: zero-copy, bounds-checked views of Ethernet, IPv4, IPv6 (with extension
//!   headers), TCP, UDP, SCTP, ICMPv4, ICMPv6, GRE and GUE, and [`PacketSummary`], the one
//!   pass the engine routes on;
//! - [`checksum`]: RFC 1071 and RFC 1624 checksums and SCTP's CRC32c;
//! - [`forward`]: every rewrite IPVS performs (NAT both ways, ICMP errors about NAT
//!   connections, IPIP / 6in6 / 4in6 / 6in4, GUE and GRE tunnels and their
//!   decapsulation, direct routing, TTL decrement, path-MTU replies), in place over a
//!   [`PacketBuf`] with headroom.
//!
//! Every rewrite validates the whole packet before it writes a byte: on error the buffer
//! is exactly as it was.
//!
//! The schedulers, the connection table and persistence ([`scheduler`], [`conn_table`],
//! [`persistence`]) are built on this in later releases.
//!
//! ```
//! use lvs::{PacketBuf, PacketSummary, forward::nat};
//! # let client_syn = lvs::fuzzing::sample_tcp_v4();
//! let mut buf = PacketBuf::with_headroom(64, &client_syn);
//! // Client -> VIP 192.0.2.1:80 becomes client -> real server 10.0.0.2:8080.
//! nat::inbound(buf.packet_mut(), "10.0.0.2".parse().unwrap(), 8080).unwrap();
//! let s = PacketSummary::parse(buf.packet()).unwrap();
//! assert_eq!(s.dst, "10.0.0.2".parse::<std::net::IpAddr>().unwrap());
//! assert_eq!(s.ports.unwrap().dst, 8080);
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
pub use director::{Config, Director, DropReason, Event, PacketMeta, Verdict};
pub use service::{ServiceConfig, ServiceId, ServiceKey};

/// The README's examples, compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use error::{Layer, ParseError, ParseErrorKind, RewriteError};
pub use time::Instant;
pub use wire::PacketSummary;
