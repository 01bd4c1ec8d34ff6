//! `ipvsadm -S -n` (`ipvsadm-save -n`): the rule set as commands, byte for byte.
//!
//! Services are sorted by libipvs's `ipvs_cmp_services` and servers by `ipvs_cmp_dests`
//! (both always: `-S` takes no `--nosort`), with glibc's merge sort and the comparisons'
//! 32-bit wrap. Each service prints as
//! `-A <service> -s <sched>[ -p T[ -M mask]][ --pe name][ -o][ -b flags]` and each server
//! as `-a <service> -r addr:port <-m|-i|-g> -w W` plus, for tunnels,
//! ` --tun-type ipip|gre|gue` (` --tun-port N` for GUE, the checksum option for GRE and
//! GUE). Thresholds are not saved; a local server prints as `-g`; the netmask only when
//! persistent and not /32 or /128.
//!
//! Known ipvsadm losses, reproduced: with `sh`/`mh` only flags 1 and 2 are printed, so
//! `flag-3` is lost (and a service whose only flag is `flag-3` prints `-b ` with nothing
//! after it, which ipvsadm cannot read back); `-M` of a non-persistent service is lost.

use super::list::{ServiceView, Snapshot, sorted_dests};
use super::rules::{Config, server_line, service_opts};
use super::{cmp_services, glibc_msort};

/// `-S -n` of a snapshot's services.
#[must_use]
pub fn save(snap: &Snapshot) -> String {
    save_services(&snap.services)
}

/// `-S -n` of services given in the kernel's order.
#[must_use]
pub fn save_services(services: &[ServiceView]) -> String {
    let mut v: Vec<&ServiceView> = services.iter().collect();
    glibc_msort(&mut v, &|a: &&ServiceView, b: &&ServiceView| {
        cmp_services(&a.config.key, &b.config.key)
    });
    let mut out = String::new();
    for s in v {
        out.push_str("-A ");
        out.push_str(&s.config.key.to_string());
        out.push_str(&service_opts(&s.config));
        out.push('\n');
        for d in sorted_dests(&s.dests, |d| d.config) {
            out.push_str(&server_line(&s.config.key, &d.config));
            out.push('\n');
        }
    }
    out
}

/// `-S -n` of a rule set.
#[must_use]
pub fn save_config(cfg: &Config) -> String {
    save(&cfg.snapshot())
}
