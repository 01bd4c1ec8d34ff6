//! Entry points for fuzzers and property tests, and sample packets for examples.
//!
//! Each `fuzz_*` function takes arbitrary bytes, runs one parser or rewrite, and panics
//! only if an invariant of this crate is broken (a rewrite that fails but changed the
//! buffer, a checksum that no longer verifies, a parser that panics). The `fuzz/` crate
//! calls them under libFuzzer; the test suite calls them over the fuzz corpus on stable.

/// A valid IPv4 TCP SYN from 198.51.100.7:40000 to 192.0.2.1:80, 64 bytes long
/// (20-byte IPv4 header, 20-byte TCP header, 24 bytes of payload).
#[must_use]
pub fn sample_tcp_v4() -> [u8; 64] {
    let mut p = [0u8; 64];
    crate::wire::ipv4::emit_header(
        &mut p,
        0,
        64,
        0x1234,
        crate::wire::ipv4::FLAG_DF,
        64,
        crate::wire::proto::TCP,
        [198, 51, 100, 7].into(),
        [192, 0, 2, 1].into(),
    );
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    t[12] = 0x50;
    t[13] = crate::wire::tcp::flags::SYN;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    for (i, b) in t[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let acc = crate::checksum::pseudo_v4([198, 51, 100, 7].into(), [192, 0, 2, 1].into(), 6, 44);
    let c = crate::checksum::finish(crate::checksum::add(acc, &p[20..]));
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}
