//! Listing tests. The expected texts were produced by applying ipvsadm 1.31's printf
//! formats (quoted next to each use below) to the same data with a C-compatible
//! formatter (Python's `%` operator), independently of the Rust printers:
//!
//! - version: `"IP Virtual Server version %d.%d.%d (size=%d)\n"`
//! - service: `"%-4s %s"` (cut at 33 for IPv4) / `"FWM  %u"` / `"FWM  %u IPv6"`, then
//!   `"%s %s"`, `" (%s)"`, `" persistent %u"`, `" mask %s"` / `" mask %i"`, `" pe %s"`,
//!   `" ops"`; with `--stats`/`--rate`: `"%-33s"` + 5 × `print_largenum`
//! - dest: `"  -> %-28s %-7s %-6d %-10u %-10u\n"`; `--tun-info`:
//!   `"  -> %-28s %-7s %-13s %-6d %-10u %-10u\n"`; `--thresholds`:
//!   `"  -> %-28s %-10u %-10u %-10u %-10u\n"`; `--persistent-conn`:
//!   `"  -> %-28s %-9u %-11u %-10u %-10u\n"`; `--stats`: `"  -> %-28s"` + 5 ×
//!   `print_largenum`; `--rate`: `"  -> %-28s %8llu %8llu %8llu"` + 2 × `print_largenum`
//! - `print_largenum`: `"%9llu"` / `"%8lluK"` / `"%8lluM"` / `"%8lluG"` / `"%8lluT"`,
//!   `--exact`: `"%*llu"` with width `len <= 8 ? 9 : len + 1`
//! - titles: `"%-33s %8s %8s %8s %8s %8s\n"`, `"%-33s %-10s %-10s %-10s %-10s\n"`,
//!   `"%-33s %-9s %-11s %-10s %-10s\n"` + `"  -> RemoteAddress:Port\n"`
//! - `--timeout`: `"Timeout (tcp tcpfin udp): %d %d %d\n"`
//! - `-c`: `"pro expire %-11s %-18s %-18s %s\n"`, lines `"%-3s %-6s %-11s %-18s %-18s %s\n"`
//!   with `"%02d:%02d"`; `--persistent-conn`: `"pro expire %-11s %-18s %-18s %-18s %-16s
//!   %s\n"`, lines `"%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n"`.

use super::list::{
    self, ConnState, ConnView, Counters, DestView, ListFormat, Rates, ServiceView, Snapshot,
};
use super::rules::{
    Netmask, PersistenceEngine, SchedFlags, SchedulerName, ServiceConfig, ServiceKey,
};
use super::{Protocol, save};
use crate::conn_table::{SctpState, TcpState, Timeouts};
use crate::forward::tunnel::{GueChecksum, TunnelKind};
use crate::scheduler::dest::{ForwardMethod, RealServerConfig};
use crate::wire::Family;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

include!("list_expected.rs");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const fn stats(v: [u64; 5]) -> Counters {
    Counters {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
    }
}

const fn rates(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        inpps: v[1],
        outpps: v[2],
        inbps: v[3],
        outbps: v[4],
    }
}

fn dest(addr: &str, port: u16, fwd: ForwardMethod, weight: u32) -> DestView {
    DestView::new(
        RealServerConfig::new(ip(addr), port)
            .weight(weight)
            .forward(fwd),
    )
}

