/*
 * Static packet sender of the kernel harness: builds Ethernet frames from a list of
 * tuples and writes them, in order, to an AF_PACKET socket, so the client traffic is
 * byte-for-byte the same on every run (fixed IP ID, TTL, sequence numbers, no options).
 *
 * Usage: sender IFACE DSTMAC < tuples
 * One tuple per line (blank lines and '#' comments are skipped):
 *   tcp SRC SPORT DST DPORT FLAGS [PAYLOAD]   FLAGS: any of S A F R P U, e.g. S or PA
 *   udp SRC SPORT DST DPORT [PAYLOAD]
 * SRC/DST are IPv4 or IPv6 addresses (both of one family). The n-th frame (from 0) has
 * IPv4 ID 0x1000+n and TCP sequence 0x10000000+n (ack 0); IPv4 TCP has DF set, UDP not;
 * TTL/hop limit 64, TCP window 29200, IPv6 flow label 0. The source MAC is the
 * interface's. Compile: gcc -static -O2 -o sender sender.c
 */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s) {
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s) {
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }

static int parse_mac(const char *s, uint8_t *m) {
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4],
		      &m[5]) == 6 ? 0 : -1;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s IFACE DSTMAC < tuples\n", argv[0]);
		return 2;
	}
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0) { perror("socket"); return 1; }
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) { perror("SIOCGIFINDEX"); return 1; }
	int ifindex = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) { perror("SIOCGIFHWADDR"); return 1; }
	uint8_t smac[6], dmac[6];
	memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
	if (parse_mac(argv[2], dmac)) { fprintf(stderr, "bad MAC %s\n", argv[2]); return 2; }
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof sll);
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = ifindex;
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, dmac, 6);

	char line[2048];
	unsigned n = 0, lineno = 0;
	while (fgets(line, sizeof line, stdin)) {
		lineno++;
		char proto[8] = "", src[64] = "", dst[64] = "", flags[16] = "", payload[1024] = "";
		unsigned sport, dport;
		char *c = line;
		while (*c == ' ' || *c == '\t') c++;
		if (*c == '#' || *c == '\n' || *c == 0) continue;
		int pos = 0;
		int k = sscanf(c, "%7s %63s %u %63s %u%n", proto, src, &sport, dst, &dport, &pos);
		if (k != 5) { fprintf(stderr, "line %u: bad tuple\n", lineno); return 2; }
		char *p = c + pos;
		if (strcmp(proto, "tcp") == 0) {
			int pos2 = 0;
			if (sscanf(p, " %15s%n", flags, &pos2) != 1) {
				fprintf(stderr, "line %u: tcp needs FLAGS\n", lineno);
				return 2;
			}
			p += pos2;
		}
		while (*p == ' ' || *p == '\t') p++;
		strncpy(payload, p, sizeof payload - 1);
		payload[strcspn(payload, "\n")] = 0;
		size_t plen = strlen(payload);

		int v6 = strchr(src, ':') != NULL;
		uint8_t sa[16], da[16];
		if (inet_pton(v6 ? AF_INET6 : AF_INET, src, sa) != 1 ||
		    inet_pton(v6 ? AF_INET6 : AF_INET, dst, da) != 1) {
			fprintf(stderr, "line %u: bad address\n", lineno);
			return 2;
		}
		int tcp = strcmp(proto, "tcp") == 0;
		if (!tcp && strcmp(proto, "udp") != 0) {
			fprintf(stderr, "line %u: protocol %s\n", lineno, proto);
			return 2;
		}
		uint8_t fr[1600];
		memset(fr, 0, sizeof fr);
		memcpy(fr, dmac, 6);
		memcpy(fr + 6, smac, 6);
		put16(fr + 12, v6 ? 0x86dd : 0x0800);
		uint8_t *ip = fr + 14;
		size_t iplen = v6 ? 40 : 20, l4len = (tcp ? 20 : 8) + plen;
		uint8_t *l4 = ip + iplen;
		uint8_t pr = tcp ? 6 : 17;
		if (v6) {
			ip[0] = 0x60;
			put16(ip + 4, l4len);
			ip[6] = pr;
			ip[7] = 64;
			memcpy(ip + 8, sa, 16);
			memcpy(ip + 24, da, 16);
		} else {
			ip[0] = 0x45;
			put16(ip + 2, iplen + l4len);
			put16(ip + 4, 0x1000 + n);
			put16(ip + 6, tcp ? 0x4000 : 0);
			ip[8] = 64;
			ip[9] = pr;
			memcpy(ip + 12, sa, 4);
			memcpy(ip + 16, da, 4);
			put16(ip + 10, fold(sum16(ip, 20, 0)));
		}
		put16(l4, sport);
		put16(l4 + 2, dport);
		if (tcp) {
			put32(l4 + 4, 0x10000000u + n);
			l4[12] = 5 << 4;
			uint8_t fl = 0;
			for (char *f = flags; *f; f++)
				fl |= *f == 'F' ? 1 : *f == 'S' ? 2 : *f == 'R' ? 4 : *f == 'P' ? 8
				    : *f == 'A' ? 16 : *f == 'U' ? 32 : 0;
			l4[13] = fl;
			put16(l4 + 14, 29200);
			memcpy(l4 + 20, payload, plen);
		} else {
			put16(l4 + 4, l4len);
			memcpy(l4 + 8, payload, plen);
		}
		uint32_t s = 0;
		if (v6) {
			s = sum16(sa, 16, s);
			s = sum16(da, 16, s);
			s += (uint32_t)l4len + pr;
		} else {
			s = sum16(sa, 4, s);
			s = sum16(da, 4, s);
			s += (uint32_t)l4len + pr;
		}
		uint16_t ck = fold(sum16(l4, l4len, s));
		if (!tcp && ck == 0)
			ck = 0xffff;
		put16(l4 + (tcp ? 16 : 6), ck);
		size_t flen = 14 + iplen + l4len;
		if (sendto(fd, fr, flen, 0, (struct sockaddr *)&sll, sizeof sll) != (ssize_t)flen) {
			perror("sendto");
			return 1;
		}
		n++;
	}
	fprintf(stderr, "sender: %u frames on %s\n", n, argv[1]);
	return 0;
}
