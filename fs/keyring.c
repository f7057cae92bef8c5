/* keyring.c - see keyring.h. */
#include "config.h"

#include <string.h>

#ifdef HAVE_LIBSECRET
#include <libsecret/secret.h>
#endif

#include "imap-error.h"
#include "keyring.h"

#ifdef HAVE_LIBSECRET

/* Matches items of any schema (secret-tool's are
 * org.freedesktop.Secret.Generic) by these attributes alone. */
static const SecretSchema keyring_schema = {
	.name = "org.freedesktop.Secret.Generic",
	.flags = SECRET_SCHEMA_DONT_MATCH_NAME,
	.attributes =
		{
			{"service", SECRET_SCHEMA_ATTRIBUTE_STRING},
			{"user", SECRET_SCHEMA_ATTRIBUTE_STRING},
			{"host", SECRET_SCHEMA_ATTRIBUTE_STRING},
			{NULL, 0},
		},
};

gboolean fs_keyring_available(void)
{
	return TRUE;
}

char *fs_keyring_lookup(const char *user, const char *host, GError **error)
{
	GError *local = NULL;
	gchar *secret;
	char *copy, *nl;

	secret = secret_password_lookup_nonpageable_sync(
		&keyring_schema, NULL, &local, "service", "imapfs", "user",
		user, "host", host, NULL);
	if (local != NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "password_keyring: no keyring to ask (%s)",
			    local->message);
		g_error_free(local);
		return NULL;
	}
	if (secret == NULL || secret[0] == '\0') {
		secret_password_free(secret);
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "password_keyring: no password in the keyring for "
			    "service=imapfs user=%s host=%s (store one with: "
			    "secret-tool store --label='imapfs %s@%s' service "
			    "imapfs user %s host %s)",
			    user, host, user, host, user, host);
		return NULL;
	}
	/* One line, like the other sources. */
	nl = strpbrk(secret, "\r\n");
	copy = g_strndup(secret,
			 nl != NULL ? (gsize)(nl - secret) : strlen(secret));
	secret_password_free(secret);
	return copy;
}

#else

gboolean fs_keyring_available(void)
{
	return FALSE;
}

char *fs_keyring_lookup(const char *user, const char *host, GError **error)
{
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
		    "password_keyring: this imapfs was built without libsecret "
		    "(meson -Dkeyring=enabled, with libsecret-1-dev)");
	return NULL;
}

#endif
