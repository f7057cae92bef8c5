/* mutate.h - the requests that change the server: APPEND, STORE, EXPUNGE,
 * MOVE, COPY, CREATE, DELETE, RENAME, and the look-ups the write path
 * needs to decide what happened (STATUS, a UID's existence, a search for a
 * message just appended).
 *
 * None of these is idempotent, so none is ever retried here; run them with
 * imap_pool_run_once(), never imap_pool_run().  When the connection dies
 * after the command was (partly) sent and before its tagged reply, the
 * request fails with IMAP_ERROR_UNKNOWN_OUTCOME (the error message says
 * what was sent); the caller then asks the server on a fresh session what
 * happened (imap_session_find_appended(), imap_session_uid_state()) before
 * it answers the user.  A failure before anything was sent keeps its own
 * code (IO, TIMEOUT, ...): then nothing happened on the server.
 *
 * Mailboxes are selected read-write (SELECT) for STORE/EXPUNGE/MOVE (the
 * session remembers whether it has EXAMINEd or SELECTed a mailbox and
 * upgrades when needed; COPY and the look-ups are happy with EXAMINE);
 * reads keep working on a SELECTed mailbox because they use BODY.PEEK.
 * CLOSE (which expunges) is never sent.  Every message is addressed by (mailbox,
 * UIDVALIDITY, UID): a UIDVALIDITY that no longer matches fails with
 * IMAP_ERROR_STALE before anything is sent.  Every string goes through
 * command.h (atom, quoted string or literal).
 *
 * Threading: like session.h (one thread per session at a time).
 */
#ifndef IMAPFS_IMAP_MUTATE_H
#define IMAPFS_IMAP_MUTATE_H

#include <glib.h>
#include <stdint.h>

#include "command.h"
#include "parser.h"
#include "session.h"

/* The APPENDLIMIT the server announced (RFC 7889: APPENDLIMIT=n in
 * CAPABILITY), or 0 when it announced none. */
uint64_t imap_session_append_limit(const struct imap_session *session);

/* The personal namespace prefix ("" or e.g. "INBOX.") and its hierarchy
 * delimiter as NAMESPACE reported them (delimiter 0 if unknown). The
 * prefix is owned by the session. */
const char *imap_session_personal_prefix(const struct imap_session *session);
char imap_session_personal_delimiter(const struct imap_session *session);

/* TRUE if @flag can be sent as a flag: "\Word" (a letter after the
 * backslash, then atom characters) or a keyword made of atom characters.
 * Everything else (spaces, quotes, parentheses, "*", "]", 8-bit, controls)
 * is refused by the requests below with IMAP_ERROR_INVALID. */
gboolean imap_flag_is_valid(const char *flag);

/* TRUE if the space-separated flag list @list (NULL reads as "") holds
 * @flag, compared without regard to ASCII case. */
gboolean imap_flags_contain(const char *list, const char *flag);

/* Formats @when (seconds since the epoch) as an IMAP date-time in UTC,
 * "dd-Mon-yyyy hh:mm:ss +0000", into @buf.  FALSE if it does not fit or
 * the year is outside 1..9999. */
gboolean imap_format_datetime(gint64 when, char *buf, size_t size);

struct imap_append_req {
	const char *mailbox;
	/* Where the message bytes come from (exactly source.size bytes,
	 * already in the form to send: CRLF line ends). */
	struct imap_literal_source source;
	/* Space-separated flags to set ("" or NULL: none). \Recent is
	 * dropped; a word that is not a flag atom (imap_flag_is_valid())
	 * fails with IMAP_ERROR_INVALID before sending; flags the mailbox
	 * does not allow are the caller's problem (the server answers NO). */
	const char *flags;
	/* INTERNALDATE, seconds since the epoch; 0 = let the server pick. */
	gint64 internaldate;
	/* The bytes contain NUL: send a literal8 (needs BINARY, else fails
	 * with IMAP_ERROR_INVALID before sending anything). */
	gboolean binary;
};

struct imap_append_result {
	/* From APPENDUID (UIDPLUS); both 0 when the server did not say. */
	uint32_t uidvalidity;
	uint32_t uid;
};

/* APPENDs one message, streaming its bytes from @req->source (never
 * holding it whole in memory), with LITERAL+ / LITERAL- (up to 4096
 * bytes) or a synchronising literal as the server allows.  Before sending
 * it checks APPENDLIMIT (IMAP_ERROR_TOOBIG).  Errors: the tagged NO's code
 * (OVERQUOTA, TOOBIG, TRYCREATE, NOPERM, CANNOT, ...), IMAP_ERROR_SOURCE
 * when the source's read failed (the connection is then broken: the
 * literal cannot be completed), IMAP_ERROR_UNKNOWN_OUTCOME when the
 * connection died after the first byte of the command was sent.  On
 * success with APPENDUID, result->uidvalidity may differ from the one the
 * caller knows: the mailbox was recreated, the caller's view is stale. */
