/* test_auth.c - imap/auth.c: the OAuth2 SASL initial responses (RFC 7628
 * OAUTHBEARER, Google's XOAUTH2), decoded and compared byte for byte. */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "auth.h"

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

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/auth/oauth-responses", test_oauth_responses);
	g_test_add_func("/auth/oauth-known-base64", test_oauth_known_base64);
	return g_test_run();
}
