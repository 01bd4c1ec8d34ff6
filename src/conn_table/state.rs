//! Per-protocol connection state, exactly as IPVS keeps it: the TCP state tables (normal
//! and secure_tcp), SCTP's, UDP's single state, and the default timeouts, changeable like
//! `ipvsadm --set tcp tcpfin udp`.

use core::time::Duration;

/// Which way a packet travels relative to the connection.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Direction {
    /// Client to director.
    Input,
    /// Real server to client (seen by the director only with NAT).
    Output,
    /// Client to director on a connection that has never shown an output packet
    /// (direct routing, tunnels, local): IPVS uses its INPUT_ONLY rows then.
    InputOnly,
}

impl Direction {
    const fn row(self) -> usize {
        match self {
            Self::Input => 0,
            Self::Output => 1,
            Self::InputOnly => 2,
        }
    }
}

/// TCP connection states (`IP_VS_TCP_S_*`), in the kernel's order.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum TcpState {
    /// NONE.
    None = 0,
    /// ESTABLISHED.
    Established,
    /// SYN_SENT.
    SynSent,
    /// SYN_RECV.
    SynRecv,
    /// FIN_WAIT.
    FinWait,
    /// TIME_WAIT.
    TimeWait,
    /// CLOSE.
    Close,
    /// CLOSE_WAIT.
    CloseWait,
    /// LAST_ACK.
    LastAck,
    /// LISTEN.
    Listen,
    /// SYNACK.
    SynAck,
}

impl TcpState {
    /// All states in the kernel's order.
    pub const ALL: [Self; 11] = [
        Self::None,
        Self::Established,
        Self::SynSent,
        Self::SynRecv,
        Self::FinWait,
        Self::TimeWait,
        Self::Close,
        Self::CloseWait,
        Self::LastAck,
        Self::Listen,
        Self::SynAck,
    ];

    /// The name `ipvsadm -Lnc` and `/proc/net/ip_vs_conn` print.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait => "FIN_WAIT",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts as active (`activeconns`) rather than
    /// inactive: ESTABLISHED and the handshake states SYN_SENT, SYN_RECV and SYNACK
    /// (`tcp_state_active_table`; brand-new connections start inactive, in NONE).
    #[must_use]
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            Self::Established | Self::SynSent | Self::SynRecv | Self::SynAck
        )
    }

    /// The next state after a packet with TCP `flags` in `dir` (`set_tcp_state`):
    /// RST, else SYN, else FIN, else ACK picks the row; a packet with none of them moves
    /// the connection to CLOSE. `secure` selects the secure_tcp table.
    #[must_use]
    #[inline(always)]
    pub fn next(self, dir: Direction, flags: u8, secure: bool) -> Self {
        use crate::wire::tcp::flags as f;
        let event = if flags & f::RST != 0 {
            3
        } else if flags & f::SYN != 0 {
            0
        } else if flags & f::FIN != 0 {
            1
        } else if flags & f::ACK != 0 {
            2
        } else {
            return Self::Close;
        };
        let table = if secure { &TCP_STATES_DOS } else { &TCP_STATES };
        table[dir.row() * 4 + event][self as usize]
    }
}

use TcpState as T;

