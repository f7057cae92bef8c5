/* test_datetime.c - INTERNALDATE parsing (st_mtime comes from it). */
#include "config.h"

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
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(bad); i++) {
		gint64 t = 0;

		g_assert_false(imap_parse_datetime(bad[i], &t));
	}
	g_assert_false(imap_parse_datetime(NULL, NULL));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/datetime/valid", test_valid);
	g_test_add_func("/datetime/invalid", test_invalid);
	return g_test_run();
}
