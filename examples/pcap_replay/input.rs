//! Reading captures: classic pcap or pcapng (told apart by magic number), and finding the
//! IP packet inside a frame of each supported link type.

use core::fmt;
use core::ops::Range;

/// LINKTYPE_ETHERNET (with up to two 802.1Q / 802.1ad tags).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// LINKTYPE_RAW: the frame is the IP packet.
pub const LINKTYPE_RAW: u32 = 101;
/// LINKTYPE_LINUX_SLL: 16-byte Linux "cooked" header, protocol at bytes 14..16.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4: raw IPv4.
pub const LINKTYPE_IPV4: u32 = 228;
/// LINKTYPE_IPV6: raw IPv6.
pub const LINKTYPE_IPV6: u32 = 229;
/// LINKTYPE_LINUX_SLL2: 20-byte Linux cooked header v2, protocol at bytes 0..2.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Capture file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap (any byte order, micro- or nanosecond timestamps).
    Pcap,
    /// pcapng.
    PcapNg,
}

/// Why a capture could not be read.
#[derive(Debug)]
pub enum InputError {
    /// Shorter than a magic number.
    TooShort,
    /// Neither pcap nor pcapng.
    UnknownMagic(u32),
    /// The pcap-file crate refused the file.
    Pcap(pcap_file::PcapError),
    /// A link type this tool does not decode.
    UnsupportedLinkType(u32),
    /// A pcapng packet names an interface that was not described.
    NoInterface(u32),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("file too short to be a capture"),
            Self::UnknownMagic(m) => write!(f, "not a pcap or pcapng file (magic {m:#010x})"),
            Self::Pcap(e) => write!(f, "capture: {e}"),
            Self::UnsupportedLinkType(l) => write!(
                f,
                "link type {l} is not supported (Ethernet 1, raw IP 101/228/229, Linux SLL 113, SLL2 276)"
            ),
            Self::NoInterface(i) => write!(f, "pcapng packet on undescribed interface {i}"),
        }
    }
}

impl std::error::Error for InputError {}

impl From<pcap_file::PcapError> for InputError {
    fn from(e: pcap_file::PcapError) -> Self {
        Self::Pcap(e)
    }
}

/// The format of a capture, from its first four bytes.
///
/// # Errors
/// [`InputError::TooShort`] or [`InputError::UnknownMagic`].
pub fn detect_format(bytes: &[u8]) -> Result<Format, InputError> {
    let m = bytes.first_chunk::<4>().ok_or(InputError::TooShort)?;
    match u32::from_le_bytes(*m) {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => Ok(Format::Pcap),
        0x0a0d_0d0a => Ok(Format::PcapNg),
        m => Err(InputError::UnknownMagic(m)),
    }
}

/// Whether this tool decodes `linktype`.
#[must_use]
pub fn supported(linktype: u32) -> bool {
    matches!(
        linktype,
        LINKTYPE_ETHERNET
            | LINKTYPE_RAW
            | LINKTYPE_LINUX_SLL
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_LINUX_SLL2
    )
}

/// One frame of a [`Capture`].
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Capture timestamp, microseconds since the Unix epoch.
    pub ts_micros: i64,
    /// Offset in [`Capture::data`].
    pub start: u32,
    /// Captured length.
    pub len: u32,
    /// Link type of the interface it was captured on.
    pub linktype: u32,
}

/// A whole capture in memory: all frames back to back in one buffer.
#[derive(Debug, Default)]
pub struct Capture {
    /// The frames' bytes.
    pub data: Vec<u8>,
    /// The frames.
    pub frames: Vec<Frame>,
    /// The link type of the first interface (the output's link type).
    pub linktype: u32,
    /// Whether all frames share [`Capture::linktype`].
    pub single_linktype: bool,
}

impl Capture {
    /// The bytes of frame `i`.
    #[must_use]
    pub fn frame(&self, i: usize) -> &[u8] {
        let f = self.frames[i];
        &self.data[f.start as usize..(f.start + f.len) as usize]
    }

    fn push(&mut self, ts_micros: i64, linktype: u32, bytes: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        self.frames.push(Frame {
            ts_micros,
            start,
            len: bytes.len() as u32,
            linktype,
        });
    }
}

