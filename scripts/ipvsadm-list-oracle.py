# Expected ipvsadm output from the C format strings (Python % is C printf).
def largenum(i, exact):
    if exact:
        l = len("%d" % i)
        return "%*d" % (9 if l <= 8 else l + 1, i)
    if i < 100000000: return "%9d" % i
    if i < 1000000000: return "%8dK" % (i // 1000)
    if i < 100000000000: return "%8dM" % (i // 1000000)
    if i < 100000000000000: return "%8dG" % (i // 1000000000)
    return "%8dT" % (i // 1000000000000)

ver = "IP Virtual Server version %d.%d.%d (size=%d)\n" % (1, 2, 1, 4096)
plain_title = ("Prot LocalAddress:Port Scheduler Flags\n"
               "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
tun_title = ("Prot LocalAddress:Port Scheduler Flags\n"
             "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
stats_title = ("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" %
               ("Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"))
rate_title = ("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" %
              ("Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"))
thr_title = ("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n" %
             ("Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"))
pc_title = ("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n" %
            ("Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"))

# services in sorted order: (svc_name, sched line, dests)
# dest: (dname, fwd, tuninfo, weight, act, inact, persist, uthr, lthr, stats5, rates5)
S1 = "%-4s %s" % ("TCP", "10.0.0.100:80")
S2 = "%-4s %s" % ("UDP", "10.0.0.100:53")
S3 = "FWM  %u" % 7
S4 = "%-4s %s" % ("TCP", "[2001:db8::1]:443")
S5 = "FWM  %u IPv6" % 9
svcs = [
  (S1, " wlc", [
     ("192.168.1.1:80", "Masq", "n/a", 1, 0, 0, 0, 0, 0, (0, 99999999, 100000000, 1234567890, 123456789012345), (0, 1, 2, 3, 4)),
     ("192.168.1.2:80", "Route", "n/a", 2, 3, 17, 5, 100, 10, (7, 8, 9, 10, 11), (123456789, 1, 2, 300000000, 5)),
  ], (12, 34, 56, 78, 90), (1, 2, 3, 4, 5)),
  (S2, " sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0 ops", [], (0,)*5, (0,)*5),
  (S3, " rr", [
     ("192.168.1.3:0", "Tunnel", "ipip", 1, 0, 0, 0, 0, 0, (0,)*5, (0,)*5),
     ("192.168.1.4:0", "Tunnel", "gue:6080:+c", 1, 0, 0, 0, 0, 0, (0,)*5, (0,)*5),
     ("[2001:db8::7]:0", "Tunnel", "gre:-c", 1, 0, 0, 0, 0, 0, (0,)*5, (0,)*5),
  ], (0,)*5, (0,)*5),
  (S4, " mh (mh-port) persistent 60 mask 64 pe sip", [
     ("[2001:db8::2]:443", "Local", "n/a", 65535, 1, 2, 3, 0, 0, (0,)*5, (0,)*5),
  ], (0,)*5, (0,)*5),
  (S5, " lc (flag-1,flag-3)", [], (0,)*5, (0,)*5),
]
# Real sort order: IPv4 address services, then IPv6 ones, then fwmarks.
order = [0, 1, 3, 2, 4]

def render(kind, exact=False):
    out = ver
    out += {"plain": plain_title, "tun": tun_title, "stats": stats_title, "rate": rate_title,
            "thr": thr_title, "pc": pc_title}[kind]
    for k in order:
        name, tail, dests, st, rt = svcs[k]
        if kind == "stats":
            out += "%-33s" % name + "".join(largenum(x, exact) for x in st) + "\n"
        elif kind == "rate":
            out += "%-33s" % name + "".join(largenum(x, exact) for x in rt) + "\n"
        else:
            out += "%s%s\n" % (name, tail)
        for (dn, fwd, ti, w, a, i, p, u, l, dst, drt) in dests:
            if kind == "stats":
                out += "  -> %-28s" % dn + "".join(largenum(x, exact) for x in dst) + "\n"
            elif kind == "rate":
                out += "  -> %-28s %8d %8d %8d" % (dn, drt[0], drt[1], drt[2]) + largenum(drt[3], exact) + largenum(drt[4], exact) + "\n"
            elif kind == "thr":
                out += "  -> %-28s %-10u %-10u %-10u %-10u\n" % (dn, u, l, a, i)
            elif kind == "pc":
                out += "  -> %-28s %-9u %-11u %-10u %-10u\n" % (dn, w, p, a, i)
            elif kind == "tun":
                out += "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n" % (dn, fwd, ti, w, a, i)
            else:
                out += "  -> %-28s %-7s %-6d %-10u %-10u\n" % (dn, fwd, w, a, i)
    return out

def rust(name, s):
    lines = s.split("\n")[:-1]
    body = "".join('    "%s\\n",\n' % l.replace('"', '\\"') for l in lines)
    print("const %s: &str = concat!(\n%s);" % (name, body))

rust("PLAIN", render("plain"))
rust("TUN_INFO", render("tun"))
rust("STATS", render("stats"))
rust("STATS_EXACT", render("stats", True))
rust("RATE", render("rate"))
rust("THRESHOLDS", render("thr"))
rust("PERSISTENT_CONN", render("pc"))
print("#[allow(clippy::useless_concat)]"); rust("TIMEOUT", "Timeout (tcp tcpfin udp): %d %d %d\n" % (900, 120, 300))
conn = "IPVS connection entries\n" + "pro expire %-11s %-18s %-18s %s\n" % ("state", "source", "virtual", "destination")
rows = [("TCP", 899, "ESTABLISHED", "10.1.1.1:40000", "10.0.0.100:80", "192.168.1.1:80", None),
        ("UDP", 59, "UDP", "[2001:db8::99]:53000", "[2001:db8::1]:53", "[2001:db8::2]:53", None),
        ("IP", 6000, "NONE", "10.1.1.0:0", "0.0.0.7:0", "192.168.1.3:0", None),
        ("UDP", 300, "ASSURED", "10.1.1.1:0", "10.0.0.100:5060", "192.168.1.1:5060", ("sip", "abc@host")),
        ("SCTP", 3, "S-ACK-SENT", "10.1.1.1:1", "10.0.0.100:2", "192.168.1.1:2", None)]
def exp(e): return "%02d:%02d" % (e // 60, e % 60)
c1 = conn
for (p, e, s, a, v, d, pe) in rows:
    c1 += "%-3s %-6s %-11s %-18s %-18s %s\n" % (p, exp(e), s, a, v, d)
rust("CONNS", c1)
c2 = "IPVS connection entries\n" + "pro expire %-11s %-18s %-18s %-18s %-16s %s\n" % ("state", "source", "virtual", "destination", "pe name", "pe_data")
for (p, e, s, a, v, d, pe) in rows:
    if pe:
        c2 += "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n" % (p, exp(e), s, a, v, d, pe[0], pe[1])
    else:
        c2 += "%-3s %-6s %-11s %-18s %-18s %s\n" % (p, exp(e), s, a, v, d)
rust("CONNS_PE", c2)