gboolean imap_session_append(struct imap_session *session,
			     const struct imap_append_req *req,
			     struct imap_append_result *result, GError **error);

/* Reads a STATUS attribute list (@n args: name, value, ...; from a STATUS
 * reply or LIST-STATUS) into @st: MESSAGES into exists, UIDNEXT,
 * UIDVALIDITY, HIGHESTMODSEQ; what is not in it is left alone, values
 * out of range are ignored. Returns whether MESSAGES was there. */
gboolean imap_status_items_parse(const struct imap_arg *items, size_t n,
				 struct imap_mailbox_status *st);

/* STATUS @mailbox (MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ]).  Fails
 * with IMAP_ERROR_NONEXISTENT for a mailbox that does not exist.  Fills
 * exists from MESSAGES.  Idempotent (may run through imap_pool_run). */
gboolean imap_session_status(struct imap_session *session, const char *mailbox,
			     struct imap_mailbox_status *status_r,
			     GError **error);

/* Whether UID @uid still exists in @mailbox (UID FETCH uid (UID FLAGS
 * [MODSEQ]), after a NOOP when @mailbox is already selected, so that
 * expunges from other connections are seen; NO [EXPUNGEISSUED] counts as
 * gone); *modseq_r gets its MODSEQ (0 without CONDSTORE), *flags_r
 * (may be NULL; caller frees) its flags.  Fails with IMAP_ERROR_STALE if
 * UIDVALIDITY is not @uidvalidity.  Idempotent. */
gboolean imap_session_uid_state(struct imap_session *session,
				const char *mailbox, uint32_t uidvalidity,
				uint32_t uid, gboolean *exists_r,
				uint64_t *modseq_r, char **flags_r,
				GError **error);

/* Finds a message appended to @mailbox at or after UID @min_uid whose
 * Message-ID header is @message_id (UID SEARCH UID min:* HEADER
 * Message-ID ...) and whose RFC822.SIZE is @size (LARGER size-1 SMALLER
 * size+1).  @message_id NULL or "": size and UID range only, which may
 * match another client's message.  Used without UIDPLUS and after an
 * APPEND's outcome was unknown; run it on a fresh session (a NOOP is sent
 * first when @mailbox is already selected).  *uid_r gets the highest such
 * UID >= @min_uid, or 0 when there is none.  Fails with IMAP_ERROR_STALE if
 * UIDVALIDITY is not @uidvalidity (0 = any; *uidvalidity_r, may be NULL,
 * gets the one found).  Idempotent. */
gboolean imap_session_find_appended(struct imap_session *session,
				    const char *mailbox, uint32_t uidvalidity,
				    uint32_t min_uid, const char *message_id,
				    uint64_t size, uint32_t *uid_r,
				    uint32_t *uidvalidity_r, GError **error);

enum imap_store_mode {
	IMAP_STORE_SET,	   /* FLAGS */
	IMAP_STORE_ADD,	   /* +FLAGS */
	IMAP_STORE_REMOVE, /* -FLAGS */
};

/* UID STORE @uid [(UNCHANGEDSINCE @unchangedsince)] FLAGS.SILENT (...)
 * @unchangedsince 0: unconditional (also without CONDSTORE).  A
 * conditional store the server refuses ([MODIFIED]) fails with
 * IMAP_ERROR_MODIFIED.  A flag outside the mailbox's PERMANENTFLAGS
 * (unless it allows \* and the flag is a keyword) fails with
 * IMAP_ERROR_INVALID before sending (not checked for IMAP_STORE_REMOVE);
 * a mailbox the server SELECTs [READ-ONLY] fails with IMAP_ERROR_NOPERM;
 * @unchangedsince != 0 without CONDSTORE fails with
 * IMAP_ERROR_UNSUPPORTED (pass the MODSEQ imap_session_uid_state() gave,
 * which is 0 without CONDSTORE).  *modseq_r (may be NULL) gets the new
 * MODSEQ when the server says (0 otherwise). */
gboolean imap_session_store_flags(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint32_t uid, enum imap_store_mode mode,
				  const char *flags, uint64_t unchangedsince,
				  uint64_t *modseq_r, GError **error);

