/* errmap.c - the one place where an IMAP error becomes an errno. The table
 * is documented in docs/SEMANTICS.md. */
#include "config.h"

#include <errno.h>

#include "imap-error.h"

int fs_errno_from_error(const GError *error)
{
	if (error == NULL || error->domain != IMAP_ERROR)
		return EIO;
	switch (error->code) {
	case IMAP_ERROR_NONEXISTENT:
		return ENOENT;
	case IMAP_ERROR_NOPERM:
		return EACCES;
	case IMAP_ERROR_OVERQUOTA:
		return EDQUOT;
	case IMAP_ERROR_STALE:
		return ESTALE;
	case IMAP_ERROR_INVALID:
		return EINVAL;
	case IMAP_ERROR_TIMEOUT:
		/* ETIMEDOUT would be more precise, but tools print EIO's
		 * message users recognise from other network filesystems; we
		 * never answer EAGAIN (callers would spin). */
		return EIO;
	case IMAP_ERROR_CANCELLED:
		return EINTR;
	case IMAP_ERROR_TOOBIG:
		return EFBIG;
	case IMAP_ERROR_CANNOT:
		return EPERM;
	case IMAP_ERROR_MODIFIED:
		return ESTALE;
	case IMAP_ERROR_EXISTS:
		return EEXIST;
	case IMAP_ERROR_INUSE:
		return EBUSY;
	case IMAP_ERROR_NOTEMPTY:
		return ENOTEMPTY;
	default:
		/* PROTOCOL, IO, TLS, AUTH, UNSUPPORTED, NO, BAD, BYE,
		 * UNKNOWN_OUTCOME, SOURCE, OFFLINE, UNAVAILABLE, THROTTLED (once
		 * the bounded retries of imap_pool_run() are spent, or at once
		 * for a write) */
		return EIO;
	}
}
