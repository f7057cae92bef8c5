/* test_datetime.c - INTERNALDATE parsing (st_mtime comes from it). */
#include "config.h"

#include <string.h>

#include "session.h"

static void test_valid(void)
{
	static const struct {
		const char *text;
		gint64 expect;
	} cases[] = {
		{"17-Jul-1996 02:44:25 -0700", 837596665},
		{" 1-Jan-2024 00:00:00 +0000", 1704067200},
		{"01-Jan-2024 00:00:00 +0000", 1704067200},
		{"01-jan-2024 01:30:00 +0130", 1704067200},
		{"29-Feb-2024 23:59:59 -1200", 1709294399},
		{"1-Jan-2024 00:00:00 +0000", 1704067200},
		{"01-JAN-1970 00:00:00 +0000", 0},
		{"31-Dec-1969 23:59:59 +0000", -1},
		{"01-Jan-1970 00:00:00 +2359", -86340},
		{"29-Feb-2000 12:00:00 +0000", 951825600},
		{"01-Mar-2100 00:00:00 +0000", 4107542400},
		{"31-Dec-9999 23:59:59 +0000", 253402300799},
		{"01-Jan-0001 00:00:00 +0000", -62135596800},
		{"30-Jun-2015 23:59:60 +0000", 1435708800},
		{"15-Aug-2023 14:05:09 -0930", 1692142509},
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		gint64 t = 0;

		g_assert_true(imap_parse_datetime(cases[i].text, &t));
		g_assert_cmpint(t, ==, cases[i].expect);
	}
}

static void test_invalid(void)
{
	static const char *const bad[] = {
		"",
		"17-Jul-1996 02:44:25",
		"17-Jux-1996 02:44:25 -0700",
		"31-Feb-2024 00:00:00 +0000",
		"17-Jul-1996 02:44:25 -0760",
		"17-Jul-1996 02:44:25 *0700",
		"17-Jul-1996 25:44:25 -0700",
		"17-Jul-1996 02:44:25 -0700 trailing",
		"17-Jul-1996 02:44:25 -0700\n",
		"29-Feb-2023 00:00:00 +0000", /* not a leap year */
		"29-Feb-2100 00:00:00 +0000", /* not a leap year */
		"00-Jan-2024 00:00:00 +0000",
		"32-Jan-2024 00:00:00 +0000",
		"01-Jan-0000 00:00:00 +0000",
		"01-Jan-24 00:00:00 +0000",
		"01-Jan-20244 00:00:00 +0000",
		"01-Jan-2024 0:00:00 +0000",
		"01-Jan-2024 00:60:00 +0000",
		"01-Jan-2024 00:00:61 +0000",
		"01-Jan-2024 24:00:00 +0000",
		"01-Jan-2024 00:00:00 +2400",
		"01-Jan-2024 00:00:00 +000",
		"01-Jan-2024 00:00:00 +00000",
		"01-Jan-2024 00:00:00 0000",
		"01-Jan-2024 00:00:00  +0000",
		"01-Jan-2024T00:00:00 +0000",
		"01/Jan/2024 00:00:00 +0000",
		"  1-Jan-2024 00:00:00 +0000",
		" 01-Jan-2024 00:00:00 +0000",
		"-1-Jan-2024 00:00:00 +0000",
		"+1-Jan-2024 00:00:00 +0000",
		"01-Ja-2024 00:00:00 +0000",
		"01-Jann-2024 00:00:00 +0000",
		"01-J\xc3\xa1n-2024 00:00:00 +0000",
		"01-Jan-2024 00:00:00 +00\xff"
		"0",
		"01-Jan-2024 00:00:00 -00:0",
		"01-Jan-2024",
		"01-Jan-2024 00:00:00 +",
		"0",
		" ",
		"-",
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(bad); i++) {
		gint64 t = 0;

		g_assert_false(imap_parse_datetime(bad[i], &t));
	}
	g_assert_false(imap_parse_datetime(NULL, NULL));
}

/* The hand-written parser against GLib's calendar code, over dates and
 * zones spread across the whole valid range. */
static void test_against_gdatetime(void)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr",
					  "May", "Jun", "Jul", "Aug",
					  "Sep", "Oct", "Nov", "Dec"};
	GRand *rand = g_rand_new_with_seed(6);
	guint i;

	for (i = 0; i < 20000; i++) {
		int year = g_rand_int_range(rand, 1, 10000);
		int month = g_rand_int_range(rand, 1, 13);
		int day = g_rand_int_range(rand, 1, 29);
		int hh = g_rand_int_range(rand, 0, 24);
		int mm = g_rand_int_range(rand, 0, 60);
		int ss = g_rand_int_range(rand, 0, 60);
		int zh = g_rand_int_range(rand, 0, 24);
		int zm = g_rand_int_range(rand, 0, 60);
		char sign = g_rand_boolean(rand) ? '+' : '-';
		char text[64], tzid[16];
		GTimeZone *tz;
		GDateTime *dt;
		gint64 t = 0;

		if (i % 7 == 0)
			day = 28 + g_rand_int_range(rand, 0, 4);
		g_snprintf(text, sizeof(text),
			   "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", day,
			   mon[month - 1], year, hh, mm, ss, sign, zh, zm);
		g_snprintf(tzid, sizeof(tzid), "%c%02d:%02d", sign, zh, zm);
		tz = g_time_zone_new_identifier(tzid);
		g_assert_nonnull(tz);
		dt = g_date_time_new(tz, year, month, day, hh, mm, ss);
		g_time_zone_unref(tz);
		if (dt == NULL) {
			/* Day 29-31 that the month does not have. */
			g_assert_false(imap_parse_datetime(text, &t));
			continue;
		}
		g_assert_true(imap_parse_datetime(text, &t));
		g_assert_cmpint(t, ==, g_date_time_to_unix(dt));
		g_date_time_unref(dt);
	}
	g_rand_free(rand);
}

/* Every prefix of a valid date-time is refused, and so is every string
 * with one byte replaced (except by the same character class). Never
 * reads past the terminator (ASan checks that). */
static void test_hostile(void)
{
	static const char valid[] = "17-Jul-1996 02:44:25 -0700";
	char buf[sizeof(valid)];
	gint64 t;
	size_t i;

	for (i = 0; i < sizeof(valid) - 1; i++) {
		char *p = g_strndup(valid, i);

		g_assert_false(imap_parse_datetime(p, &t));
		g_free(p);
	}
	for (i = 0; i < sizeof(valid) - 1; i++) {
		memcpy(buf, valid, sizeof(valid));
		buf[i] = '\x01';
		g_assert_false(imap_parse_datetime(buf, &t));
		buf[i] = '\xff';
		g_assert_false(imap_parse_datetime(buf, &t));
	}
	g_assert_true(imap_parse_datetime(valid, &t));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/datetime/valid", test_valid);
	g_test_add_func("/datetime/invalid", test_invalid);
	g_test_add_func("/datetime/gdatetime", test_against_gdatetime);
	g_test_add_func("/datetime/hostile", test_hostile);
	return g_test_run();
}