/* The PERMANENTFLAGS of @mailbox from its last SELECT/EXAMINE on this
 * session (SELECTs it if needed: EXAMINE always announces none),
 * space-separated, "\*" included when the server allows new keywords.
 * When SELECT announced no PERMANENTFLAGS, all flags are permanent
 * (RFC 3501 7.1): the FLAGS list plus "\*".  Caller frees. NULL on
 * error. */
char *imap_session_permanent_flags(struct imap_session *session,
				   const char *mailbox, GError **error);

/* Removes one message: UID STORE uid +FLAGS.SILENT (\Deleted), then
 * UID EXPUNGE uid.  Never a bare EXPUNGE: without UIDPLUS it fails with
 * IMAP_ERROR_UNSUPPORTED before sending anything, unless @flag_only.
 * @flag_only: only the STORE is sent (UIDPLUS or not), no EXPUNGE of any
 * kind: the message stays, flagged \Deleted.  Outcome unknown after the
 * STORE or the EXPUNGE: check with imap_session_uid_state() (gone, or
 * there with \Deleted). *kept_r (may be NULL) is set TRUE when UID EXPUNGE
 * completed without the server reporting the message expunged (no
 * EXPUNGE or VANISHED response, RFC 3501 7.4.1): it still exists (Gmail's
 * All Mail keeps it), and FALSE otherwise (also with @flag_only). */
gboolean imap_session_expunge_uid(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint32_t uid, gboolean flag_only,
				  gboolean *kept_r, GError **error);

struct imap_copy_result {
	/* From COPYUID (UIDPLUS), both 0 if the server did not say. */
	uint32_t uidvalidity;
	uint32_t uid;
};

/* Moves one message to @dest: UID MOVE (RFC 6851) when offered, else
 * UID COPY and, only after it succeeded, the original's removal: STORE
 * \Deleted + UID EXPUNGE (which needs UIDPLUS; without it fails with
 * IMAP_ERROR_UNSUPPORTED before anything is sent), or with @flag_only the
 * STORE alone (no UIDPLUS needed; the original stays, flagged \Deleted).
 * A missing @dest fails with IMAP_ERROR_NONEXISTENT ([TRYCREATE]) and
 * leaves the source intact.  *result gets COPYUID (from the untagged OK
 * that MOVE sends, or the tagged one); a garbled or foreign COPYUID leaves
 * it 0.  *flagged_r (may be NULL) is set TRUE when the original was only
 * flagged (the COPY fallback with @flag_only), FALSE otherwise.  If the
 * fallback COPY succeeded and its STORE/EXPUNGE failed, *result is filled
 * and the error says that both copies exist. */
gboolean imap_session_move(struct imap_session *session, const char *mailbox,
			   uint32_t uidvalidity, uint32_t uid, const char *dest,
			   gboolean flag_only, struct imap_copy_result *result,
			   gboolean *flagged_r, GError **error);

/* UID COPY one message to @dest (the source stays). */
gboolean imap_session_copy(struct imap_session *session, const char *mailbox,
			   uint32_t uidvalidity, uint32_t uid, const char *dest,
			   struct imap_copy_result *result, GError **error);

/* CREATE / DELETE / RENAME a mailbox (server names, modified UTF-7).
 * Errors: ALREADYEXISTS, NONEXISTENT, HASCHILDREN/INUSE, NOPERM, ... as
 * classified in imap-error.h.  A session that had @name selected forgets
 * it (DELETE, RENAME).  DELETE first asks STATUS and fails with
 * IMAP_ERROR_NOTEMPTY, sending no DELETE, while the mailbox holds
 * messages (a DELETE would destroy them); it leaves a selected @name with
 * UNSELECT (never CLOSE, which expunges). */
gboolean imap_session_create(struct imap_session *session, const char *name,
			     GError **error);
gboolean imap_session_delete(struct imap_session *session, const char *name,
			     GError **error);
gboolean imap_session_rename(struct imap_session *session, const char *from,
			     const char *to, GError **error);

/* Leaves the selected mailbox (servers refuse to delete or rename it, and
 * Dovecot disconnects a session whose selected mailbox another one
 * deleted or renamed): UNSELECT, never CLOSE (which expunges);
 * without UNSELECT (Courier) an EXAMINE of a name that cannot exist,
 * whose NO leaves none selected (RFC 3501 6.3.1). The session forgets
 * its selection either way. FALSE with *error on a connection failure,
 * or a NO/BAD to UNSELECT. */
gboolean imap_session_leave_selected(struct imap_session *session,
				     GError **error);

#endif
