/* session.h - an authenticated IMAP session and the typed requests the
 * filesystem needs.
 *
 * This is the fs/ <-> imap/ boundary for reading (in the spirit of isync's
 * driver.h): every request is a blocking call with a bounded wait that
 * either fills typed results or fails with an IMAP_ERROR.  Messages are
 * always addressed by (mailbox, UIDVALIDITY, UID): a request made with a
 * UIDVALIDITY that no longer matches fails with IMAP_ERROR_STALE, so an old
 * UID can never name another message.  Mailboxes are opened with EXAMINE
 * (read-only) and bodies fetched with BODY.PEEK, so reading never changes
 * \Seen.
 *
 * Threading: a session is used by one thread at a time (the pool hands it
 * out); imap_session_abort() may be called from any thread.
 */
#ifndef IMAPFS_IMAP_SESSION_H
#define IMAPFS_IMAP_SESSION_H

#include <glib.h>
#include <stdint.h>

#include "uidrange.h"

struct imap_session;

/* An OAuth2 access token source: returns a fresh token (g_malloc'd; the
 * caller wipes and frees it) or NULL with an IMAP_ERROR saying why. Called
 * for every login attempt, from whichever thread opens a session: it must
 * be thread-safe and bounded in time. */
typedef char *imap_token_fn(void *user_data, GError **error);

/* What is needed to open sessions; owned by the caller and immutable while
 * sessions exist. */
struct imap_account {
	char *host;
	uint16_t port;
	gboolean implicit_tls;
	char *cafile; /* may be NULL */
	char *user;
	char *password; /* never logged; unused with token_fn */
	/* Non-NULL: log in with OAuth2 tokens from token_fn(token_data). */
	imap_token_fn *token_fn;
	void *token_data;
	int timeout_ms; /* bound on every single wait */
};

/* The three parts of a NAMESPACE reply (RFC 2342). */
enum imap_ns_kind {
	IMAP_NS_PERSONAL,
	IMAP_NS_OTHER, /* other users' mailboxes */
	IMAP_NS_SHARED,
};

struct imap_mailbox_info {
	char *name;	   /* the server's name (modified UTF-7), as in LIST */
	char delimiter;	   /* 0 for a flat namespace */
	gboolean noselect; /* \Noselect or \NonExistent */
	gboolean nonexistent;  /* \NonExistent: only a parent of others */
	gboolean has_children; /* \HasChildren (CHILDREN / LIST-EXTENDED) */
	char *special_use;     /* e.g. "\\Trash", or NULL */
	/* The namespace the mailbox is in: its kind and prefix as NAMESPACE
	 * gave them ("" for a server without NAMESPACE). The primary one is
	 * the first personal namespace (INBOX's), which a mail client shows
	 * at the top with its prefix stripped; ns_secondary marks a personal
	 * namespace after the first. A zeroed info (NULL prefix and rel_name)
	 * reads as a primary mailbox with prefix "". */
	enum imap_ns_kind ns_kind;
	char *ns_prefix;
	gboolean ns_secondary;
	/* @name without @ns_prefix, e.g. "Archive" for "INBOX.Archive" on a
	 * server whose personal prefix is "INBOX."; INBOX itself stays
	 * "INBOX". */
	char *rel_name;
	/* MYRIGHTS (RFC 4314) of the mailbox, e.g. "lrs", or NULL when not
	 * asked: the server has no ACL, the mailbox is \Noselect, or it is
	 * in the primary personal namespace (the user's own mailboxes; see
	 * docs/SEMANTICS.md). "" when the server refused to tell. */
	char *rights;
	/* What LIST-STATUS said of it (0: not said): UIDVALIDITY, MESSAGES,
	 * UIDNEXT -- the live view tells a mailbox another client renamed
	 * from one deleted by them. */
	uint32_t uidvalidity, exists, uidnext;
	/* The name it had before a RENAME, when the server said so (the
	 * OLDNAME extended data item, RFC 5258 section 9 / RFC 5465 5.4);
	 * else NULL. */
	char *old_name;
};