/// Reads a capture held in `bytes`.
///
/// # Errors
/// [`InputError`] for an unknown format, a corrupt file or an unsupported link type.
pub fn read_capture(bytes: &[u8]) -> Result<Capture, InputError> {
    let mut cap = Capture {
        single_linktype: true,
        ..Capture::default()
    };
    cap.data.reserve(bytes.len());
    match detect_format(bytes)? {
        Format::Pcap => {
            let mut r = pcap_file::pcap::PcapReader::new(bytes)?;
            let linktype = u32::from(r.header().datalink);
            if !supported(linktype) {
                return Err(InputError::UnsupportedLinkType(linktype));
            }
            cap.linktype = linktype;
            while let Some(p) = r.next_packet() {
                let p = p?;
                let ts = i64::try_from(p.timestamp.as_micros()).unwrap_or(i64::MAX);
                cap.push(ts, linktype, &p.data);
            }
        }
        Format::PcapNg => {
            use pcap_file::pcapng::Block;
            use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
            let mut r = pcap_file::pcapng::PcapNgReader::new(bytes)?;
            // (link type, ticks per second) per interface.
            let mut ifaces: Vec<(u32, u64)> = Vec::new();
            while let Some(b) = r.next_block() {
                match b? {
                    Block::InterfaceDescription(idb) => {
                        let lt = u32::from(idb.linktype);
                        if !supported(lt) {
                            return Err(InputError::UnsupportedLinkType(lt));
                        }
                        let mut per_sec = 1_000_000u64;
                        for o in &idb.options {
                            if let InterfaceDescriptionOption::IfTsResol(r) = o {
                                per_sec = if r & 0x80 != 0 {
                                    1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(u64::MAX)
                                } else {
                                    10u64.checked_pow(u32::from(*r)).unwrap_or(u64::MAX)
                                };
                            }
                        }
                        if ifaces.is_empty() {
                            cap.linktype = lt;
                        } else if lt != cap.linktype {
                            cap.single_linktype = false;
                        }
                        ifaces.push((lt, per_sec.max(1)));
                    }
                    Block::EnhancedPacket(epb) => {
                        let &(lt, per_sec) = ifaces
                            .get(epb.interface_id as usize)
                            .ok_or(InputError::NoInterface(epb.interface_id))?;
                        // pcap-file hands the raw 64-bit tick count over as nanoseconds.
                        let ticks = epb.timestamp.as_nanos();
                        let micros = ticks * 1_000_000 / u128::from(per_sec);
                        cap.push(i64::try_from(micros).unwrap_or(i64::MAX), lt, &epb.data);
                    }
                    Block::SimplePacket(spb) => {
                        let &(lt, _) = ifaces.first().ok_or(InputError::NoInterface(0))?;
                        let ts = cap.frames.last().map_or(0, |f| f.ts_micros);
                        cap.push(ts, lt, &spb.data);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(cap)
}

/// Where the IP packet sits in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L3 {
    /// The link-layer header (`0..l2_len`).
    pub l2_len: usize,
    /// The IP packet, cut to the IP header's own length (drops Ethernet padding); a
    /// snapped packet keeps what was captured.
    pub ip: Range<usize>,
}

/// Finds the IP packet in `frame`; `None` for frames that carry no IPv4/IPv6 packet (ARP,
/// LLDP, ...).
#[must_use]
pub fn locate_l3(linktype: u32, frame: &[u8]) -> Option<L3> {
    let ethertype_at = |off: usize| -> Option<u16> {
        Some(u16::from_be_bytes(*frame.get(off..off + 2)?.first_chunk()?))
    };
    let l2_len = match linktype {
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => 0,
        LINKTYPE_ETHERNET => {
            let mut off = 12;
            loop {
                match ethertype_at(off)? {
                    0x8100 | 0x88a8 if off < 20 => off += 4,
                    0x0800 | 0x86dd => break off + 2,
                    _ => return None,
                }
            }
        }
        LINKTYPE_LINUX_SLL => match ethertype_at(14)? {
            0x0800 | 0x86dd => 16,
            _ => return None,
        },
        LINKTYPE_LINUX_SLL2 => match ethertype_at(0)? {
            0x0800 | 0x86dd => 20,
            _ => return None,
        },
        _ => return None,
    };
    let l3 = frame.get(l2_len..)?;
    let len = match l3.first()? >> 4 {
        4 if l3.len() >= 4 => usize::from(u16::from_be_bytes([l3[2], l3[3]])),
        6 if l3.len() >= 6 => 40 + usize::from(u16::from_be_bytes([l3[4], l3[5]])),
        // Too short to say: hand it over, the engine reports it malformed.
        4 | 6 => l3.len(),
        _ => return None,
    };
    Some(L3 {
        l2_len,
        ip: l2_len..l2_len + len.min(l3.len()),
    })
}

/// Where the ethertype / protocol field sits in a link-layer header of `linktype` that is
/// `l2_len` bytes long (`None` for raw IP).
#[must_use]
pub fn ethertype_offset(linktype: u32, l2_len: usize) -> Option<usize> {
    match linktype {
        LINKTYPE_ETHERNET | LINKTYPE_LINUX_SLL if l2_len >= 2 => Some(l2_len - 2),
        LINKTYPE_LINUX_SLL2 if l2_len >= 20 => Some(0),
        _ => None,
    }
}