/// The services of the oracle, in an unsorted (kernel-like) order with servers newest
/// first.
fn snapshot() -> Snapshot {
    let tcp80 = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("10.0.0.100"),
        port: 80,
    };
    let mut s1 = ServiceView::new(ServiceConfig::new(tcp80));
    s1.stats = stats([12, 34, 56, 78, 90]);
    s1.rates = rates([1, 2, 3, 4, 5]);
    let mut d2 = dest("192.168.1.2", 80, ForwardMethod::DirectRoute, 2);
    d2.active = 3;
    d2.inactive = 17;
    d2.persistent = 5;
    d2.config.u_threshold = 100;
    d2.config.l_threshold = 10;
    d2.stats = stats([7, 8, 9, 10, 11]);
    d2.rates = rates([123_456_789, 1, 2, 300_000_000, 5]);
    let mut d1 = dest("192.168.1.1", 80, ForwardMethod::Nat, 1);
    d1.stats = stats([
        0,
        99_999_999,
        100_000_000,
        1_234_567_890,
        123_456_789_012_345,
    ]);
    d1.rates = rates([0, 1, 2, 3, 4]);
    s1.dests = vec![d2, d1];

    let mut c2 = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip("10.0.0.100"),
        port: 53,
    });
    c2.scheduler = SchedulerName::Sh;
    c2.flags = SchedFlags::FLAG_1.union(SchedFlags::FLAG_2);
    c2.persistence = Some(360);
    c2.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
    c2.one_packet = true;
    let s2 = ServiceView::new(c2);

    let mut c3 = ServiceConfig::new(ServiceKey::Fwmark {
        mark: 7,
        family: Family::V4,
    });
    c3.scheduler = SchedulerName::Rr;
    let mut s3 = ServiceView::new(c3);
    s3.dests = vec![
        dest(
            "2001:db8::7",
            0,
            ForwardMethod::Tunnel(TunnelKind::Gre {
                checksum: false,
                key: None,
            }),
            1,
        ),
        dest(
            "192.168.1.4",
            0,
            ForwardMethod::Tunnel(TunnelKind::Gue {
                port: 6080,
                checksum: GueChecksum::Csum,
            }),
            1,
        ),
        dest("192.168.1.3", 0, ForwardMethod::Tunnel(TunnelKind::Ipip), 1),
    ];

    let mut c4 = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("2001:db8::1"),
        port: 443,
    });
    c4.scheduler = SchedulerName::Mh;
    c4.flags = SchedFlags::FLAG_2;
    c4.persistence = Some(60);
    c4.netmask = Netmask::V6(64);
    c4.pe = Some(PersistenceEngine::Sip);
    let mut s4 = ServiceView::new(c4);
    let mut d4 = dest("2001:db8::2", 443, ForwardMethod::Local, 65535);
    d4.active = 1;
    d4.inactive = 2;
    d4.persistent = 3;
    s4.dests = vec![d4];

    let mut c5 = ServiceConfig::new(ServiceKey::Fwmark {
        mark: 9,
        family: Family::V6,
    });
    c5.scheduler = SchedulerName::Lc;
    c5.flags = SchedFlags::FLAG_1.union(SchedFlags::FLAG_3);
    let s5 = ServiceView::new(c5);

    let conn = |protocol, secs: u64, state, c: &str, v: &str, d: &str| ConnView {
        protocol,
        state,
        expires_in: Duration::from_millis(secs * 1000 + 999),
        client: sa(c),
        virtual_: sa(v),
        dest: sa(d),
        pe: None,
    };
    let mut sip = conn(
        17,
        300,
        ConnState::Template { assured: true },
        "10.1.1.1:0",
        "10.0.0.100:5060",
        "192.168.1.1:5060",
    );
    sip.pe = Some(("sip".to_owned(), "abc@host".to_owned()));
    Snapshot {
        conn_tab_size: 4096,
        services: vec![s5, s3, s4, s2, s1],
        timeouts: Timeouts::default(),
        conns: vec![
            conn(
                6,
                899,
                ConnState::Tcp(TcpState::Established),
                "10.1.1.1:40000",
                "10.0.0.100:80",
                "192.168.1.1:80",
            ),
            conn(
                17,
                59,
                ConnState::Udp,
                "[2001:db8::99]:53000",
                "[2001:db8::1]:53",
                "[2001:db8::2]:53",
            ),
            conn(
                0,
                6000,
                ConnState::Template { assured: false },
                "10.1.1.0:0",
                "0.0.0.7:0",
                "192.168.1.3:0",
            ),
            sip,
            conn(
                132,
                3,
                ConnState::Sctp(SctpState::ShutdownAckSent),
                "10.1.1.1:1",
                "10.0.0.100:2",
                "192.168.1.1:2",
            ),
        ],
    }
}

fn fmt() -> ListFormat {
    ListFormat::default()
}

#[test]
fn plain() {
    assert_eq!(list::list(&snapshot(), &fmt()), PLAIN);
}

#[test]
fn tun_info() {
    let f = ListFormat {
        tun_info: true,
        ..fmt()
    };
    assert_eq!(list::list(&snapshot(), &f), TUN_INFO);
}