// Rows: direction (INPUT, OUTPUT, INPUT_ONLY) x event (syn, fin, ack, rst); columns: the
// current state in kernel order. Transcribed from ip_vs_proto_tcp.c.
const TCP_STATES: [[TcpState; 11]; 12] = [
    // IN syn
    [
        T::SynRecv,
        T::Established,
        T::Established,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
    ],
    // IN fin
    [
        T::Close,
        T::CloseWait,
        T::SynSent,
        T::TimeWait,
        T::TimeWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::LastAck,
        T::Listen,
        T::TimeWait,
    ],
    // IN ack
    [
        T::Established,
        T::Established,
        T::SynSent,
        T::Established,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::Close,
        T::Listen,
        T::Established,
    ],
    // IN rst
    [
        T::Close,
        T::Close,
        T::Close,
        T::SynRecv,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
        T::LastAck,
        T::Listen,
        T::SynRecv,
    ],
    // OUT syn
    [
        T::SynSent,
        T::Established,
        T::SynSent,
        T::SynRecv,
        T::SynSent,
        T::SynSent,
        T::SynSent,
        T::SynSent,
        T::SynSent,
        T::Listen,
        T::SynRecv,
    ],
    // OUT fin
    [
        T::TimeWait,
        T::FinWait,
        T::SynSent,
        T::TimeWait,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::TimeWait,
        T::LastAck,
        T::Listen,
        T::TimeWait,
    ],
    // OUT ack
    [
        T::Established,
        T::Established,
        T::SynSent,
        T::Established,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::LastAck,
        T::Established,
        T::Established,
    ],
    // OUT rst
    [
        T::Close,
        T::Close,
        T::SynSent,
        T::Close,
        T::Close,
        T::TimeWait,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
    ],
    // IN_ONLY syn
    [
        T::SynRecv,
        T::Established,
        T::Established,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
    ],
    // IN_ONLY fin
    [
        T::Close,
        T::FinWait,
        T::SynSent,
        T::TimeWait,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::LastAck,
        T::Listen,
        T::TimeWait,
    ],
    // IN_ONLY ack
    [
        T::Established,
        T::Established,
        T::SynSent,
        T::Established,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::Close,
        T::Listen,
        T::Established,
    ],
    // IN_ONLY rst
    [
        T::Close,
        T::Close,
        T::Close,
        T::SynRecv,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
        T::LastAck,
        T::Listen,
        T::Close,
    ],
];
const TCP_STATES_DOS: [[TcpState; 11]; 12] = [
    // IN syn
    [
        T::SynRecv,
        T::Established,
        T::Established,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynRecv,
        T::SynAck,
    ],
    // IN fin
    [
        T::Close,
        T::CloseWait,
        T::SynSent,
        T::TimeWait,
        T::TimeWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::LastAck,
        T::Listen,
        T::SynAck,
    ],
    // IN ack
    [
        T::Established,
        T::Established,
        T::SynSent,
        T::SynRecv,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::Close,
        T::Listen,
        T::SynAck,
    ],
    // IN rst
    [
        T::Close,
        T::Close,
        T::Close,
        T::SynRecv,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
        T::LastAck,
        T::Listen,
        T::Close,
    ],
    // OUT syn
    [
        T::SynSent,
        T::Established,
        T::SynSent,
        T::SynAck,
        T::SynSent,
        T::SynSent,
        T::SynSent,
        T::SynSent,
        T::SynSent,
        T::Listen,
        T::SynAck,
    ],
    // OUT fin
    [
        T::TimeWait,
        T::FinWait,
        T::SynSent,
        T::TimeWait,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::TimeWait,
        T::LastAck,
        T::Listen,
        T::TimeWait,
    ],
    // OUT ack
    [
        T::Established,
        T::Established,
        T::SynSent,
        T::Established,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::LastAck,
        T::Established,
        T::Established,
    ],
    // OUT rst
    [
        T::Close,
        T::Close,
        T::SynSent,
        T::Close,
        T::Close,
        T::TimeWait,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
    ],
    // IN_ONLY syn
    [
        T::SynAck,
        T::Established,
        T::Established,
        T::SynRecv,
        T::SynAck,
        T::SynAck,
        T::SynAck,
        T::SynAck,
        T::SynAck,
        T::SynAck,
        T::SynAck,
    ],
    // IN_ONLY fin
    [
        T::Close,
        T::FinWait,
        T::SynSent,
        T::TimeWait,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::LastAck,
        T::Listen,
        T::TimeWait,
    ],
    // IN_ONLY ack
    [
        T::Established,
        T::Established,
        T::SynSent,
        T::Established,
        T::FinWait,
        T::TimeWait,
        T::Close,
        T::CloseWait,
        T::Close,
        T::Listen,
        T::Established,
    ],
    // IN_ONLY rst
    [
        T::Close,
        T::Close,
        T::Close,
        T::SynRecv,
        T::Close,
        T::Close,
        T::Close,
        T::Close,
        T::LastAck,
        T::Listen,
        T::Close,
    ],
];

