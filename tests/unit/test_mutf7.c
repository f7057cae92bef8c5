/* test_mutf7.c - modified UTF-7 (imap/mutf7.c). */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "mutf7.h"

struct pair {
	const char *utf8;
	const char *mutf7;
};

static const struct pair round_trips[] = {
	{"", ""},
	{"INBOX", "INBOX"},
	{"&", "&-"},
	{"&-", "&--"},
	{"a&b&&c", "a&-b&-&-c"},
	{"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-"},
	{"\xf0\x9f\x98\x80", "&2D3eAA-"},
	{"\xf0\x9f\x98\x80\xc3\xa9", "&2D3eAADp-"},
	{"\xc3\xa9\xc3\xa8", "&AOkA6A-"},
	{"\xf4\x8f\xbf\xbf", "&2,,f,w-"},
	{"\xef\xbf\xbd", "&,,0-"},
	{"x\xc3\xa9y\xc3\xa8z", "x&AOk-y&AOg-z"},
	{"\xc3\xa9&\xc3\xa8", "&AOk-&-&AOg-"},
	{"\xc3\xa9 \xc3\xa8", "&AOk- &AOg-"},
	{"Brouillons/\xc3\xa9t\xc3\xa9.old", "Brouillons/&AOk-t&AOk-.old"},
	{"a+b\\c~d", "a+b\\c~d"},
	{"-", "-"},
	{"a/b.c", "a/b.c"},
	{"tab\there", "tab&AAk-here"},
	{"\x01", "&AAE-"},
	{"\x7f", "&AH8-"},
	{"\xce\xa9", "&A6k-"},
	{"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa"
	 "\x9e",
	 "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
};

static void test_round_trip_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(round_trips); i++) {
		const struct pair *t = &round_trips[i];
		GError *error = NULL;
		char *enc, *dec;

		enc = imap_mutf7_encode(t->utf8, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(enc, ==, t->mutf7);
		dec = imap_mutf7_decode(t->mutf7, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(dec, ==, t->utf8);
		g_free(enc);
		g_free(dec);
	}
}

static const char *const invalid_names[] = {
	"&",		      /* unterminated */
	"&Jjo",		      /* unterminated */
	"abc&AOk",	      /* unterminated at end */
	"&-&",		      /* "&-" then unterminated */
	"&AGE-",	      /* encodes printable ASCII 'a' */
	"&ACY-",	      /* encodes '&', which must be "&-" */
	"&AC0-",	      /* encodes '-' */
	"&AOkAYQ-",	      /* run containing 'a' */
	"&U,BTFw-&ZeVnLIqe-", /* adjacent runs */
	"&AOk-&AOg-",	      /* adjacent runs */
	"&Jj!-",	      /* bad base64 char */
	"&Jj/-",	      /* '/' instead of ',' */
	"&Jj=-",	      /* base64 padding */
	"&Jj.-",	      /* bad char */
	"&APx-",	      /* non-zero pad bits */
	"&APz-",	      /* non-zero pad bits */
	"&APwA-",	      /* superfluous base64 char */
	"&AA-",		      /* empty run: 12 bits, no character */
	"&A-",		      /* 6 bits, no character */
	"&2D0-",	      /* lone high surrogate */
	"&3gA-",	      /* lone low surrogate */
	"&3gDYPQ-",	      /* reversed surrogate pair */
	"&2D0A6Q-",	      /* high surrogate followed by non-low */
	"&2D3YPQ-",	      /* two high surrogates */
	"caf\xc3\xa9",	      /* 8-bit bytes */
	"\xff",		      /* 8-bit byte */
	"a\tb",		      /* raw control character */
	"a\rb",		      /* raw CR */
	"\x7f",		      /* raw DEL */
	"&AAA-",	      /* U+0000 */
	"&AAAA6Q-",	      /* U+0000 followed by e-acute */
};

static void test_decode_invalid(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(invalid_names); i++) {
		GError *error = NULL;
		char *dec = imap_mutf7_decode(invalid_names[i], &error);

		if (dec != NULL)
			g_error("\"%s\" decoded to \"%s\"", invalid_names[i],
				dec);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
		g_error_free(error);
	}
}

