//! Real-server churn scripts: changes applied when the replay clock passes their time.
//!
//! One change per line; `#` starts a comment, blank lines are skipped:
//!
//! ```text
//! 2.5   remove 10.200.0.2:80
//! 3.0   add    10.200.0.4:80 weight 2          # weight defaults to 1
//! 3.0   add    10.200.0.5:80 weight 1 method dr # method defaults to the service's first server's
//! 4.0   weight 10.200.0.1:80 0                 # 0 quiesces
//! @1700000005.25 remove 10.200.0.3:80 on 10.10.10.10:80
//! ```
//!
//! A time is seconds after the first packet of the capture, or with `@` absolute seconds
//! since the Unix epoch (the capture's clock). Times must not decrease. A change applies to
//! every service that has the server (`remove`, `weight`), or for `add` to every service
//! of the server's address family; `on VIP:PORT` restricts it to that service address.

use crate::config::Method;
use std::fmt;
use std::net::SocketAddr;

/// When a change happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    /// Seconds after the first packet.
    Relative(f64),
    /// Seconds since the epoch.
    Absolute(f64),
}

impl At {
    /// The time in microseconds since the epoch, given the first packet's.
    #[must_use]
    pub fn micros(self, first_packet: i64) -> i64 {
        match self {
            Self::Relative(s) => first_packet.saturating_add((s * 1e6).round() as i64),
            Self::Absolute(s) => (s * 1e6).round() as i64,
        }
    }
}

/// What changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Add a server.
    Add {
        /// Weight.
        weight: u32,
        /// Forwarding method (`None`: as the service's first server).
        method: Option<Method>,
    },
    /// Remove a server.
    Remove,
    /// Change a server's weight.
    Weight(u32),
}

/// One line of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// 1-based line number.
    pub line: usize,
    /// When.
    pub at: At,
    /// What.
    pub op: Op,
    /// Which real server.
    pub server: SocketAddr,
    /// Restricted to the service with this address, if given.
    pub on: Option<SocketAddr>,
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChurnErrorKind {
    /// Not a number of seconds.
    BadTime(String),
    /// Earlier than the previous line.
    TimeGoesBack,
    /// Not `add`, `remove` or `weight`.
    UnknownOp(String),
    /// A word is missing.
    Missing(&'static str),
    /// Not `ADDR:PORT` (`[v6]:port`).
    BadAddress(String),
    /// Not a weight 0..=65535.
    BadWeight(String),
    /// Not a forwarding method.
    BadMethod(String),
    /// Words after the end of the change.
    Unexpected(String),
}

/// A script error: the line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnError {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub kind: ChurnErrorKind,
}

impl fmt::Display for ChurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "churn script line {}: ", self.line)?;
        match &self.kind {
            ChurnErrorKind::BadTime(w) => write!(f, "bad time {w:?} (seconds, or @epoch-seconds)"),
            ChurnErrorKind::TimeGoesBack => f.write_str("time earlier than the previous line's"),
            ChurnErrorKind::UnknownOp(w) => write!(f, "unknown change {w:?} (add, remove, weight)"),
            ChurnErrorKind::Missing(w) => write!(f, "missing {w}"),
            ChurnErrorKind::BadAddress(w) => write!(f, "bad address {w:?} (ADDR:PORT)"),
            ChurnErrorKind::BadWeight(w) => write!(f, "bad weight {w:?} (0..65535)"),
            ChurnErrorKind::BadMethod(w) => write!(f, "bad method {w:?} (nat dr ipip gue gre)"),
            ChurnErrorKind::Unexpected(w) => write!(f, "unexpected {w:?}"),
        }
    }
}

impl std::error::Error for ChurnError {}

fn weight(w: &str) -> Result<u32, ChurnErrorKind> {
    w.parse::<u32>()
        .ok()
        .filter(|w| *w <= 65_535)
        .ok_or_else(|| ChurnErrorKind::BadWeight(w.to_owned()))
}

fn addr(w: &str) -> Result<SocketAddr, ChurnErrorKind> {
    w.parse()
        .map_err(|_| ChurnErrorKind::BadAddress(w.to_owned()))
}

fn method(w: &str) -> Result<Method, ChurnErrorKind> {
    Method::ALL
        .into_iter()
        .find(|m| m.name() == w)
        .ok_or_else(|| ChurnErrorKind::BadMethod(w.to_owned()))
}

fn seconds(w: &str) -> Result<At, ChurnErrorKind> {
    let (abs, num) = match w.strip_prefix('@') {
        Some(n) => (true, n),
        None => (false, w),
    };
    let s: f64 = num
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e12)
        .ok_or_else(|| ChurnErrorKind::BadTime(w.to_owned()))?;
    Ok(if abs {
        At::Absolute(s)
    } else {
        At::Relative(s)
    })
}

fn parse_line(words: &[&str]) -> Result<(At, Op, SocketAddr, Option<SocketAddr>), ChurnErrorKind> {
    let mut it = words.iter().copied();
    let at = seconds(it.next().ok_or(ChurnErrorKind::Missing("time"))?)?;
    let op_word = it.next().ok_or(ChurnErrorKind::Missing("change"))?;
    let server = addr(
        it.next()
            .ok_or(ChurnErrorKind::Missing("server ADDR:PORT"))?,
    )?;
    let mut op = match op_word {
        "add" => Op::Add {
            weight: 1,
            method: None,
        },
        "remove" => Op::Remove,
        "weight" => Op::Weight(weight(it.next().ok_or(ChurnErrorKind::Missing("weight"))?)?),
        w => return Err(ChurnErrorKind::UnknownOp(w.to_owned())),
    };
    let mut on = None;
    while let Some(w) = it.next() {
        match (w, &mut op) {
            ("weight", Op::Add { weight: wt, .. }) => {
                *wt = weight(it.next().ok_or(ChurnErrorKind::Missing("weight"))?)?;
            }
            ("method", Op::Add { method: m, .. }) => {
                *m = Some(method(it.next().ok_or(ChurnErrorKind::Missing("method"))?)?);
            }
            ("on", _) => {
                on = Some(addr(
                    it.next()
                        .ok_or(ChurnErrorKind::Missing("service VIP:PORT"))?,
                )?);
            }
            (w, _) => return Err(ChurnErrorKind::Unexpected(w.to_owned())),
        }
    }
    Ok((at, op, server, on))
}

/// Parses a churn script.
///
/// # Errors
/// The first bad line, as a [`ChurnError`] with its line number.
pub fn parse(text: &str) -> Result<Vec<Change>, ChurnError> {
    let mut out: Vec<Change> = Vec::new();
    let mut last: Option<At> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let body = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = body.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let (at, op, server, on) = parse_line(&words).map_err(|kind| ChurnError { line, kind })?;
        // Times of one kind must not decrease (relative and absolute are compared once
        // the first packet is known).
        if let Some(prev) = last {
            let back = match (prev, at) {
                (At::Relative(a), At::Relative(b)) | (At::Absolute(a), At::Absolute(b)) => b < a,
                _ => false,
            };
            if back {
                return Err(ChurnError {
                    line,
                    kind: ChurnErrorKind::TimeGoesBack,
                });
            }
        }
        last = Some(at);
        out.push(Change {
            line,
            at,
            op,
            server,
            on,
        });
    }
    Ok(out)
}
