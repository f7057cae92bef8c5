/* resync.h - the cheap questions the live view asks about a mailbox that
 * changed, instead of listing it again.
 *
 * Both run on a session from the pool (imap_pool_run(): idempotent) with
 * the mailbox examined (imap_session_ensure()), and fail with
 * IMAP_ERROR_STALE when its UIDVALIDITY is not @uidvalidity.
 *
 * Threading: like session.h.
 */
#ifndef IMAPFS_IMAP_RESYNC_H
#define IMAPFS_IMAP_RESYNC_H

#include <glib.h>
#include <stdint.h>

#include "session.h"

/* Makes @mailbox the examined mailbox of @session and, if it already
 * was, sends NOOP: a session that examined it earlier only learns of
 * messages that arrived since when the server next reports (a "UID FETCH
 * n:*" before that matches the old last message instead). */
gboolean imap_session_catch_up(struct imap_session *session,
			       const char *mailbox, uint32_t uidvalidity,
			       GError **error);

/* The UIDs that exist in @mailbox up to @upto, as sorted merged ranges
 * (struct imap_uid_range appended to @ranges): "UID SEARCH RETURN (ALL)
 * UID lo:hi" with ESEARCH (a few bytes for a folder without holes), else
 * "UID SEARCH UID lo:hi", in windows of a few thousand UIDs so that no
 * reply line outgrows the parser's limit. */
gboolean imap_resync_uid_ranges(struct imap_session *session,
				const char *mailbox, uint32_t uidvalidity,
				uint32_t upto, GArray *ranges, GError **error);

/* The flags of every message changed since @modseq (CONDSTORE: "UID
 * FETCH 1:* (UID FLAGS) (CHANGEDSINCE m)"): @fn(uid, flags, modseq) per
 * message, @flags space-separated without \Recent, valid during the call.
 * *highest_r gets the highest MODSEQ seen (or stays). Fails with
 * IMAP_ERROR_UNSUPPORTED without CONDSTORE. */
typedef void imap_flags_fn(uint32_t uid, const char *flags, uint64_t modseq,
			   void *user_data);
gboolean imap_session_flags_since(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint64_t modseq, imap_flags_fn *fn,
				  void *user_data, uint64_t *highest_r,
				  GError **error);

#endif