struct imap_mailbox_status {
	uint32_t uidvalidity;
	uint32_t uidnext; /* 0 if the server did not say */
	uint32_t exists;
	uint64_t highestmodseq; /* 0 without CONDSTORE */
};

struct imap_message_meta {
	uint32_t uid;
	uint64_t size;	     /* RFC822.SIZE */
	gint64 internaldate; /* seconds since the epoch (UTC) */
	char *flags;	     /* space-separated, \Recent removed; never NULL */
};

/* Connects and logs in: TLS as the account says, CAPABILITY, then
 * with a token source AUTHENTICATE OAUTHBEARER or XOAUTH2 (a fresh token
 * per session, one more after a refusal; see imap/auth.h), else
 * AUTHENTICATE PLAIN with SASL-IR when offered, else LOGIN (unless
 * LOGINDISABLED), then CAPABILITY again, ENABLE CONDSTORE (and QRESYNC) when
 * offered (imap_resync_enable()) and
 * NAMESPACE. Returns NULL with IMAP_ERROR_AUTH carrying the server's text
 * when the credentials are refused, or another IMAP_ERROR. */
struct imap_session *imap_session_open(const struct imap_account *account,
				       GError **error);

/* Logs out (bounded) and frees. NULL is allowed. */
void imap_session_free(struct imap_session *session);

/* Makes a blocked call return promptly with an error. Any thread. */
void imap_session_abort(struct imap_session *session);

/* FALSE once the connection broke; the owner should free the session. */
gboolean imap_session_is_usable(const struct imap_session *session);

/* TRUE if the server announced capability @cap (ASCII case-insensitive).
 * Call only while the session is not in use by another thread. */
gboolean imap_session_has_cap(const struct imap_session *session,
			      const char *cap);

/* The mailbox currently examined, or NULL. */
const char *imap_session_selected(const struct imap_session *session);

/* TRUE if @info is in the primary personal namespace (see above). */
gboolean imap_mailbox_info_is_primary(const struct imap_mailbox_info *info);

/* Lists the mailboxes of every namespace NAMESPACE announced (with
 * SPECIAL-USE info when the server offers LIST-EXTENDED and SPECIAL-USE):
 * one LIST "" "<prefix>*" per namespace, plus LIST "" "INBOX" when the
 * personal prefix is not empty (a pattern "INBOX.*" cannot match INBOX
 * itself). Each name is assigned to the namespace with the longest
 * matching prefix (INBOX always to the primary personal one); a
 * namespace's own container (its prefix without the delimiter) and names
 * under no announced prefix are left out; duplicates are dropped. With
 * the ACL extension, MYRIGHTS is asked for every selectable mailbox
 * outside the primary personal namespace. Returns an array of struct
 * imap_mailbox_info * that frees its elements, or NULL on error. */
GPtrArray *imap_session_list(struct imap_session *session, GError **error);

/* TRUE if imap_session_list() asks for each mailbox's UIDVALIDITY,
 * MESSAGES and UIDNEXT in the LIST itself (LIST-EXTENDED and
 * LIST-STATUS): without, its infos carry none (0). Same calling rule as
 * imap_session_has_cap(). */
gboolean imap_session_list_has_status(const struct imap_session *session);

/* Sends EXAMINE @mailbox (always, so the status is fresh) and fills
 * @status_r. Fails with IMAP_ERROR_NONEXISTENT if the server says the
 * mailbox does not exist. */
gboolean imap_session_examine(struct imap_session *session, const char *mailbox,
			      struct imap_mailbox_status *status_r,
			      GError **error);

/* Fetches UID, RFC822.SIZE, INTERNALDATE and FLAGS for every message of
 * @mailbox with a UID in @uid_first..@uid_last (0 = "*"). The mailbox is
 * examined first unless it is already selected with @uidvalidity.
 * Fails with IMAP_ERROR_STALE if the mailbox's UIDVALIDITY is not
 * @uidvalidity (0 = accept any). Calls @fn for each message in server
 * order; @meta is only valid during the call. */
typedef void imap_meta_fn(const struct imap_message_meta *meta,
			  void *user_data);
