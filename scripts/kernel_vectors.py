#!/usr/bin/env python3
"""Independent re-statement of the kernel's IPVS hashing (hash_32, 64-bit hsiphash,
ip_vs_sh.c reassign/hashkey, ip_vs_mh.c permutate/populate/hashkey), used to compute the
vectors pinned in src/scheduler/{sh,mh}.rs tests. Run: python3 scripts/kernel_vectors.py"""
import ipaddress
from math import gcd

M32, M64 = (1 << 32) - 1, (1 << 64) - 1
GOLDEN_RATIO_32 = 0x61C88647


def hash_32(v, bits):
    return ((v * GOLDEN_RATIO_32) & M32) >> (32 - bits)


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def sipround(v):
    v0, v1, v2, v3 = v
    v0 = (v0 + v1) & M64; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    v2 = (v2 + v3) & M64; v3 = rotl(v3, 16); v3 ^= v2
    v0 = (v0 + v3) & M64; v3 = rotl(v3, 21); v3 ^= v0
    v2 = (v2 + v1) & M64; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    return [v0, v1, v2, v3]


def hsiphash64(data, k0, k1):
    """lib/siphash.c __hsiphash_unaligned with BITS_PER_LONG == 64."""
    v = [0x736f6d6570736575 ^ k0, 0x646f72616e646f6d ^ k1,
         0x6c7967656e657261 ^ k0, 0x7465646279746573 ^ k1]
    n = len(data) - len(data) % 8
    for i in range(0, n, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v[3] ^= m; v = sipround(v); v[0] ^= m
    b = (len(data) << 56) | int.from_bytes(data[n:], "little")
    v[3] ^= b; v = sipround(v); v[0] ^= b
    v[2] ^= 0xff
    for _ in range(3):
        v = sipround(v)
    return (v[0] ^ v[1] ^ v[2] ^ v[3]) & M32


def fold(addr):
    a = ipaddress.ip_address(addr)
    if a.version == 4:
        return int(a)
    x = int(a)
    return (x ^ (x >> 32) ^ (x >> 64) ^ (x >> 96)) & M32


# ---- SH ----
def sh_reassign(dests, size):  # dests: list in kernel order of (addr, port, weight)
    tab, p, d = [], 0, 0
    for _ in range(size):
        tab.append(p)
        d += 1
        if d >= dests[p][2]:
            p = (p + 1) % len(dests); d = 0
    return tab


def sh_hashkey(addr, port, offset, bits):
    return (offset + hash_32((port + fold(addr)) & M32, bits)) & ((1 << bits) - 1)


def sh_fallback_probe(addr, port, bits):
    size = 1 << bits
    ih = sh_hashkey(addr, port, 0, bits)
    return [sh_hashkey(addr, port, (o + ih) % size, bits) for o in range(4)]


# ---- MH ----
PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071]
H1 = (2654435761, 2654435761)
H2 = (2654446892, 2654446892)


def mh_hashkey(addr, port, key, offset):
    v = (offset + port + fold(addr)) & M32
    return hsiphash64(v.to_bytes(4, "little"), *key)


def fls(x):
    return x.bit_length()


def mh_build(dests, M):  # dests in kernel order: (addr, port, last_weight)
    tab_bits = (PRIMES.index(M) + 8) // 2
    g = 0
    for _, _, w in dests:
        if w > 0:
            g = gcd(w, g) if g > 0 else w
    if g < 1:
        return [None] * M, []
    mw = max(w for _, _, w in dests) // g
    shift = max(fls(mw) - tab_bits, 0)
    setup = []
    for a, p, w in dests:
        off = mh_hashkey(a, p, H1, 0) % M
        skip = mh_hashkey(a, p, H2, 0) % (M - 1) + 1
        turns = ((w // g) >> shift) or (1 if w != 0 else 0)
        setup.append([off, skip, off, turns])
    table, taken, n = [None] * M, [False] * M, 0
    while True:
        for i, s in enumerate(setup):
            if s[3] < 1:
                continue
            for _ in range(s[3]):
                c = s[2]
                while taken[c]:
                    s[2] = (s[2] + s[1]) % M
                    c = s[2]
                taken[c] = True
                table[c] = i
                n += 1
                if n == M:
                    return table, setup


if __name__ == "__main__":
    # Self-check against lib/siphash_kunit.c (64-bit hsiphash vectors 0..3, 8, 16).
    K = (0x0706050403020100, 0x0F0E0D0C0B0A0908)
    for i, want in [(0, 0x050FC4DC), (1, 0x7D57CA93), (2, 0x4DC7D44D), (3, 0xE7DDF7FB),
                    (4, 0x88D38328), (8, 0x8D299A8E), (16, 0x7D908B66), (63, 0xB7BBB3A8)]:
        assert hsiphash64(bytes(range(i)), *K) == want, i
    print("hash_32(0x0a010001, 8) =", hash_32(0x0A010001, 8))
    # SH: added a(10.0.0.1, w1), b(10.0.0.2, w0), c(10.0.0.3, w2) -> list [c, b, a]
    sh_d = [("10.0.0.3", 80, 2), ("10.0.0.2", 80, 0), ("10.0.0.1", 80, 1)]
    tab = sh_reassign(sh_d, 256)
    print("SH table[0..12] (list positions):", tab[:12])
    for c, port in [("192.0.2.1", 0), ("192.0.2.2", 0), ("198.51.100.7", 0),
                    ("2001:db8::5", 0), ("192.0.2.1", 40000), ("192.0.2.1", 40001)]:
        h = sh_hashkey(c, port, 0, 8)
        print(f"SH {c} port {port}: bucket {h} -> pos {tab[h]}; fallback probes",
              sh_fallback_probe(c, port, 8))
    # MH: added a(10.0.0.1:80, w1), b(10.0.0.2:80, w2), c(10.0.0.3:8080, w3), M = 251
    mh_d = [("10.0.0.3", 8080, 3), ("10.0.0.2", 80, 2), ("10.0.0.1", 80, 1)]
    table, setup = mh_build(mh_d, 251)
    print("MH setup (offset, skip, turns):", [(s[0], s[1], s[3]) for s in setup])
    print("MH M=251 table[0..24]:", table[:24])
    print("MH counts:", [table.count(i) for i in range(3)])
    for c, port in [("192.0.2.1", 0), ("192.0.2.2", 0), ("198.51.100.7", 0),
                    ("2001:db8::5", 0), ("192.0.2.1", 40000)]:
        h = mh_hashkey(c, port, H1, 0) % 251
        probes = [mh_hashkey(c, port, H1, (o + h) % 251) % 251 for o in range(3)]
        print(f"MH {c} port {port}: hsiphash {mh_hashkey(c, port, H1, 0):#010x} slot {h} -> "
              f"pos {table[h]}; fallback probes {probes}")
    # rshift: weights 1 and 1000 with M=251 (tab bits 4): fls(1000)=10 -> shift 6
    table2, setup2 = mh_build([("10.0.0.2", 80, 1000), ("10.0.0.1", 80, 1)], 251)
    print("MH rshift turns:", [s[3] for s in setup2], "counts:",
          [table2.count(i) for i in range(2)])
    # default M = 4093 with the same three servers
    table3, _ = mh_build(mh_d, 4093)
    print("MH M=4093 table[0..16]:", table3[:16], "counts:", [table3.count(i) for i in range(3)])