/// SCTP association states (`IP_VS_SCTP_S_*`), in the kernel's order.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum SctpState {
    /// NONE.
    None = 0,
    /// INIT1: INIT seen from the client.
    Init1,
    /// INIT.
    Init,
    /// COOKIE_SENT.
    CookieSent,
    /// COOKIE_REPLIED.
    CookieReplied,
    /// COOKIE_WAIT.
    CookieWait,
    /// COOKIE.
    Cookie,
    /// COOKIE_ECHOED.
    CookieEchoed,
    /// ESTABLISHED.
    Established,
    /// SHUTDOWN_SENT.
    ShutdownSent,
    /// SHUTDOWN_RECEIVED.
    ShutdownReceived,
    /// SHUTDOWN_ACK_SENT.
    ShutdownAckSent,
    /// REJECTED.
    Rejected,
    /// CLOSED.
    Closed,
}

impl SctpState {
    /// All states in the kernel's order.
    pub const ALL: [Self; 14] = [
        Self::None,
        Self::Init1,
        Self::Init,
        Self::CookieSent,
        Self::CookieReplied,
        Self::CookieWait,
        Self::Cookie,
        Self::CookieEchoed,
        Self::Established,
        Self::ShutdownSent,
        Self::ShutdownReceived,
        Self::ShutdownAckSent,
        Self::Rejected,
        Self::Closed,
    ];

    /// The name `ipvsadm -Lnc` prints.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Init1 => "INIT1",
            Self::Init => "INIT",
            Self::CookieSent => "C-SENT",
            Self::CookieReplied => "C-REPLIED",
            Self::CookieWait => "C-WAIT",
            Self::Cookie => "COOKIE",
            Self::CookieEchoed => "C-ECHOED",
            Self::Established => "ESTABLISHED",
            Self::ShutdownSent => "S-SENT",
            Self::ShutdownReceived => "S-RECEIVED",
            Self::ShutdownAckSent => "S-ACK-SENT",
            Self::Rejected => "REJECTED",
            Self::Closed => "CLOSED",
        }
    }

    /// Only ESTABLISHED counts as active.
    #[must_use]
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Established)
    }

    /// The next state after a packet whose chunks are `chunks` (the bytes after the SCTP
    /// common header) in `dir`, as `set_sctp_state` derives the event.
    #[must_use]
    pub fn next(self, dir: Direction, chunks: &[u8]) -> Self {
        SCTP_STATES[dir.row()][sctp_event(chunks) as usize][self as usize]
    }
}

/// SCTP events (`IP_VS_SCTP_*` event indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SctpEvent {
    Data = 0,
    Init,
    InitAck,
    CookieEcho,
    CookieAck,
    Shutdown,
    ShutdownAck,
    ShutdownComplete,
    Error,
    Abort,
}

/// The event of a packet: its first chunk's type, except that COOKIE_ECHO or COOKIE_ACK
/// followed by an ABORT counts as ABORT; unknown types count as DATA.
fn sctp_event(chunks: &[u8]) -> SctpEvent {
    use SctpEvent as E;
    let Some(&first) = chunks.first() else {
        return E::Data;
    };
    let mut ty = first;
    if (ty == 10 || ty == 11) && chunks.len() >= 4 {
        let clen = usize::from(u16::from_be_bytes([chunks[2], chunks[3]]));
        if clen >= 4 {
            let next = (clen + 3) & !3;
            if chunks.get(next) == Some(&6) {
                ty = 6;
            }
        }
    }
    match ty {
        1 => E::Init,
        2 => E::InitAck,
        6 => E::Abort,
        7 => E::Shutdown,
        8 => E::ShutdownAck,
        9 => E::Error,
        10 => E::CookieEcho,
        11 => E::CookieAck,
        14 => E::ShutdownComplete,
        _ => E::Data,
    }
}

