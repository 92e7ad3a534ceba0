/*
 * test_quorum.c - unit tests of the quorum rules
 * (storage_service/common/quorum.c): the paper's 6/4/3 layout, each rule
 * that can fail with its explanation, and boundary cases.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "quorum.h"
#include "tap.h"

static void
check(int n, int w, int r, bool expect_valid, const char *expect_text)
{
	char		err[256] = "untouched";
	bool		valid = aurora_quorum_config_valid(n, w, r, err, sizeof(err));

	is_int(valid, expect_valid, "n=%d w=%d r=%d is %s", n, w, r,
		   expect_valid ? "valid" : "invalid");
	if (expect_valid)
		is_str(err, "", "n=%d w=%d r=%d leaves no message", n, w, r);
	else
		like(err, expect_text, "n=%d w=%d r=%d explains: %s", n, w, r, expect_text);
}

int
main(void)
{
	check(6, 4, 3, true, NULL);
	check(6, 3, 3, false, "write quorum 3 of 6 is not a majority (need 2*w > n, i.e. w >= 4)");
	check(6, 4, 2, false, "write quorum 4 plus read quorum 2 must exceed 6 copies (need w + r > n, i.e. r >= 3)");
	check(6, 6, 1, true, NULL);
	check(6, 5, 2, true, NULL);
	check(1, 1, 1, true, NULL);
	check(3, 2, 2, true, NULL);
	check(5, 3, 3, true, NULL);
	check(4, 2, 3, false, "not a majority");
	check(4, 3, 1, false, "must exceed 4 copies");
	check(0, 1, 1, false, "number of copies must be at least 1 (got 0)");
	check(-3, 1, 1, false, "number of copies must be at least 1");
	check(6, 0, 3, false, "write quorum must be between 1 and 6 copies (got 0)");
	check(6, 7, 3, false, "write quorum must be between 1 and 6 copies (got 7)");
	check(6, 4, 0, false, "read quorum must be between 1 and 6 copies (got 0)");
	check(6, 4, 7, false, "read quorum must be between 1 and 6 copies (got 7)");

	ok(!aurora_quorum_config_valid(6, 3, 3, NULL, 0), "NULL error buffer is allowed");
	ok(aurora_quorum_config_valid(AURORA_PG_COPIES, AURORA_DEFAULT_WRITE_QUORUM,
								  AURORA_DEFAULT_READ_QUORUM, NULL, 0),
	   "the default layout is valid");

	ok(aurora_quorum_met(4, 4), "4 acks meet a quorum of 4");
	ok(aurora_quorum_met(6, 4), "6 acks meet a quorum of 4");
	ok(!aurora_quorum_met(3, 4), "3 acks do not meet a quorum of 4");
	ok(aurora_quorum_met(3, 3), "3 acks meet a read quorum of 3");
	ok(!aurora_quorum_met(0, 0), "a zero quorum is never met");
	ok(!aurora_quorum_met(5, -1), "a negative quorum is never met");

	/* PGCL: the 4th highest of six SCLs */
	{
		uint64_t	scl[6] = {500, 900, 100, 700, 800, 600};
		uint64_t	same[6] = {42, 42, 42, 42, 42, 42};
		uint64_t	two_down[6] = {0, 900, 0, 700, 800, 600};
		uint64_t	three_down[6] = {0, 900, 0, 700, 0, 600};
		/* a whole AZ (a1, a2) lost: the other four still make a quorum */
		uint64_t	az_down[6] = {0, 0, 880, 870, 860, 850};

		is_int((long) aurora_quorum_kth_highest(scl, 6, 4), 600, "PGCL is the 4th highest SCL");
		is_int((long) scl[0], 500, "the caller's array is not reordered");
		is_int((long) aurora_quorum_kth_highest(same, 6, 4), 42, "equal SCLs give that SCL");
		is_int((long) aurora_quorum_kth_highest(two_down, 6, 4), 600,
			   "two segments behind do not hold PGCL back");
		is_int((long) aurora_quorum_kth_highest(three_down, 6, 4), 0,
			   "three segments behind stop PGCL");
		is_int((long) aurora_quorum_kth_highest(az_down, 6, 4), 850,
			   "losing a whole AZ keeps a write quorum");
		is_int((long) aurora_quorum_kth_highest(scl, 6, 3), 700, "3rd highest for a read quorum");
		is_int((long) aurora_quorum_kth_highest(scl, 6, 7), 0, "k beyond n gives 0");
		is_int((long) aurora_quorum_kth_highest(scl, 6, 0), 0, "k of 0 gives 0");
	}
	{
		bool		all[6] = {true, true, true, true, true, true};
		bool		az_plus_one[6] = {false, false, false, true, true, true};
		bool		az_lost[6] = {false, false, true, true, true, true};

		ok(aurora_quorum_available(all, 6, 4), "all up: writes available");
		ok(aurora_quorum_available(az_lost, 6, 4), "an AZ down: writes still available");
		ok(!aurora_quorum_available(az_plus_one, 6, 4), "AZ+1 down: no write quorum");
		ok(aurora_quorum_available(az_plus_one, 6, 3), "AZ+1 down: reads still available");
	}
	return done_testing();
}