#[test]
fn stats_and_rates() {
    let f = ListFormat {
        stats: true,
        ..fmt()
    };
    assert_eq!(list::list(&snapshot(), &f), STATS);
    let f = ListFormat {
        stats: true,
        exact: true,
        ..fmt()
    };
    assert_eq!(list::list(&snapshot(), &f), STATS_EXACT);
    let f = ListFormat {
        rate: true,
        ..fmt()
    };
    assert_eq!(list::list(&snapshot(), &f), RATE);
    // --stats wins over --rate, as in print_title / print_service_entry.
    let f = ListFormat {
        rate: true,
        stats: true,
        ..fmt()
    };
    assert_eq!(list::list(&snapshot(), &f), STATS);
}

#[test]
fn thresholds_and_persistent_conn() {
    let f = ListFormat {
        thresholds: true,
        ..fmt()
    };
    assert_eq!(list::list(&snapshot(), &f), THRESHOLDS);
    let f = ListFormat {
        persistent_conn: true,
        ..fmt()
    };
    assert_eq!(list::list(&snapshot(), &f), PERSISTENT_CONN);
}

#[test]
fn timeout_and_conns() {
    assert_eq!(list::list_timeout(&Timeouts::default()), TIMEOUT);
    assert_eq!(list::list_conns(&snapshot(), false), CONNS);
    assert_eq!(list::list_conns(&snapshot(), true), CONNS_PE);
}

#[test]
fn nosort_and_single_service() {
    let snap = snapshot();
    let f = ListFormat {
        nosort: true,
        ..fmt()
    };
    let out = list::list(&snap, &f);
    let services: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("TCP") || l.starts_with("UDP") || l.starts_with("FWM"))
        .collect();
    assert_eq!(
        services,
        [
            "FWM  9 IPv6 lc (flag-1,flag-3)",
            "FWM  7 rr",
            "TCP  [2001:db8::1]:443 mh (mh-port) persistent 60 mask 64 pe sip",
            "UDP  10.0.0.100:53 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0 ops",
            "TCP  10.0.0.100:80 wlc",
        ]
    );
    assert!(out.contains("  -> 192.168.1.2:80               Route   2      3          17        \n  -> 192.168.1.1:80"));
    // -L -n -t 10.0.0.100:80: title without the version line, then the service.
    let key = snap.services[4].config.key;
    let one = list::list_service(&snap, &key, &fmt()).unwrap();
    let want: String = PLAIN
        .lines()
        .skip(1)
        .take(5)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(one, want);
    assert!(
        list::list_service(
            &snap,
            &ServiceKey::Fwmark {
                mark: 1,
                family: Family::V4
            },
            &fmt()
        )
        .is_none()
    );
}

#[test]
fn largenum_boundaries() {
    let cases: [(u64, &str); 10] = [
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_000_000_000, "    1000M"),
        (99_999_999_999, "   99999M"),
        (100_000_000_000, "     100G"),
        (99_999_999_999_999, "   99999G"),
        (100_000_000_000_000, "     100T"),
        (u64::MAX, "18446744T"),
    ];
    for (n, want) in cases {
        let mut s = String::new();
        list::largenum(&mut s, n, false);
        assert_eq!(s, want, "{n}");
    }
    let mut s = String::new();
    list::largenum(&mut s, 123_456_789_012, true);
    assert_eq!(s, " 123456789012");
}

#[test]
fn save_of_snapshot() {
    // LOCALNODE prints as -g; the netmask only for persistent services.
    let out = save::save(&snapshot());
    assert_eq!(
        out,
        concat!(
            "-A -t 10.0.0.100:80 -s wlc\n",
            "-a -t 10.0.0.100:80 -r 192.168.1.1:80 -m -w 1\n",
            "-a -t 10.0.0.100:80 -r 192.168.1.2:80 -g -w 2\n",
            "-A -u 10.0.0.100:53 -s sh -p 360 -M 255.255.255.0 -o -b sh-fallback,sh-port\n",
            "-A -t [2001:db8::1]:443 -s mh -p 60 -M 64 --pe sip -b mh-port\n",
            "-a -t [2001:db8::1]:443 -r [2001:db8::2]:443 -g -w 65535\n",
            "-A -f 7 -s rr\n",
            "-a -f 7 -r 192.168.1.3:0 -i -w 1 --tun-type ipip\n",
            "-a -f 7 -r 192.168.1.4:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n",
            "-a -f 7 -r [2001:db8::7]:0 -i -w 1 --tun-type gre --tun-nocsum\n",
            "-A -f 9 -6 -s lc -b flag-1,flag-3\n",
        )
    );
}
