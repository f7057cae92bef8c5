/* test_auth.c - imap/auth.c: the OAuth2 SASL initial responses (RFC 7628
 * OAUTHBEARER, Google's XOAUTH2), decoded and compared byte for byte. */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "auth.h"
#include "imap-error.h"
#include "imappeer.h"
#include "session.h"
#include "testtls.h"

static const struct oauth_case {
	enum imap_auth_mech mech;
	const char *user;
	const char *token;
	/* The decoded initial response; \001 is ^A. */
	const char *raw;
} oauth_cases[] = {
	{IMAP_AUTH_OAUTHBEARER, "alice", "tok-123",
	 "n,a=alice,\001auth=Bearer tok-123\001\001"},
	{IMAP_AUTH_XOAUTH2, "alice", "tok-123",
	 "user=alice\001auth=Bearer tok-123\001\001"},
	{IMAP_AUTH_OAUTHBEARER, "alice@example.org", "ya29.A0b-_~+/x==",
	 "n,a=alice@example.org,\001auth=Bearer ya29.A0b-_~+/x==\001\001"},
	{IMAP_AUTH_XOAUTH2, "alice@example.org", "ya29.A0b-_~+/x==",
	 "user=alice@example.org\001auth=Bearer ya29.A0b-_~+/x==\001\001"},
	/* RFC 5801 saslname: ',' and '=' escaped in the gs2-header. */
	{IMAP_AUTH_OAUTHBEARER, "a,b=c", "t",
	 "n,a=a=2Cb=3Dc,\001auth=Bearer t\001\001"},
};

static void test_oauth_responses(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(oauth_cases); i++) {
		const struct oauth_case *c = &oauth_cases[i];
		char *b64 =
			imap_auth_oauth_response(c->mech, c->user, c->token);
		char *want =
			g_base64_encode((const guchar *)c->raw, strlen(c->raw));
		gsize len = 0;
		guchar *raw = g_base64_decode(b64, &len);

		g_test_message("case %zu", i);
		g_assert_cmpstr(b64, ==, want);
		g_assert_cmpmem(raw, len, c->raw, strlen(c->raw));
		g_free(raw);
		g_free(want);
		g_free(b64);
	}
}

/* One known encoding, spelled out, so that a wrong base64 alphabet or
 * padding cannot hide behind the same encoder on both sides. */
static void test_oauth_known_base64(void)
{
	char *b64 = imap_auth_oauth_response(
		IMAP_AUTH_OAUTHBEARER, "user",
		"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");

	/* RFC 7628 section 4.1's example without host= and port=. */
	g_assert_cmpstr(b64, ==,
			"bixhPXVzZXIsAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbG"
			"NrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
	g_free(b64);
}

/* A token source that counts its calls. */
static char *counting_token(void *user_data, GError **error)
{
	int *calls = user_data;

	(void)error;
	return g_strdup_printf("tok-%d", ++*calls);
}

/* A refused token: the server's error challenge is answered as the
 * mechanism wants it (OAUTHBEARER: the dummy "AQ==", RFC 7628 3.2.3;
 * XOAUTH2: an empty line), a fresh token is tried once more, and the
 * failure carries the server's text and its error status. */
static void test_oauth_refused(void)
{
	static const struct {
		const char *cap, *mech, *answer;
	} cases[] = {
		{"AUTH=OAUTHBEARER AUTH=XOAUTH2", "AUTHENTICATE OAUTHBEARER",
		 "SASL: AQ==\r\n"},
		{"AUTH=XOAUTH2", "AUTHENTICATE XOAUTH2", "SASL: \r\n"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct peer *p = peer_start(cases[i].cap, NULL, NULL);
		struct imap_account account = *peer_account(p);
		GError *error = NULL;
		int calls = 0;
		char *want = g_strdup_printf("%s\r\n%s", cases[i].mech,
					     cases[i].answer);
		char *twice = g_strdup_printf("%s%s", want, want);

		account.token_fn = counting_token;
		account.token_data = &calls;
		g_assert_null(imap_session_open(&account, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_AUTH);
		g_assert_nonnull(strstr(error->message, "token refused"));
		g_assert_nonnull(strstr(error->message, "invalid_token"));
		g_assert_null(strstr(error->message, "tok-"));
		g_assert_cmpint(calls, ==, 2);
		g_error_free(error);
		peer_stop(p);
		g_assert_cmpstr(p->transcript->str, ==, twice);
		peer_assert_done(p);
		peer_free(p);
		g_free(twice);
		g_free(want);
	}
}

/* A server without either mechanism: a clear error, no token asked. */
static void test_oauth_unsupported(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_account account = *peer_account(p);
	GError *error = NULL;
	int calls = 0;

	account.token_fn = counting_token;
	account.token_data = &calls;
	g_assert_null(imap_session_open(&account, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED);
	g_assert_nonnull(strstr(error->message, "OAUTHBEARER"));
	g_assert_cmpint(calls, ==, 0);
	g_error_free(error);
	peer_stop(p);
	peer_free(p);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/auth/oauth-responses", test_oauth_responses);
	g_test_add_func("/auth/oauth-known-base64", test_oauth_known_base64);
	g_test_add_func("/auth/oauth-refused", test_oauth_refused);
	g_test_add_func("/auth/oauth-unsupported", test_oauth_unsupported);
	testtls_setup();
	ret = g_test_run();
	testtls_teardown();
	return ret;
}
