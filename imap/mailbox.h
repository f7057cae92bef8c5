/* mailbox.h - what a client knows of its selected mailbox, kept current
 * from untagged data (RFC 3501 / 9051 §7.4, CONDSTORE and QRESYNC, RFC
 * 7162).
 *
 * The state is the MSN -> UID map, EXISTS, UIDNEXT, UIDVALIDITY and
 * HIGHESTMODSEQ.  It is applied incrementally: EXISTS, EXPUNGE, VANISHED
 * (UID sets with ranges, also "(EARLIER)"), FETCH (UID FLAGS MODSEQ) and
 * the OK response codes UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, NOMODSEQ.
 * What changed is collected for the owner, who drains it with
 * imap_mailbox_take_changes(): expunged UIDs (as ranges), flag changes of
 * known UIDs, and whether new messages (UIDs not yet known) appeared.
 *
 * The map holds a sorted prefix of known UIDs followed by messages whose
 * UID is not known yet (0).  A UID is only ever learnt for the first
 * unknown message, and only if it is above the one before it, so a
 * FETCH that would break the order cannot make the map name a wrong UID;
 * fill it with "FETCH n:* (UID)" from imap_mailbox_first_unknown().
 *
 * Untrusted input: an MSN out of range, an EXISTS that shrinks, an
 * EXPUNGE of a message whose UID is unknown, a VANISHED that cannot be
 * matched, a UID that contradicts the map, more than the limits allow --
 * none of them crash or guess.  They set "desync": the owner must rebuild
 * the state (a new SELECT, or a UID listing).  The map never grows beyond
 * max_messages entries and the pending changes beyond max_pending
 * (then desync too): a number the server sends never sizes an allocation.
 *
 * Threading: owned by the thread reading the connection; no locks.
 */
#ifndef IMAPFS_IMAP_MAILBOX_H
#define IMAPFS_IMAP_MAILBOX_H

#include <glib.h>
#include <stdint.h>

#include "parser.h"
#include "uidrange.h"
#include "untagged.h"

struct imap_mailbox;

/* A flag change of a known UID. */
struct imap_flag_change {
	uint32_t uid;
	uint64_t modseq; /* 0 if the server did not say */
	char *flags;	 /* space-separated, \Recent removed; never NULL */
};

/* What imap_mailbox_take_changes() hands over. */
struct imap_mailbox_changes {
	GArray *expunged; /* struct imap_uid_range, sorted, merged */
	GArray *flags;	  /* struct imap_flag_change (clear func frees) */
	gboolean grew;	  /* messages whose UID is unknown appeared */
	/* UIDVALIDITY changed from a known value: every UID is void. */
	gboolean uidvalidity_changed;
	/* The state could not follow the server: rebuild it. */
	gboolean desync;
};

/* Defaults for imap_mailbox_new(): 4,000,000 messages (16 MB of map),
 * 100,000 pending changes. */
#define IMAP_MAILBOX_MAX_MESSAGES 4000000u
#define IMAP_MAILBOX_MAX_PENDING 100000u

/* A state for no mailbox yet. @max_messages / @max_pending 0 = defaults.
 * Never returns NULL. */
struct imap_mailbox *imap_mailbox_new(uint32_t max_messages,
				      uint32_t max_pending);

/* Frees. NULL is allowed. */
void imap_mailbox_free(struct imap_mailbox *mb);

/* Forgets everything (before a SELECT/EXAMINE): no UIDVALIDITY, empty
 * map, no pending changes. */
void imap_mailbox_reset(struct imap_mailbox *mb);

/* Registers the state's handlers in @table (EXISTS, EXPUNGE, VANISHED,
 * FETCH and the OK codes). @mb must outlive the table's use. */
void imap_mailbox_register(struct imap_mailbox *mb,
			   struct imap_untagged *table);

/* Applies one untagged response (what the registered handlers do);
 * anything else is ignored. */
void imap_mailbox_apply(struct imap_mailbox *mb,
			const struct imap_response *resp);

/* Applies a response code of a tagged response or an untagged status
 * (@code upper case, @args the raw text after it, either may be NULL). */
void imap_mailbox_note_code(struct imap_mailbox *mb, const char *code,
			    const char *args);

/* Accessors. */
uint32_t imap_mailbox_uidvalidity(const struct imap_mailbox *mb);
uint32_t imap_mailbox_uidnext(const struct imap_mailbox *mb);
uint64_t imap_mailbox_highestmodseq(const struct imap_mailbox *mb);
/* The number of messages (the last EXISTS, minus expunges since). */
uint32_t imap_mailbox_exists(const struct imap_mailbox *mb);
/* The UID of message @msn (1-based), 0 if unknown or out of range. */
uint32_t imap_mailbox_uid(const struct imap_mailbox *mb, uint32_t msn);
/* The first MSN whose UID is unknown, 0 if every UID is known. */
uint32_t imap_mailbox_first_unknown(const struct imap_mailbox *mb);
/* TRUE if something made the state unreliable since the last reset. */
gboolean imap_mailbox_desynced(const struct imap_mailbox *mb);

/* Hands the changes collected since the last call to @changes_r (the
 * caller frees its arrays with imap_mailbox_changes_clear()) and clears
 * them, desync included. */
void imap_mailbox_take_changes(struct imap_mailbox *mb,
			       struct imap_mailbox_changes *changes_r);
void imap_mailbox_changes_clear(struct imap_mailbox_changes *changes);

/* Parses an IMAP sequence-set of UIDs ("1:3,7,9:8"; no "*") into sorted,
 * merged ranges appended to @ranges (struct imap_uid_range). At most
 * @max_ranges ranges before merging; returns FALSE (and leaves @ranges
 * unchanged) on a syntax error, a 0, a "*" or too many ranges. Pure. */
gboolean imap_uid_set_parse(const char *text, size_t max_ranges,
			    GArray *ranges);

/* The flag atoms of a FLAGS list (@n arguments) as a space-separated
 * string without \Recent; other argument types are skipped. Caller
 * frees. Pure. */
char *imap_flag_list_string(const struct imap_arg *list, size_t n);

/* Sorts @ranges (struct imap_uid_range) and merges overlapping or
 * adjacent ones, in place. Pure. */
void imap_uid_ranges_normalize(GArray *ranges);

/* TRUE if @uid is in @ranges (sorted, merged). Pure. */
gboolean imap_uid_ranges_contain(const GArray *ranges, uint32_t uid);

#endif