static const char *const invalid_utf8[] = {
	"\xff",		    /* never valid */
	"abc\xc3",	    /* truncated sequence */
	"\xc0\xaf",	    /* overlong "/" */
	"\xed\xa0\x80",	    /* UTF-8-encoded surrogate */
	"\xf4\x90\x80\x80", /* beyond U+10FFFF */
	"\x80",		    /* lone continuation byte */
};

static void test_encode_invalid(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(invalid_utf8); i++) {
		GError *error = NULL;
		char *enc = imap_mutf7_encode(invalid_utf8[i], &error);

		g_assert_null(enc);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
		g_error_free(error);
	}
}

static gunichar random_char(void)
{
	switch (g_test_rand_int_range(0, 6)) {
	case 0:
		return g_test_rand_int_range(0x20, 0x7f);
	case 1:
		return g_test_rand_bit() ? '&' : '-';
	case 2:
		return g_test_rand_int_range(0x01, 0x20);
	case 3:
		return g_test_rand_int_range(0x80, 0x800);
	case 4: {
		gunichar c = g_test_rand_int_range(0x800, 0x10000);

		return (c >= 0xd800 && c <= 0xdfff) ? 0xfffd : c;
	}
	default:
		return g_test_rand_int_range(0x10000, 0x110000);
	}
}

/* Random Unicode strings survive encode -> decode, and the encoded form is
 * 7-bit printable. */
static void test_random_round_trip(void)
{
	for (int iter = 0; iter < 20000; iter++) {
		GString *s = g_string_new(NULL);
		int n = g_test_rand_int_range(0, 24);
		GError *error = NULL;
		char *enc, *dec;

		for (int i = 0; i < n; i++)
			g_string_append_unichar(s, random_char());
		enc = imap_mutf7_encode(s->str, &error);
		g_assert_no_error(error);
		for (const char *p = enc; *p != '\0'; p++)
			g_assert_true(*p >= 0x20 && *p <= 0x7e);
		dec = imap_mutf7_decode(enc, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(dec, ==, s->str);
		g_free(enc);
		g_free(dec);
		g_string_free(s, TRUE);
	}
}

/* Strictness as a property: any random 7-bit string the decoder accepts is
 * the canonical encoding of what it decodes to. */
static void test_random_decode_is_canonical(void)
{
	static const char alphabet[] = "&&&---AAZaz09+,ABCDEF2D3gw. /x";
	int accepted = 0;

	for (int iter = 0; iter < 50000; iter++) {
		char buf[16];
		int n = g_test_rand_int_range(0, sizeof(buf));
		char *dec, *enc;

		for (int i = 0; i < n; i++)
			buf[i] = alphabet[g_test_rand_int_range(
				0, sizeof(alphabet) - 1)];
		buf[n] = '\0';
		dec = imap_mutf7_decode(buf, NULL);
		if (dec == NULL)
			continue;
		accepted++;
		g_assert_true(g_utf8_validate(dec, -1, NULL));
		enc = imap_mutf7_encode(dec, NULL);
		g_assert_cmpstr(enc, ==, buf);
		g_free(enc);
		g_free(dec);
	}
	/* The property is vacuous if nothing was accepted. */
	g_assert_cmpint(accepted, >, 1000);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mutf7/round-trip-table", test_round_trip_table);
	g_test_add_func("/mutf7/decode-invalid", test_decode_invalid);
	g_test_add_func("/mutf7/encode-invalid", test_encode_invalid);
	g_test_add_func("/mutf7/random-round-trip", test_random_round_trip);
	g_test_add_func("/mutf7/random-decode-is-canonical",
			test_random_decode_is_canonical);
	return g_test_run();
}
