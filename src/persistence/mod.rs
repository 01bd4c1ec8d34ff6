//! Persistence: keeping a client (or a client network) on one real server across
//! connections, through templates in the connection table (`ip_vs_sched_persist`).
//!
//! A template is keyed `<protocol, client network, 0, vaddr, vport>` with the kernel's
//! special cases, points at the real server chosen for the first connection, and lives
//! for the service's persistence timeout after the last connection it controlled began.

pub use crate::service::Netmask;
use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

/// ipvsadm's default persistence timeout (`IPVS_SVC_PERSISTENT_TIMEOUT`, 6 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(360);
/// The longest persistence timeout ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2_678_400);
/// The FTP control port, which persistence treats specially.
pub const FTP_PORT: u16 = 21;

/// The identity of a template, as `ip_vs_sched_persist` builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// Protocol (0, `IPPROTO_IP`, for firewall-mark services).
    pub protocol: u8,
    /// Client network.
    pub cnet: IpAddr,
    /// Virtual address (for a firewall-mark service: the mark as an IPv4 address).
    pub vaddr: IpAddr,
    /// Virtual port (0 for FTP, firewall-mark and port-zero services).
    pub vport: u16,
    /// Real-server port the template records: the server's port only when the packet's
    /// port is the service port and that is not FTP, else 0.
    pub keep_dport: bool,
}

/// How a service is addressed, as far as persistence cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceIdentity {
    /// `<protocol, vaddr, vport>` (vport may be 0).
    Addr {
        /// Protocol.
        protocol: u8,
        /// Virtual address.
        vaddr: IpAddr,
        /// Virtual port.
        vport: u16,
    },
    /// A firewall mark.
    Fwmark(u32),
}

/// The template key for a packet from `client` to `vaddr:dport` of a service.
#[must_use]
pub fn template_key(
    svc: ServiceIdentity,
    netmask: Netmask,
    client: IpAddr,
    vaddr: IpAddr,
    dport: u16,
) -> TemplateKey {
    let cnet = netmask.apply(client);
    match svc {
        ServiceIdentity::Addr {
            protocol, vport, ..
        } if dport == vport && vport != 0 => TemplateKey {
            protocol,
            cnet,
            vaddr,
            vport: if vport == FTP_PORT { 0 } else { vport },
            keep_dport: vport != FTP_PORT,
        },
        ServiceIdentity::Addr { protocol, .. } => TemplateKey {
            protocol,
            cnet,
            vaddr,
            vport: 0,
            keep_dport: false,
        },
        ServiceIdentity::Fwmark(mark) => TemplateKey {
            protocol: 0,
            cnet,
            vaddr: IpAddr::V4(Ipv4Addr::from_bits(mark)),
            vport: 0,
            keep_dport: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn netmasks() {
        assert_eq!(
            Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)).apply(ip("198.51.100.77")),
            ip("198.51.100.0")
        );
        assert_eq!(
            Netmask::full(crate::wire::Family::V4).apply(ip("198.51.100.77")),
            ip("198.51.100.77")
        );
        assert_eq!(
            Netmask::V6(64).apply(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(Netmask::V6(128).apply(ip("2001:db8::6")), ip("2001:db8::6"));
        assert_eq!(Netmask::V6(0).apply(ip("2001:db8::6")), ip("::"));
    }

    #[test]
    fn keys_follow_the_kernel_rules() {
        let web = ServiceIdentity::Addr {
            protocol: 6,
            vaddr: ip("192.0.2.1"),
            vport: 443,
        };
        let m = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
        let k = template_key(web, m, ip("198.51.100.7"), ip("192.0.2.1"), 443);
        assert_eq!(
            (k.protocol, k.cnet, k.vport, k.keep_dport),
            (6, ip("198.51.100.0"), 443, true)
        );
        let ftp = ServiceIdentity::Addr {
            protocol: 6,
            vaddr: ip("192.0.2.1"),
            vport: 21,
        };
        let k = template_key(ftp, m, ip("198.51.100.7"), ip("192.0.2.1"), 21);
        assert_eq!(
            (k.vport, k.keep_dport),
            (0, false),
            "FTP control and data share one template"
        );
        let k = template_key(ftp, m, ip("198.51.100.7"), ip("192.0.2.1"), 2121);
        assert_eq!(
            (k.vport, k.keep_dport),
            (0, false),
            "passive data via the port >= 1024 rule"
        );
        let any = ServiceIdentity::Addr {
            protocol: 17,
            vaddr: ip("192.0.2.1"),
            vport: 0,
        };
        let k = template_key(any, m, ip("198.51.100.7"), ip("192.0.2.1"), 53);
        assert_eq!((k.vport, k.keep_dport), (0, false));
        let k = template_key(
            ServiceIdentity::Fwmark(7),
            m,
            ip("198.51.100.7"),
            ip("192.0.2.1"),
            80,
        );
        assert_eq!((k.protocol, k.vaddr, k.vport), (0, ip("0.0.0.7"), 0));
    }
}