use SctpState as S;

// [direction][event][current state], transcribed from ip_vs_proto_sctp.c.
const SCTP_STATES: [[[SctpState; 14]; 10]; 3] = [
    // INPUT
    [
        // d
        [
            S::Established,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // i
        [
            S::Init1,
            S::Init,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Init,
            S::Init,
        ],
        // i_a
        [
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieSent,
            S::CookieReplied,
            S::Cookie,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // c_e
        [
            S::CookieReplied,
            S::Init,
            S::Init,
            S::CookieReplied,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // c_a
        [
            S::Established,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::Established,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // s
        [
            S::ShutdownReceived,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::ShutdownReceived,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // s_a
        [
            S::Closed,
            S::Init,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::Closed,
            S::ShutdownReceived,
            S::Closed,
            S::Rejected,
            S::Closed,
        ],
        // s_c
        [
            S::Closed,
            S::Closed,
            S::Closed,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::Closed,
            S::Rejected,
            S::Closed,
        ],
        // err
        [
            S::Closed,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::Closed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // ab
        [
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Rejected,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
        ],
    ],
    // OUTPUT
    [
        // d
        [
            S::Established,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // i
        [
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::Established,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
            S::CookieWait,
        ],
        // i_a
        [
            S::CookieSent,
            S::CookieSent,
            S::CookieSent,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // c_e
        [
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // c_a
        [
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // s
        [
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // s_a
        [
            S::ShutdownAckSent,
            S::ShutdownAckSent,
            S::ShutdownAckSent,
            S::ShutdownAckSent,
            S::ShutdownAckSent,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownAckSent,
            S::ShutdownAckSent,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // s_c
        [
            S::Closed,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // err
        [
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // ab
        [
            S::Closed,
            S::Rejected,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
        ],
    ],
    // INPUT_ONLY
    [
        // d
        [
            S::Established,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::Established,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // i
        [
            S::Init1,
            S::Init,
            S::Init,
            S::Init,
            S::Init,
            S::Init,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Init,
            S::Init,
        ],
        // i_a
        [
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::CookieEchoed,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // c_e
        [
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Established,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // c_a
        [
            S::Established,
            S::Init1,
            S::Init,
            S::Established,
            S::Established,
            S::CookieWait,
            S::Established,
            S::Established,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // s
        [
            S::ShutdownReceived,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::ShutdownReceived,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // s_a
        [
            S::Closed,
            S::Init,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Closed,
            S::Closed,
            S::ShutdownReceived,
            S::Closed,
            S::Rejected,
            S::Closed,
        ],
        // s_c
        [
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::Closed,
            S::Closed,
            S::Rejected,
            S::Closed,
        ],
        // err
        [
            S::Closed,
            S::Init1,
            S::Init,
            S::CookieSent,
            S::CookieReplied,
            S::CookieWait,
            S::Cookie,
            S::CookieEchoed,
            S::Established,
            S::ShutdownSent,
            S::ShutdownReceived,
            S::ShutdownAckSent,
            S::Rejected,
            S::Closed,
        ],
        // ab
        [
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Rejected,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
            S::Closed,
        ],
    ],
];

/// State timeouts, defaulting to the kernel's (`tcp_timeouts`, `udp_timeouts`,
/// `sctp_timeouts`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Timeouts {
    /// Per TCP state, indexed by `TcpState as usize`.
    pub tcp: [Duration; 11],
    /// The single UDP state.
    pub udp: Duration,
    /// Per SCTP state, indexed by `SctpState as usize`.
    pub sctp: [Duration; 14],
    /// A brand-new connection before its first state transition.
    pub new_conn: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            tcp: [
                s(2),
                s(900),
                s(120),
                s(60),
                s(120),
                s(120),
                s(10),
                s(60),
                s(30),
                s(120),
                s(120),
            ],
            udp: s(300),
            sctp: [
                s(2),
                s(4),
                s(61),
                s(61),
                s(61),
                s(61),
                s(61),
                s(61),
                s(900),
                s(61),
                s(61),
                s(61),
                s(4),
                s(61),
            ],
            new_conn: s(3),
        }
    }
}

impl Timeouts {
    /// Timeout of a TCP state.
    #[must_use]
    pub const fn tcp(&self, s: TcpState) -> Duration {
        self.tcp[s as usize]
    }

    /// Timeout of an SCTP state.
    #[must_use]
    pub const fn sctp(&self, s: SctpState) -> Duration {
        self.sctp[s as usize]
    }

    /// `ipvsadm --set tcp tcpfin udp`: sets ESTABLISHED, FIN_WAIT and UDP; a zero leaves
    /// that value unchanged.
    pub fn set(&mut self, tcp: Duration, tcpfin: Duration, udp: Duration) {
        if !tcp.is_zero() {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if !tcpfin.is_zero() {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if !udp.is_zero() {
            self.udp = udp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::{Input, InputOnly, Output};
    use super::*;

    /// The Director's shortcut for established TCP connections rests on this.
    #[test]
    fn tcp_states_stay_established() {
        use crate::wire::tcp::flags as f;
        for dir in [Direction::Input, Direction::Output, Direction::InputOnly] {
            for secure in [false, true] {
                for extra in [0, f::PSH, f::URG, f::PSH | f::URG, 0x40, 0x80] {
                    assert_eq!(
                        TcpState::Established.next(dir, f::ACK | extra, secure),
                        TcpState::Established,
                        "{dir:?} secure {secure} flags {extra:#x}"
                    );
                }
            }
        }
    }
    use crate::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};

    fn walk(start: TcpState, steps: &[(Direction, u8)], secure: bool) -> Vec<TcpState> {
        let mut s = start;
        steps
            .iter()
            .map(|&(d, f)| {
                s = s.next(d, f, secure);
                s
            })
            .collect()
    }

    #[test]
    fn nat_handshake_data_and_close() {
        // Client SYN, server SYN-ACK, client ACK, data, client FIN, server FIN-ACK, client ACK.
        let got = walk(
            TcpState::None,
            &[
                (Input, SYN),
                (Output, SYN | ACK),
                (Input, ACK),
                (Input, ACK | PSH),
                (Input, FIN | ACK),
                (Output, FIN | ACK),
                (Input, ACK),
            ],
            false,
        );
        use TcpState::*;
        assert_eq!(
            got,
            [
                SynRecv,
                SynRecv,
                Established,
                Established,
                CloseWait,
                TimeWait,
                TimeWait
            ]
        );
    }

    #[test]
    fn direct_routing_sees_input_only() {
        use TcpState::*;
        let got = walk(
            None,
            &[
                (InputOnly, SYN),
                (InputOnly, ACK),
                (InputOnly, FIN | ACK),
                (InputOnly, ACK),
            ],
            false,
        );
        assert_eq!(got, [SynRecv, Established, FinWait, FinWait]);
        assert_eq!(Established.next(InputOnly, RST, false), Close);
    }

    #[test]
    fn secure_tcp_holds_half_open_connections() {
        use TcpState::*;
        // With secure_tcp a bare ACK does not establish a SYN_RECV connection.
        assert_eq!(SynRecv.next(Input, ACK, false), Established);
        assert_eq!(SynRecv.next(Input, ACK, true), SynRecv);
        assert_eq!(None.next(InputOnly, SYN, true), SynAck);
        assert_eq!(SynAck.next(Input, ACK, true), SynAck);
        // No flags at all: CLOSE, whatever the table.
        assert_eq!(Established.next(Input, 0, false), Close);
        assert_eq!(Established.next(Input, PSH, true), Close);
    }

    #[test]
    fn table_spot_checks_against_the_reference() {
        use TcpState::*;
        // Every row of the normal table, column ESTABLISHED (second column).
        let rows = [
            (Input, SYN, Established),
            (Input, FIN, CloseWait),
            (Input, ACK, Established),
            (Input, RST, Close),
            (Output, SYN, Established),
            (Output, FIN, FinWait),
            (Output, ACK, Established),
            (Output, RST, Close),
            (InputOnly, SYN, Established),
            (InputOnly, FIN, FinWait),
            (InputOnly, ACK, Established),
            (InputOnly, RST, Close),
        ];
        for (d, f, want) in rows {
            assert_eq!(Established.next(d, f, false), want, "{d:?} {f:#x}");
        }
        // RST wins over SYN; SYN+ACK is a syn event.
        assert_eq!(None.next(Input, SYN | RST, false), Close);
        assert_eq!(None.next(Output, SYN | ACK, false), SynSent);
        assert_eq!(LastAck.next(Input, RST, false), LastAck);
        assert_eq!(Listen.next(Output, ACK, false), Established);
        assert_eq!(TcpState::ALL.iter().filter(|s| s.is_active()).count(), 4);
        assert!(SynRecv.is_active() && !FinWait.is_active() && !None.is_active());
    }

    #[test]
    fn default_timeouts_and_set() {
        let mut t = Timeouts::default();
        assert_eq!(t.tcp(TcpState::Established), Duration::from_secs(900));
        assert_eq!(t.tcp(TcpState::SynRecv), Duration::from_secs(60));
        assert_eq!(t.tcp(TcpState::TimeWait), Duration::from_secs(120));
        assert_eq!(t.tcp(TcpState::Close), Duration::from_secs(10));
        assert_eq!(t.tcp(TcpState::LastAck), Duration::from_secs(30));
        assert_eq!(t.udp, Duration::from_secs(300));
        assert_eq!(t.sctp(SctpState::Established), Duration::from_secs(900));
        assert_eq!(t.sctp(SctpState::Rejected), Duration::from_secs(4));
        t.set(
            Duration::from_secs(7200),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert_eq!(t.tcp(TcpState::Established), Duration::from_secs(7200));
        assert_eq!(
            t.tcp(TcpState::FinWait),
            Duration::from_secs(120),
            "0 leaves it unchanged"
        );
        assert_eq!(t.udp, Duration::from_secs(60));
    }

    #[test]
    fn sctp_association_walk() {
        use SctpState::*;
        let chunk = |ty: u8| [ty, 0, 0, 4];
        let mut s = None;
        let mut seen = Vec::new();
        for (d, ty) in [
            (Input, 1),
            (Output, 2),
            (Input, 10),
            (Output, 11),
            (Input, 0),
            (Input, 7),
            (Output, 8),
            (Input, 14),
        ] {
            s = s.next(d, &chunk(ty));
            seen.push(s);
        }
        assert_eq!(
            seen,
            [
                Init1,
                CookieSent,
                CookieReplied,
                Established,
                Established,
                ShutdownReceived,
                ShutdownAckSent,
                Closed
            ]
        );
        // COOKIE_ECHO bundled with a following ABORT counts as ABORT.
        let bundled = [10, 0, 0, 5, 0xaa, 0, 0, 0, 6, 0, 0, 4];
        assert_eq!(CookieWait.next(Input, &bundled), Rejected);
        assert_eq!(CookieWait.next(Input, &chunk(10)), CookieWait);
        // Unknown chunk types are DATA.
        assert_eq!(None.next(Input, &chunk(200)), Established);
        assert_eq!(SctpState::ALL.iter().filter(|s| s.is_active()).count(), 1);
    }
}
