//! ipvsadm text against the real kernel's (goldens in tests/kernel/golden/ipvsadm,
//! recorded by tests/kernel/regenerate.sh): the rule files restored into Linux 6.12 with
//! `ipvsadm -R` and the same files loaded here print the same `-S -n` and `--timeout`
//! text, byte for byte. Listings with traffic counters are compared by the engine's
//! replay tests, which produce the counters.

use lvs::conn_table::Timeouts;
use lvs::ipvsadm::{Config, list::list_timeout, save::save_config};
use std::path::PathBuf;
use std::time::Duration;

fn golden(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kernel/golden/ipvsadm")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The rule file as the harness fed it to `ipvsadm -R`: the harness strips `#` lines,
/// which ipvsadm itself rejects (see restore-comment-line.txt).
fn rules(set: &str) -> String {
    golden(&format!("{set}.rules"))
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn save_matches_the_kernel() {
    for set in ["basic", "options"] {
        let cfg = Config::from_rules(&rules(set)).unwrap_or_else(|e| panic!("{set}: {e}"));
        assert_eq!(
            save_config(&cfg),
            golden(&format!("{set}.S-n.txt")),
            "{set}: ipvsadm -S -n"
        );
    }
}

#[test]
fn timeouts_match_the_kernel() {
    let mut t = Timeouts::default();
    assert_eq!(list_timeout(&t), golden("basic.L-timeout.txt"));
    // The harness ran `ipvsadm --set 100 20 30` before the second listing.
    t.set(
        Duration::from_secs(100),
        Duration::from_secs(20),
        Duration::from_secs(30),
    );
    assert_eq!(list_timeout(&t), golden("basic.L-timeout-set.txt"));
}
