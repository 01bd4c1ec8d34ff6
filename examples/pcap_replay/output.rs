//! Writing what the Director emits to a classic pcap, in the input's link type.
//!
//! - Raw IP (101) input: the IP packet as is. Raw IPv4 / IPv6 (228 / 229) input is
//!   written as raw IP (101), since a tunnel may change the family.
//! - Ethernet, Linux SLL and SLL2 input: the frame's own link-layer header in front of the
//!   new IP packet, its ethertype / protocol field set to the new packet's family (4in6
//!   and 6in4 tunnels change it). VLAN tags are kept.
//! - Direct routing on Ethernet: the director only rewrites MACs, as
//!   [`lvs::forward::dr::rewrite_macs`] does: destination = the real server's MAC
//!   ([`server_mac`], a locally administered address derived from its IP since a capture
//!   has no ARP table to resolve it), source = the MAC the frame was sent to (the
//!   director's). On other link types DR output is the unchanged (TTL-decremented) IP
//!   packet.

use crate::input::{LINKTYPE_ETHERNET, LINKTYPE_RAW, ethertype_offset};
use lvs::wire::MacAddr;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

/// The MAC this tool gives a real server on Ethernet output: `02:00` + the low 32 bits of
/// its IPv4 address (or of the last four bytes of an IPv6 address).
#[must_use]
pub fn server_mac(addr: IpAddr) -> MacAddr {
    let b = match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    MacAddr([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

/// The link type written for input of `linktype`.
#[must_use]
pub fn output_linktype(linktype: u32, single: bool) -> u32 {
    if !single
        || matches!(
            linktype,
            crate::input::LINKTYPE_IPV4 | crate::input::LINKTYPE_IPV6
        )
    {
        LINKTYPE_RAW
    } else {
        linktype
    }
}

/// A pcap writer that re-wraps IP packets in the input's link-layer header.
pub struct Output<W: Write> {
    w: PcapWriter<W>,
    linktype: u32,
    frame: Vec<u8>,
    /// Packets written.
    pub written: u64,
}

impl<W: Write> Output<W> {
    /// A writer of link type `linktype` (see [`output_linktype`]).
    ///
    /// # Errors
    /// I/O errors writing the header.
    pub fn new(w: W, linktype: u32) -> Result<Self, pcap_file::PcapError> {
        let header = PcapHeader {
            datalink: DataLink::from(linktype),
            snaplen: 262_144,
            ..PcapHeader::default()
        };
        Ok(Self {
            w: PcapWriter::with_header(w, header)?,
            linktype,
            frame: Vec::with_capacity(65_536 + 256),
            written: 0,
        })
    }

    /// Writes `ip` (an IP packet) at `ts_micros`, behind `l2` (the original frame's
    /// link-layer header, of the input's link type `in_linktype`). `dr_to` asks for the
    /// direct-routing MAC rewrite towards that real server.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(
        &mut self,
        ts_micros: i64,
        in_linktype: u32,
        l2: &[u8],
        ip: &[u8],
        dr_to: Option<IpAddr>,
    ) -> Result<(), pcap_file::PcapError> {
        self.frame.clear();
        if self.linktype == in_linktype && self.linktype != LINKTYPE_RAW {
            self.frame.extend_from_slice(l2);
            if let Some(at) = ethertype_offset(self.linktype, l2.len()) {
                let et: u16 = if ip.first().is_some_and(|b| b >> 4 == 6) {
                    0x86dd
                } else {
                    0x0800
                };
                self.frame[at..at + 2].copy_from_slice(&et.to_be_bytes());
            }
        }
        self.frame.extend_from_slice(ip);
        if let Some(rs) = dr_to
            && self.linktype == LINKTYPE_ETHERNET
            && l2.len() >= 12
        {
            let director = MacAddr(l2[..6].try_into().unwrap_or([0; 6]));
            // The packet came out of the Director, so it validates; should it not, the
            // frame is written with its MACs as they were.
            let _ = lvs::forward::dr::rewrite_macs(&mut self.frame, server_mac(rs), director);
        }
        let ts = Duration::from_micros(u64::try_from(ts_micros).unwrap_or(0));
        let pkt = PcapPacket::new(ts, self.frame.len() as u32, &self.frame);
        self.w.write_packet(&pkt)?;
        self.written += 1;
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> W {
        self.w.into_writer()
    }
}
