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

#include "parser.h"
#include "session.h"

/* Sends ENABLE for what the server offers of CONDSTORE and QRESYNC
 * ("ENABLE CONDSTORE QRESYNC"; QRESYNC implies CONDSTORE) and notes
 * whether QRESYNC took effect (the ENABLED reply names it): from then on
 * the server reports expunges as VANISHED instead of EXPUNGE and every
 * FETCH carries the UID. Nothing is sent without ENABLE and CONDSTORE.
 * Called by imap_session_open() right after login. */
gboolean imap_resync_enable(struct imap_session *session, GError **error);

/* TRUE if QRESYNC is enabled on @session (imap_resync_enable()). */
gboolean imap_session_qresync(const struct imap_session *session);

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

/* Reads "* VANISHED [(EARLIER)] uid-set" (RFC 7162 section 3.2.10):
 * appends its UIDs within @first..@last to @ranges (struct
 * imap_uid_range), sorted and merged; *earlier_r (may be NULL) tells
 * whether it was (EARLIER). Ranges may come in either order; a 0, a "*",
 * stray bytes or more than 65,536 ranges make it malformed (FALSE,
 * @ranges unchanged). However wide the set, it costs one range per range
 * of the reply, never one entry per UID. FALSE also for a response that
 * is not VANISHED. Pure. */
gboolean imap_resync_parse_vanished(const struct imap_response *resp,
				    uint32_t first, uint32_t last,
				    GArray *ranges, gboolean *earlier_r);

/* How many messages a "* VANISHED uid-set" without (EARLIER) takes out
 * of the selected mailbox now (its UIDs, at most G_MAXUINT32); 0 for any
 * other response, an (EARLIER) one or a malformed one. Pure. */
uint32_t imap_resync_vanished_now(const struct imap_response *resp);

/* The number of UIDs in @ranges (struct imap_uid_range). Pure. */
uint64_t imap_uid_ranges_count(const GArray *ranges);

/* QRESYNC (RFC 7162): what changed among UIDs @first..@last of @mailbox
 * since @modseq, in one command per window of a few thousand UIDs:
 * "UID FETCH a:b (UID FLAGS) (CHANGEDSINCE m VANISHED)". @fn(uid, flags,
 * modseq) for each message whose flags changed; the UIDs the server
 * reports gone (VANISHED (EARLIER) and plain VANISHED alike) appended to
 * @vanished as sorted merged ranges. Replies for UIDs outside
 * @first..@last are ignored. The windows keep every VANISHED line below
 * the parser's 64 KiB limit however many holes the folder has. The
 * mailbox is examined if it is not (no NOOP: a caller whose session may
 * have examined it long ago calls imap_session_catch_up() first).
 * *highest_r (may be NULL) gets the highest MODSEQ seen if above. Fails
 * with IMAP_ERROR_UNSUPPORTED unless QRESYNC is enabled, IMAP_ERROR_STALE
 * on another UIDVALIDITY, IMAP_ERROR_PROTOCOL for a malformed VANISHED. */
gboolean imap_session_qresync_since(struct imap_session *session,
				    const char *mailbox, uint32_t uidvalidity,
				    uint32_t first, uint32_t last,
				    uint64_t modseq, imap_flags_fn *fn,
				    void *user_data, GArray *vanished,
				    uint64_t *highest_r, GError **error);

/* The flags of every message with a UID in 1..@upto ("UID FETCH a:b
 * (UID FLAGS)" in windows of 20,000 UIDs, so no one reply grows with the
 * folder): @fn as for imap_session_flags_since() (modseq 0 unless the
 * server sends it). For a server without CONDSTORE, the only way to see
 * flag changes made while we were not listening. */
gboolean imap_resync_flags_all(struct imap_session *session,
			       const char *mailbox, uint32_t uidvalidity,
			       uint32_t upto, imap_flags_fn *fn,
			       void *user_data, GError **error);

#endif
