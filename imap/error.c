/* error.c - the IMAP_ERROR domain. */
#include "config.h"

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
