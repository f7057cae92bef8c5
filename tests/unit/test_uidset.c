/* test_uidset.c - UID sets from a server (ESEARCH ALL): parsed strictly,
 * clipped to what was asked for, sorted and merged. */
#include "config.h"

#include "session.h"

/* @text parsed with bounds @first..@last, as "lo-hi lo-hi ..." or NULL if
 * refused. */
static char *parse(const char *text, uint32_t first, uint32_t last)
{
	GArray *r = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	GString *out = g_string_new(NULL);
	gboolean ok = imap_parse_uid_set(text, first, last, r);

	for (guint i = 0; ok && i < r->len; i++) {
		const struct imap_uid_range *x =
			&g_array_index(r, struct imap_uid_range, i);

		g_string_append_printf(out, "%s%u-%u", i ? " " : "", x->lo,
				       x->hi);
	}
	g_array_unref(r);
	if (!ok) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}

static void test_valid(void)
{
	static const struct {
		const char *text;
		uint32_t first, last;
		const char *expect;
	} cases[] = {
		{"1:5,7,9:12", 1, 100, "1-5 7-7 9-12"},
		{"5:1", 1, 100, "1-5"},
		{"7,1:3,4", 1, 100, "1-4 7-7"},	 /* sorted, merged */
		{"1:10,5:20", 1, 100, "1-20"},	 /* overlapping */
		{"1:4294967295", 1, 50, "1-50"}, /* clipped */
		{"3:9", 5, 7, "5-7"},
		{"1,2,3", 4, 9, ""}, /* nothing in bounds */
		{"4294967295", 1, G_MAXUINT32, "4294967295-4294967295"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *got = parse(cases[i].text, cases[i].first, cases[i].last);

		g_assert_cmpstr(got, ==, cases[i].expect);
		g_free(got);
	}
}

static void test_hostile(void)
{
	static const char *const bad[] = {
		"",	  "0",		"0:5",
		"1:0",	  "4294967296", "1:4294967296",
		"*",	  "1:*",	"1,",
		",1",	  "1,,2",	"1::2",
		"1:2:3",  "-1",		"+1",
		" 1",	  "1 ",		"1;2",
		"a",	  "1:a",	"99999999999999999999999",
		"1:2,3:",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *got = parse(bad[i], 1, G_MAXUINT32);

		if (got != NULL)
			g_error("accepted \"%s\" as %s", bad[i], got);
	}
	g_assert_null(parse(NULL, 1, 10));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/uidset/valid", test_valid);
	g_test_add_func("/uidset/hostile", test_hostile);
	return g_test_run();
}