gboolean imap_session_fetch_meta(struct imap_session *session,
				 const char *mailbox, uint32_t uidvalidity,
				 uint32_t uid_first, uint32_t uid_last,
				 imap_meta_fn *fn, void *user_data,
				 GError **error);

/* Like imap_session_fetch_meta() with only (UID FLAGS): @meta's size and
 * internaldate are 0. With @changedsince (a HIGHESTMODSEQ; 0 = none) the
 * server is asked for CONDSTORE's (CHANGEDSINCE @changedsince): only
 * messages whose flags changed since then are reported. Only UIDs in
 * @uid_first..@uid_last reach @fn. */
gboolean imap_session_fetch_flags(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint32_t uid_first, uint32_t uid_last,
				  uint64_t changedsince, imap_meta_fn *fn,
				  void *user_data, GError **error);

/* Parses an IMAP sequence set of UIDs ("1:5,7,9:12"; ranges in either
 * order, no "*") and appends it, clipped to @first..@last, sorted and
 * merged, to @ranges (struct imap_uid_range). FALSE if malformed (0, a
 * number above 2^32-1, stray characters); @ranges may then hold part. */
gboolean imap_parse_uid_set(const char *text, uint32_t first, uint32_t last,
			    GArray *ranges);

/* Fetches bytes @offset..@offset+@length of the whole message (BODY[])
 * with UID FETCH uid BODY.PEEK[]<offset.length> and hands them to @fn in
 * order, as they arrive: the literal is streamed from the network buffer
 * (imap_parser_set_literal_sink()) when the reply names the UID before
 * the body, else delivered once complete. @fn's @offset is the message
 * offset of @data. *len_r (may be NULL) gets the total delivered; less
 * than @length means the message ends there, 0 that @offset is at or
 * beyond its end. A server that ignores the partial range and returns the
 * whole body is handled. @length 0 (with @offset 0) fetches the whole
 * message with BODY.PEEK[] (servers stream that faster than partial
 * fetches). Fails with IMAP_ERROR_STALE if UIDVALIDITY changed or the UID
 * no longer exists, IMAP_ERROR_NO if the reply does not match the request
 * or carries no data; @fn may have been called before a failure. */
typedef void imap_body_data_fn(void *user_data, uint64_t offset,
			       const void *data, size_t len);
gboolean imap_session_fetch_body(struct imap_session *session,
				 const char *mailbox, uint32_t uidvalidity,
				 uint32_t uid, uint64_t offset, uint64_t length,
				 imap_body_data_fn *fn, void *user_data,
				 uint64_t *len_r, GError **error);

/* Fetches the first @max_len bytes of several messages of @mailbox in one
 * command (UID FETCH uid,uid,... (UID BODY.PEEK[]<0.max_len>)), calling
 * @fn as each message's reply arrives with a g_malloc'd buffer the
 * callback takes over. Messages the server does not return are simply not
 * reported. @max_len 0 fetches whole messages (BODY.PEEK[], which servers
 * stream faster than partial fetches). Fails with IMAP_ERROR_STALE if
 * UIDVALIDITY is not @uidvalidity. At most 1,000 UIDs per call. */
typedef void imap_body_fn(uint32_t uid, char *data, size_t len,
			  void *user_data);
gboolean imap_session_fetch_bodies(struct imap_session *session,
				   const char *mailbox, uint32_t uidvalidity,
				   const uint32_t *uids, size_t n,
				   uint64_t max_len, imap_body_fn *fn,
				   void *user_data, GError **error);

/* GETQUOTAROOT INBOX: storage used and limit in KiB. Fails with
 * IMAP_ERROR_UNSUPPORTED without the QUOTA capability or when no STORAGE
 * resource is reported. */
gboolean imap_session_quota(struct imap_session *session, uint64_t *used_kib_r,
			    uint64_t *limit_kib_r, GError **error);

/* Parses an IMAP date-time ("17-Jul-1996 02:44:25 -0700", day may have a
 * leading space) into seconds since the epoch. Returns FALSE if invalid. */
gboolean imap_parse_datetime(const char *text, gint64 *time_r);

#endif
