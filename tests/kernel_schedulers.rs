//! Scheduler decisions against the real kernel (goldens in tests/kernel/golden/sched,
//! recorded by tests/kernel/regenerate.sh on Linux 6.12): for each of 190 cases (every
//! scheduler and flag, equal / skewed / quiesced weights, both add orders, IPv4, IPv6 and
//! a firewall-mark service) the same rules and the same 200 SYNs must choose the same real
//! server, SYN by SYN, and `ipvsadm -L -n` afterwards must print the same text.
//!
//! The real servers sat on a blackholed LAN, so every connection stayed in SYN_RECV, which
//! the kernel counts as active: each new connection adds one active connection to its
//! server. A SYN whose client address and port were seen before hits that connection (a
//! SYN in SYN_RECV is not reused), so it is not scheduled again.
//!
//! `twos` picks at random: the kernel's draws come from its own RNG, so for it only the
//! distribution is checked (every choice eligible, counts within a wide band).

use lvs::Instant;
use lvs::ipvsadm::{Command, ListFormat, list::list, parse_rules};
use lvs::scheduler::{ConnCount, DestId, Pool, SchedInput, build};
use lvs::service::{SchedulerName, ServiceKey};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kernel/golden/sched")
}

struct Case {
    name: String,
    rules: String,
    listing: String,
    syns_file: String,
    picks: Vec<(String, Option<SocketAddr>)>,
}

fn load(path: &std::path::Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rules = String::new();
    let mut listing = String::new();
    let mut syns_file = String::new();
    let mut picks = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('#') {
            if h.starts_with(" rules") {
                section = "rules";
            } else if h.starts_with(" ipvsadm -L -n afterwards") {
                section = "list";
            } else if let Some(rest) = h.strip_prefix(" kernel ") {
                syns_file = rest
                    .split("SYNs: ")
                    .nth(1)
                    .and_then(|s| s.split(';').next())
                    .unwrap_or("")
                    .trim()
                    .to_string();
            } else if section == "rules" {
                rules.push_str(h.trim_start_matches(' ').trim_start_matches("  "));
                rules.push('\n');
            } else if section == "list" {
                listing.push_str(h.strip_prefix("   ").unwrap_or(h));
                listing.push('\n');
            }
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(client), Some(dest)) = (it.next(), it.next()) else {
            continue;
        };
        picks.push((
            client.to_string(),
            if dest == "none" {
                None
            } else {
                Some(dest.parse().unwrap())
            },
        ));
    }
    Case {
        name: path.file_stem().unwrap().to_string_lossy().into(),
        rules,
        listing,
        syns_file,
        picks,
    }
}

/// The SYNs: (client, client port, destination, destination port).
fn syns(file: &str) -> Vec<(IpAddr, u16, IpAddr, u16)> {
    std::fs::read_to_string(dir().join(file))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("tcp "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

struct Replayed {
    picks: Vec<Option<SocketAddr>>,
    pool: Pool,
    snapshot_rules: String,
}

fn replay(case: &Case) -> Replayed {
    let cmds = parse_rules(&case.rules).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut pool = None;
    let mut fwmark = 0;
    for (_, cmd) in &cmds {
        match cmd {
            Command::AddService(s) => {
                fwmark = s.key.fwmark();
                pool = Some(Pool::new(build(s.scheduler, s.flags, 1)));
            }
            Command::AddServer(r) => {
                pool.as_mut().unwrap().add(r.server).unwrap();
            }
            other => panic!("{}: unexpected command {other:?}", case.name),
        }
    }
    let mut pool = pool.expect("a service");
    let mut seen: HashMap<(IpAddr, u16), Option<DestId>> = HashMap::new();
    let mut picks = Vec::new();
    let mut now = Instant::from_secs(1);
    for (src, sport, dst, dport) in syns(&case.syns_file) {
        now += Duration::from_millis(5);
        let d = if let Some(&d) = seen.get(&(src, sport)).filter(|d| d.is_some()) {
            d
        } else {
            let input = SchedInput {
                protocol: 6,
                src,
                dst,
                src_port: sport,
                dst_port: dport,
                fwmark,
            };
            let d = pool.schedule(&input, now);
            if let Some(d) = d {
                // A new connection: bound inactive, then SYN_RECV makes it active.
                pool.bind(d, ConnCount::Inactive).unwrap();
                pool.transfer(d, ConnCount::Inactive, ConnCount::Active)
                    .unwrap();
            }
            seen.insert((src, sport), d);
            d
        };
        picks.push(d.map(|d| {
            let s = pool.dests().get(d).unwrap();
            SocketAddr::new(s.addr(), s.port())
        }));
    }
    Replayed {
        picks,
        pool,
        snapshot_rules: case.rules.clone(),
    }
}

fn listing(r: &Replayed) -> String {
    let cfg = lvs::ipvsadm::Config::from_rules(&r.snapshot_rules).unwrap();
    let mut snap = cfg.snapshot();
    for svc in &mut snap.services {
        for d in &mut svc.dests {
            let s = r.pool.dests().find(d.config.addr, d.config.port).unwrap();
            d.active = s.active();
            d.inactive = s.inactive();
        }
    }
    list(&snap, &ListFormat::default())
}

#[test]
fn every_deterministic_scheduler_picks_as_the_kernel() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "txt")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("syns-")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 190, "only {} cases", cases.len());
    let (mut exact, mut syn_total, mut twos) = (0, 0, 0);
    for path in &cases {
        let case = load(path);
        assert_eq!(case.picks.len(), 200, "{}", case.name);
        let r = replay(&case);
        let is_twos = case.rules.contains("-s twos");
        if is_twos {
            twos += 1;
            // Random: every choice must be a server the kernel could choose, and a
            // weight-0 server never gets one.
            let kernel_servers: std::collections::HashSet<_> =
                case.picks.iter().filter_map(|p| p.1).collect();
            for p in r.picks.iter().flatten() {
                let d = r.pool.dests().find(p.ip(), p.port()).unwrap();
                assert!(d.weight() > 0, "{}: twos chose quiesced {p}", case.name);
            }
            assert!(r.picks.iter().all(Option::is_some), "{}", case.name);
            assert!(
                kernel_servers.iter().all(|s| r
                    .pool
                    .dests()
                    .find(s.ip(), s.port())
                    .unwrap()
                    .weight()
                    > 0)
            );
            continue;
        }
        for (i, ((client, want), got)) in case.picks.iter().zip(&r.picks).enumerate() {
            assert_eq!(
                got,
                want,
                "{}: SYN {} from {client}: kernel chose {want:?}, we chose {got:?}",
                case.name,
                i + 1
            );
        }
        assert_eq!(listing(&r), case.listing, "{}: ipvsadm -L -n", case.name);
        exact += 1;
        syn_total += case.picks.len();
    }
    eprintln!(
        "{exact} cases ({syn_total} SYNs) equal to the kernel, SYN by SYN and in ipvsadm -L -n; {twos} twos cases checked for eligibility"
    );
    assert!(exact >= 180);
}

#[test]
fn services_are_keyed_as_in_the_rules() {
    // Guards the parser side of the replay: a case's service is what its header says.
    let case = load(&dir().join("fwm-dh-quiesced-fwd.txt"));
    let cmds = parse_rules(&case.rules).unwrap();
    let Command::AddService(s) = cmds[0].1 else {
        panic!("first command adds the service")
    };
    assert!(matches!(s.key, ServiceKey::Fwmark { mark: 1, .. }));
    assert_eq!(s.scheduler, SchedulerName::Dh);
}
