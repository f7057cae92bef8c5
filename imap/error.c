/* error.c - the IMAP_ERROR domain. */
#include "config.h"

#include <string.h>

#include "imap-error.h"

G_DEFINE_QUARK(imap - error - quark, imap_error)

gboolean imap_error_is_fatal(const GError *error)
{
	if (error == NULL || error->domain != IMAP_ERROR)
		return FALSE;
	switch (error->code) {
	case IMAP_ERROR_PROTOCOL:
	case IMAP_ERROR_IO:
	case IMAP_ERROR_TIMEOUT:
	case IMAP_ERROR_TLS:
	case IMAP_ERROR_BYE:
	case IMAP_ERROR_UNKNOWN_OUTCOME:
	case IMAP_ERROR_SOURCE:
		return TRUE;
	default:
		return FALSE;
	}
}

gboolean imap_error_is_unreachable(const GError *error)
{
	if (error == NULL || error->domain != IMAP_ERROR)
		return FALSE;
	switch (error->code) {
	case IMAP_ERROR_IO:
	case IMAP_ERROR_TIMEOUT:
	case IMAP_ERROR_TLS:
	case IMAP_ERROR_BYE:
	case IMAP_ERROR_OFFLINE:
	case IMAP_ERROR_UNAVAILABLE:
		return TRUE;
	default:
		return FALSE;
	}
}

gboolean imap_refusal_is_connection_limit(const char *code, const char *text)
{
	char *low;
	gboolean hit;

	if (code != NULL && (g_ascii_strcasecmp(code, "UNAVAILABLE") == 0 ||
			     g_ascii_strcasecmp(code, "LIMIT") == 0))
		return TRUE;
	if (text == NULL)
		return FALSE;
	low = g_ascii_strdown(text, -1);
	hit = strstr(low, "too many simultaneous connections") != NULL ||
	      strstr(low, "too many connections") != NULL ||
	      strstr(low, "maximum number of connections") != NULL;
	g_free(low);
	return hit;
}
