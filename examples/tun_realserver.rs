//! The real-server side of LVS tunnel mode, in user space: receives IPIP and GUE packets
//! from the director, removes the encapsulation with [`lvs::forward::tunnel::decapsulate`]
//! and writes the inner packet into a TUN device, so the local stack (which has the
//! virtual address configured, e.g. on `lo`) answers it. Replies go straight to the client
//! with the virtual address as source: tunnel mode is one-way.
//!
//! ```text
//! tun_realserver [--dev NAME] [--ipip] [--gue-port PORT]... [--stats-interval SECS]
//! ```
//!
//! No `ipip` or `fou` kernel module is needed. IPIP arrives on a raw IPv4 socket of
//! protocol 4; GUE on a raw IPv4 socket of protocol UDP (which, unlike a UDP socket, hands
//! over the outer IP and UDP headers that `decapsulate` verifies), while an ordinary UDP
//! socket bound to each GUE port keeps the kernel from answering "port unreachable".
//! IPv4 outer headers only (a raw IPv6 socket does not deliver the IPv6 header). Set
//! `rp_filter` to 0 on the TUN device: the inner packets' sources are routed elsewhere.

use std::error::Error;
use std::io::Read;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use lvs::PacketBuf;
use lvs::forward::tunnel::{TunnelKind, decapsulate};
use socket2::{Domain, Protocol, Socket, Type};
use tun_rs::{DeviceBuilder, SyncDevice};

const USAGE: &str =
    "usage: tun_realserver [--dev NAME] [--ipip] [--gue-port PORT]... [--stats-interval SECS]";

#[derive(Debug, PartialEq)]
struct Args {
    dev: String,
    ipip: bool,
    gue_ports: Vec<u16>,
    stats_interval: Duration,
}

impl Args {
    fn parse(argv: &[String]) -> Result<Self, String> {
        let mut a = Self {
            dev: "tunr".into(),
            ipip: false,
            gue_ports: Vec::new(),
            stats_interval: Duration::from_secs(5),
        };
        let mut it = argv.iter();
        while let Some(opt) = it.next() {
            if opt == "--ipip" {
                a.ipip = true;
                continue;
            }
            let val = it.next().ok_or_else(|| format!("{opt} needs a value"))?;
            match opt.as_str() {
                "--dev" => a.dev.clone_from(val),
                "--gue-port" => match val.parse::<u16>() {
                    Ok(p) if p != 0 => a.gue_ports.push(p),
                    _ => return Err(format!("--gue-port: bad port {val:?}")),
                },
                "--stats-interval" => {
                    let s: u64 = val
                        .parse()
                        .map_err(|_| format!("--stats-interval: bad number {val:?}"))?;
                    a.stats_interval = Duration::from_secs(s.max(1));
                }
                _ => return Err(format!("unknown option {opt}")),
            }
        }
        if !a.ipip && a.gue_ports.is_empty() {
            return Err("nothing to receive: give --ipip and/or --gue-port".into());
        }
        Ok(a)
    }
}

#[derive(Default)]
struct Counters {
    ipip: AtomicU64,
    gue: AtomicU64,
    refused: AtomicU64,
    send_errors: AtomicU64,
}

/// Receives on a raw socket and delivers what decapsulates.
fn receive(sock: &Socket, gue_ports: &[u16], dev: &SyncDevice, c: &Counters, label: &str) {
    let mut storage = vec![0u8; 65536];
    let mut reader = sock;
    loop {
        let n = match reader.read(&mut storage) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("tun_realserver: {label}: {e}");
                return;
            }
        };
        let Ok(mut buf) = PacketBuf::new(&mut storage[..], 0, n) else {
            continue;
        };
        match decapsulate(&mut buf, gue_ports) {
            Ok(d) => {
                let counter = match d.kind {
                    TunnelKind::Gue { .. } => &c.gue,
                    _ => &c.ipip,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if dev.send(buf.packet()).is_err() {
                    c.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Other UDP traffic on the GUE socket is none of our business.
            Err(lvs::RewriteError::NotEncapsulated) => {}
            Err(e) => {
                if c.refused.fetch_add(1, Ordering::Relaxed) < 20 {
                    eprintln!("tun_realserver: {label}: refused a packet: {e}");
                }
            }
        }
    }
}

fn run(a: Args) -> Result<(), Box<dyn Error>> {
    let dev = DeviceBuilder::new()
        .name(&a.dev)
        .enable(true)
        .build_sync()
        .map_err(|e| format!("creating {}: {e}", a.dev))?;
    let dev = Arc::new(dev);
    let counters = Arc::new(Counters::default());
    let mut sockets = Vec::new();
    if a.ipip {
        sockets.push((
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(4)))?,
            "ipip",
        ));
    }
    // Bound UDP sockets keep the GUE ports open; what reaches them is read and discarded
    // (the raw socket below has the same datagrams with their headers).
    for &p in &a.gue_ports {
        let u = UdpSocket::bind(("0.0.0.0", p)).map_err(|e| format!("UDP port {p}: {e}"))?;
        thread::spawn(move || {
            let mut b = [0u8; 2048];
            while u.recv(&mut b).is_ok() {}
        });
    }
    if !a.gue_ports.is_empty() {
        sockets.push((
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))?,
            "gue",
        ));
    }
    let mut workers = Vec::new();
    for (sock, label) in sockets {
        let (dev, c, ports) = (Arc::clone(&dev), Arc::clone(&counters), a.gue_ports.clone());
        workers.push(thread::spawn(move || {
            receive(&sock, &ports, &dev, &c, label);
        }));
    }
    println!(
        "tun_realserver: ready on {} (ipip {}, gue ports {:?})",
        a.dev, a.ipip, a.gue_ports
    );
    let mut last = (0, 0, 0);
    while !workers.iter().all(thread::JoinHandle::is_finished) {
        thread::sleep(a.stats_interval);
        let now = (
            counters.ipip.load(Ordering::Relaxed),
            counters.gue.load(Ordering::Relaxed),
            counters.refused.load(Ordering::Relaxed),
        );
        if now != last {
            println!(
                "tun_realserver: decapsulated ipip {} gue {}, refused {}, send errors {}",
                now.0,
                now.1,
                now.2,
                counters.send_errors.load(Ordering::Relaxed)
            );
            last = now;
        }
    }
    Err("every receiver stopped".into())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match Args::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tun_realserver: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tun_realserver: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        Args::parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn options() {
        let a = args("--ipip --gue-port 6080 --dev t").unwrap();
        assert_eq!(
            (a.ipip, a.gue_ports, a.dev.as_str()),
            (true, vec![6080], "t")
        );
        for bad in [
            "",
            "--gue-port 0",
            "--gue-port x",
            "--ipip --what 1",
            "--dev",
        ] {
            assert!(args(bad).is_err(), "{bad:?} accepted");
        }
    }
}
