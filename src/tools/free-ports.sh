#!/usr/bin/env bash
# Prints the first of 7 consecutive free loopback TCP ports (six storage
# nodes and one server), for the test driver and the benchmarks; exits 1 if
# none were found in 200 tries.
set -euo pipefail
perl -MIO::Socket::INET -e '
	for my $try (1..200) {
		my $base = 20000 + int(rand(30000));
		my @s = map { IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
		                                    LocalPort => $base + $_, ReuseAddr => 0) } 0..6;
		if (7 == grep { defined } @s) { print $base; exit 0 }
	}
	exit 1'
