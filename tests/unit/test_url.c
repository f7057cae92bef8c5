/* test_url.c - imap/url.c: accepted and refused account URLs. */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "imap-error.h"
#include "url.h"

static const struct good_case {
	const char *text;
	gboolean implicit_tls;
	const char *user;
	const char *host;
	uint16_t port;
} good_cases[] = {
	{"imaps://alice@mail.example.org", TRUE, "alice", "mail.example.org",
	 993},
	{"imap://bob@host:1143", FALSE, "bob", "host", 1143},
	{"imap://bob@host", FALSE, "bob", "host", 143},
	{"imaps://alice%40example.org@mail.example.org", TRUE,
	 "alice@example.org", "mail.example.org", 993},
	{"imaps://alice@example.org@mail.example.org", TRUE,
	 "alice@example.org", "mail.example.org", 993},
	{"imaps://carol@[::1]:993", TRUE, "carol", "::1", 993},
	{"imaps://carol@[2001:db8::7]", TRUE, "carol", "2001:db8::7", 993},
	{"imaps://dave@127.0.0.1:10993/", TRUE, "dave", "127.0.0.1", 10993},
	{"imaps://erin@host/", TRUE, "erin", "host", 993},
	{"IMAPS://frank@Host.Example:65535", TRUE, "frank", "Host.Example",
	 65535},
	{"imap://gr%C3%A9gory@host:1", FALSE, "gr\xc3\xa9gory", "host", 1},
	{"imaps://a%2Bb%2fc@h", TRUE, "a+b/c", "h", 993},
	{"imaps://u@h:00993", TRUE, "u", "h", 993},
};

static void test_good(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(good_cases); i++) {
		const struct good_case *c = &good_cases[i];
		struct imap_url url;
		GError *error = NULL;

		g_test_message("good %zu: %s", i, c->text);
		g_assert_true(imap_url_parse(c->text, &url, &error));
		g_assert_no_error(error);
		g_assert_cmpint(url.implicit_tls, ==, c->implicit_tls);
		g_assert_cmpstr(url.user, ==, c->user);
		g_assert_cmpstr(url.host, ==, c->host);
		g_assert_cmpuint(url.port, ==, c->port);
		imap_url_clear(&url);
		g_assert_null(url.user);
		g_assert_null(url.host);
		g_assert_cmpuint(url.port, ==, 0);
	}
}

static const struct bad_case {
	const char *text;
	const char *expect; /* substring of the message */
} bad_cases[] = {
	{"imaps://mail.example.org", "no user"},
	{"imaps://@mail.example.org", "no user"},
	{"imaps://alice@", "empty host"},
	{"imaps://alice@:993", "empty host"},
	{"imaps://alice@host:0", "port out of range"},
	{"imaps://alice@host:65536", "port out of range"},
	{"imaps://alice@host:99999999999999999999", "port out of range"},
	{"imaps://alice@host:99x", "invalid port"},
	{"imaps://alice@host:", "empty port"},
	{"imaps://alice@host:-1", "invalid port"},
	{"http://alice@host", "unsupported scheme 'http'"},
	{"imapx://alice@host", "unsupported scheme"},
	{"alice@host", "expected imaps://"},
	{"imaps:alice@host", "expected imaps://"},
	{"imaps:/alice@host", "expected imaps://"},
	{"", "expected imaps://"},
	{"imaps://alice:hunter2@host", "password"},
	{"imaps://alice:@host", "password"},
	{"imaps://alice%zz@host", "percent-encoding"},
	{"imaps://alice%4@host", "percent-encoding"},
	{"imaps://alice%@host", "percent-encoding"},
	{"imaps://alice%00@host", "control character"},
	{"imaps://alice%0D%0A@host", "control character"},
	{"imaps://alice%0a@host", "control character"},
	{"imaps://al ice@host", "invalid character"},
	{"imaps://alice%ff@host", "UTF-8"},
	{"imaps://alice@host/INBOX", "path is not allowed"},
	{"imaps://alice@host//", "path is not allowed"},
	{"imaps://alice@host?x=1", "query"},
	{"imaps://alice@host/?x=1", "query"},
	{"imaps://alice@host#frag", "query or fragment"},
	{"imaps://alice@[::1", "missing ']'"},
	{"imaps://alice@[not-v6]", "invalid IPv6"},
	{"imaps://alice@[::1]x", "unexpected character"},
	{"imaps://alice@::1", "empty host"},
	{"imaps://alice@ho st", "invalid character in host"},
	{"imaps://alice@ho%41st", "invalid character in host"},
};

static void test_bad(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct imap_url url;
		GError *error = NULL;

		g_assert_false(imap_url_parse(c->text, &url, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
		g_test_message("bad %zu: %s -> %s", i, c->text, error->message);
		g_assert_nonnull(strstr(error->message, c->expect));
		/* Nothing is left allocated or half-filled. */
		g_assert_null(url.user);
		g_assert_null(url.host);
		g_error_free(error);
	}
}

/* A password typed into the URL, in any position, never shows up in the
 * message. */
static void test_password_not_echoed(void)
{
	static const char *const texts[] = {
		"imaps://alice:s3cr3tpw@host",
		"imap://alice:s3cr3tpw@host:143",
		"imaps://alice%40x.org:s3cr3tpw@host/",
		"imaps://alice:s3cr3tpw@host/INBOX",
		"imaps://alice:s3cr3tpw",
		"imaps://alice:s3cr3tpw/x@host",
		"alice:s3cr3tpw@host",
		"imaps://alice:s3cr3tpw%zz@host",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
		struct imap_url url;
		GError *error = NULL;

		g_assert_false(imap_url_parse(texts[i], &url, &error));
		g_assert_nonnull(error);
		g_test_message("%s -> %s", texts[i], error->message);
		g_assert_null(strstr(error->message, "s3cr3tpw"));
		g_error_free(error);
	}
}

static void test_user_too_long(void)
{
	GString *s = g_string_new("imaps://");
	struct imap_url url;
	GError *error = NULL;

	for (int i = 0; i < 100000; i++)
		g_string_append_c(s, 'u');
	g_string_append(s, "@host");
	g_assert_false(imap_url_parse(s->str, &url, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "too long"));
	g_error_free(error);
	g_string_free(s, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/url/good", test_good);
	g_test_add_func("/url/bad", test_bad);
	g_test_add_func("/url/password-not-echoed", test_password_not_echoed);
	g_test_add_func("/url/user-too-long", test_user_too_long);
	return g_test_run();
}
