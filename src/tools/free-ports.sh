#!/usr/bin/env bash
# Prints the first of N (default 7: six storage nodes and one server)
# consecutive free loopback TCP ports, for the test driver, the Perl TAP
# harness and the benchmarks; exits 1 if none were found in 200 tries.
#
# The ports are taken below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range), never inside it: a port in that range can be
# handed to any outgoing connection as its source port while a node is down,
# and a node's peers redialing a stopped node's port can even connect to
# themselves (TCP simultaneous open) and hold it, so the node cannot listen
# there again when it restarts.
set -euo pipefail
count="${1:-7}"
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { eph_lo=32768; eph_hi=60999; }
perl -MIO::Socket::INET -e '
	my ($count, $eph_lo, $eph_hi) = @ARGV;
	# below the ephemeral range if it leaves room there, else above it
	my ($lo, $hi) = $eph_lo - $count > 12000 ? (10000, $eph_lo - $count)
	              : $eph_hi + 1 + $count < 65535 ? ($eph_hi + 1, 65535 - $count)
	              : (10000, 65535 - $count);
	for my $try (1 .. 200) {
		my $base = $lo + int(rand($hi - $lo));
		my @s = grep { defined } map {
			IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
			                      LocalPort => $base + $_, ReuseAddr => 0)
		} 0 .. $count - 1;
		if (@s == $count) { print $base; exit 0 }
	}
	exit 1' "$count" "$eph_lo" "$eph_hi"
