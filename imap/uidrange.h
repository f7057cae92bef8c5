/* uidrange.h - an inclusive range of UIDs, shared by the session's
 * listings (session.h) and the selected-mailbox state (mailbox.h). */
#ifndef IMAPFS_IMAP_UIDRANGE_H
#define IMAPFS_IMAP_UIDRANGE_H

#include <stdint.h>

/* UIDs @lo..@hi, lo <= hi. */
struct imap_uid_range {
	uint32_t lo, hi;
};

#endif
