/* mailbox.c - see mailbox.h.
 *
 * Invariant of the map: uids[0 .. known) are known and strictly
 * ascending, uids[known .. len) are 0.  EXISTS appends zeros, EXPUNGE and
 * VANISHED remove entries (which keeps the invariant), a FETCH may only
 * turn uids[known] into a UID above uids[known - 1].
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mailbox.h"

struct imap_mailbox {
	uint32_t max_messages;
	uint32_t max_pending;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	GArray *uids; /* uint32_t, index MSN - 1 */
	uint32_t known;
	/* Pending changes (see imap_mailbox_take_changes()). */
	GArray *expunged; /* struct imap_uid_range, unsorted */
	GArray *flags;	  /* struct imap_flag_change */
	gboolean grew;
	gboolean uidvalidity_changed;
	gboolean desync;
};

static void mailbox_flag_change_clear(gpointer p)
{
	g_free(((struct imap_flag_change *)p)->flags);
}

static GArray *mailbox_new_flags(void)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(struct imap_flag_change));

	g_array_set_clear_func(a, mailbox_flag_change_clear);
	return a;
}

static GArray *mailbox_new_ranges(void)
{
	return g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
}

struct imap_mailbox *imap_mailbox_new(uint32_t max_messages,
				      uint32_t max_pending)
{
	struct imap_mailbox *mb = g_new0(struct imap_mailbox, 1);

	mb->max_messages =
		max_messages != 0 ? max_messages : IMAP_MAILBOX_MAX_MESSAGES;
	mb->max_pending =
		max_pending != 0 ? max_pending : IMAP_MAILBOX_MAX_PENDING;
	mb->uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	mb->expunged = mailbox_new_ranges();
	mb->flags = mailbox_new_flags();
	return mb;
}

void imap_mailbox_free(struct imap_mailbox *mb)
{
	if (mb == NULL)
		return;
	g_array_unref(mb->uids);
	g_array_unref(mb->expunged);
	g_array_unref(mb->flags);
	g_free(mb);
}

void imap_mailbox_reset(struct imap_mailbox *mb)
{
	mb->uidvalidity = 0;
	mb->uidnext = 0;
	mb->highestmodseq = 0;
	g_array_set_size(mb->uids, 0);
	mb->known = 0;
	g_array_set_size(mb->expunged, 0);
	g_array_set_size(mb->flags, 0);
	mb->grew = FALSE;
	mb->uidvalidity_changed = FALSE;
	mb->desync = FALSE;
}

uint32_t imap_mailbox_uidvalidity(const struct imap_mailbox *mb)
{
	return mb->uidvalidity;
}

uint32_t imap_mailbox_uidnext(const struct imap_mailbox *mb)
{
	return mb->uidnext;
}

uint64_t imap_mailbox_highestmodseq(const struct imap_mailbox *mb)
{
	return mb->highestmodseq;
}

uint32_t imap_mailbox_exists(const struct imap_mailbox *mb)
{
	return mb->uids->len;
}

uint32_t imap_mailbox_uid(const struct imap_mailbox *mb, uint32_t msn)
{
	if (msn == 0 || msn > mb->uids->len)
		return 0;
	return g_array_index(mb->uids, uint32_t, msn - 1);
}

uint32_t imap_mailbox_first_unknown(const struct imap_mailbox *mb)
{
	return mb->known < mb->uids->len ? mb->known + 1 : 0;
}

gboolean imap_mailbox_desynced(const struct imap_mailbox *mb)
{
	return mb->desync;
}

/* ---- UID sets ---- */

static int mailbox_range_cmp(const void *a, const void *b)
{
	const struct imap_uid_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* See mailbox.h. */
void imap_uid_ranges_normalize(GArray *r)
{
	guint out = 0;

	if (r->len == 0)
		return;
	qsort(r->data, r->len, sizeof(struct imap_uid_range),
	      mailbox_range_cmp);
	for (guint i = 1; i < r->len; i++) {
		struct imap_uid_range *last =
			&g_array_index(r, struct imap_uid_range, out);
		struct imap_uid_range *cur =
			&g_array_index(r, struct imap_uid_range, i);

		if ((uint64_t)cur->lo <= (uint64_t)last->hi + 1) {
			if (cur->hi > last->hi)
				last->hi = cur->hi;
		} else {
			g_array_index(r, struct imap_uid_range, ++out) = *cur;
		}
	}
	g_array_set_size(r, out + 1);
}

static gboolean mailbox_parse_uid(const char **p, uint32_t *v_r)
{
	uint64_t v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return FALSE;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > G_MAXUINT32)
			return FALSE;
		s++;
	}
	if (v == 0)
		return FALSE;
	*p = s;
	*v_r = (uint32_t)v;
	return TRUE;
}

gboolean imap_uid_set_parse(const char *text, size_t max_ranges, GArray *ranges)
{
	GArray *r = mailbox_new_ranges();
	const char *p = text;

	if (text == NULL || *text == '\0')
		goto fail;
	for (;;) {
		struct imap_uid_range one;

		if (!mailbox_parse_uid(&p, &one.lo))
			goto fail;
		one.hi = one.lo;
		if (*p == ':') {
			p++;
			if (!mailbox_parse_uid(&p, &one.hi))
				goto fail;
			if (one.hi < one.lo) {
				uint32_t t = one.hi;

				one.hi = one.lo;
				one.lo = t;
			}
		}
		if (r->len >= max_ranges)
			goto fail;
		g_array_append_val(r, one);
		if (*p == '\0')
			break;
		if (*p != ',')
			goto fail;
		p++;
	}
	imap_uid_ranges_normalize(r);
	g_array_append_vals(ranges, r->data, r->len);
	imap_uid_ranges_normalize(ranges);
	g_array_unref(r);
	return TRUE;
fail:
	g_array_unref(r);
	return FALSE;
}

gboolean imap_uid_ranges_contain(const GArray *ranges, uint32_t uid)
{
	guint lo = 0, hi = ranges->len;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		const struct imap_uid_range *r =
			&g_array_index(ranges, struct imap_uid_range, mid);

		if (uid < r->lo)
			hi = mid;
		else if (uid > r->hi)
			lo = mid + 1;
		else
			return TRUE;
	}
	return FALSE;
}

/* ---- applying responses ---- */

static void mailbox_note_expunged(struct imap_mailbox *mb, uint32_t lo,
				  uint32_t hi)
{
	struct imap_uid_range r = {lo, hi};

	if (mb->expunged->len >= mb->max_pending) {
		/* Too much to remember one by one: merge what we have; if
		 * that does not help, the owner resyncs. */
		imap_uid_ranges_normalize(mb->expunged);
		if (mb->expunged->len >= mb->max_pending) {
			mb->desync = TRUE;
			return;
		}
	}
	g_array_append_val(mb->expunged, r);
}

static void mailbox_exists(struct imap_mailbox *mb, uint32_t n)
{
	uint32_t len = mb->uids->len;

	if (n > mb->max_messages) {
		/* Never sized by a number from the server beyond the
		 * limit: what we cannot map, we cannot follow. */
		mb->desync = TRUE;
		n = mb->max_messages;
	}
	if (n < len) {
		/* EXISTS may not shrink (RFC 9051 §7.4.1): messages went
		 * without EXPUNGE, we cannot tell which. */
		mb->desync = TRUE;
		g_array_set_size(mb->uids, n);
		if (mb->known > n)
			mb->known = n;
		return;
	}
	if (n > len) {
		g_array_set_size(mb->uids, n);
		memset(&g_array_index(mb->uids, uint32_t, len), 0,
		       (size_t)(n - len) * sizeof(uint32_t));
		mb->grew = TRUE;
	}
}

static void mailbox_expunge(struct imap_mailbox *mb, uint32_t msn)
{
	uint32_t uid;

	if (msn == 0 || msn > mb->uids->len) {
		mb->desync = TRUE;
		return;
	}
	uid = g_array_index(mb->uids, uint32_t, msn - 1);
	g_array_remove_index(mb->uids, msn - 1);
	if (uid != 0) {
		mb->known--;
		mailbox_note_expunged(mb, uid, uid);
	} else {
		/* A message we never knew the UID of: fine for the map, but
		 * if the owner had learnt it elsewhere it must look. */
		mb->desync = TRUE;
	}
}

/* "* VANISHED [(EARLIER)] uid-set" */
static void mailbox_vanished(struct imap_mailbox *mb,
			     const struct imap_response *resp)
{
	const struct imap_arg *args = resp->args;
	size_t n = resp->count;
	gboolean earlier = FALSE;
	const char *set;
	GArray *ranges;
	guint out = 0;

	if (n >= 1 && args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *l;
		size_t ln;

		imap_arg_get_list(&args[0], &l, &ln);
		earlier = ln == 1 && imap_arg_atom_equals(&l[0], "EARLIER");
		if (!earlier) {
			mb->desync = TRUE;
			return;
		}
		args++;
		n--;
	}
	if (n != 1 || !imap_arg_get_atom(&args[0], &set)) {
		mb->desync = TRUE;
		return;
	}
	ranges = mailbox_new_ranges();
	/* A 64 KiB line holds at most ~13,000 ranges anyway. */
	if (!imap_uid_set_parse(set, 65536, ranges)) {
		mb->desync = TRUE;
		g_array_unref(ranges);
		return;
	}
	for (guint i = 0; i < ranges->len; i++) {
		const struct imap_uid_range *r =
			&g_array_index(ranges, struct imap_uid_range, i);

		mailbox_note_expunged(mb, r->lo, r->hi);
	}
	/* One pass over the map, however large the ranges: entries whose
	 * UID is in the set go. */
	for (guint i = 0; i < mb->uids->len; i++) {
		uint32_t uid = g_array_index(mb->uids, uint32_t, i);

		if (uid != 0 && imap_uid_ranges_contain(ranges, uid)) {
			mb->known--;
			continue;
		}
		g_array_index(mb->uids, uint32_t, out++) = uid;
	}
	/* Without EARLIER the messages leave the mailbox now (RFC 7162
	 * §3.2.10); if some of them had no known UID we cannot tell which
	 * MSNs went. */
	if (!earlier && out == mb->uids->len && mb->known < mb->uids->len)
		mb->desync = TRUE;
	g_array_set_size(mb->uids, out);
	g_array_unref(ranges);
}

/* A flag list as a space-separated string, \Recent left out (it is not a
 * flag one can set, and it changes on every session). */
char *imap_flag_list_string(const struct imap_arg *list, size_t n)
{
	GString *out = g_string_new(NULL);

	for (size_t i = 0; i < n; i++) {
		const char *f;

		if (!imap_arg_get_atom(&list[i], &f) ||
		    g_ascii_strcasecmp(f, "\\Recent") == 0)
			continue;
		if (out->len > 0)
			g_string_append_c(out, ' ');
		g_string_append(out, f);
	}
	return g_string_free(out, FALSE);
}

/* Learns @uid for @msn if the invariant allows; returns the UID the map
 * holds for @msn afterwards (0 if unknown). */
static uint32_t mailbox_learn_uid(struct imap_mailbox *mb, uint32_t msn,
				  uint32_t uid)
{
	uint32_t *slot = &g_array_index(mb->uids, uint32_t, msn - 1);

	if (*slot != 0) {
		if (*slot == uid)
			return uid;
		/* Contradicts the map: which one is meant is unknown, so
		 * nothing of this FETCH is applied to either. */
		mb->desync = TRUE;
		return 0;
	}
	if (msn - 1 != mb->known)
		return 0; /* out of order: stays unknown */
	if (msn > 1 && g_array_index(mb->uids, uint32_t, msn - 2) >= uid) {
		mb->desync = TRUE; /* UIDs must ascend with MSNs */
		return 0;
	}
	*slot = uid;
	mb->known++;
	if (uid >= mb->uidnext && uid < G_MAXUINT32)
		mb->uidnext = uid + 1;
	return uid;
}

/* "* n FETCH (UID u FLAGS (...) MODSEQ (m) ...)" */
static void mailbox_fetch(struct imap_mailbox *mb,
			  const struct imap_response *resp)
{
	const struct imap_arg *items, *flags = NULL;
	size_t n, nflags = 0;
	uint32_t uid = 0, msn = resp->number;
	uint64_t modseq = 0;
	gboolean have_uid = FALSE, have_flags = FALSE;
	struct imap_flag_change ch;

	if (resp->count != 1 || !imap_arg_get_list(&resp->args[0], &items, &n))
		return;
	if (msn == 0 || msn > mb->uids->len) {
		mb->desync = TRUE;
		return;
	}
	for (size_t i = 0; i + 1 < n; i += 2) {
		const struct imap_arg *v = &items[i + 1];

		if (imap_arg_atom_equals(&items[i], "UID")) {
			have_uid = imap_arg_get_uint32(v, &uid) && uid != 0;
		} else if (imap_arg_atom_equals(&items[i], "FLAGS")) {
			have_flags = imap_arg_get_list(v, &flags, &nflags);
		} else if (imap_arg_atom_equals(&items[i], "MODSEQ")) {
			const struct imap_arg *l;
			size_t ln;

			if (imap_arg_get_list(v, &l, &ln) && ln == 1)
				imap_arg_get_uint64(&l[0], &modseq);
		}
	}
	if (have_uid)
		uid = mailbox_learn_uid(mb, msn, uid);
	else
		uid = imap_mailbox_uid(mb, msn);
	if (modseq > mb->highestmodseq)
		mb->highestmodseq = modseq;
	if (!have_flags)
		return;
	if (uid == 0)
		return; /* a new message: its metadata is fetched with it */
	if (mb->flags->len >= mb->max_pending) {
		mb->desync = TRUE;
		return;
	}
	ch.uid = uid;
	ch.modseq = modseq;
	ch.flags = imap_flag_list_string(flags, nflags);
	g_array_append_val(mb->flags, ch);
}

void imap_mailbox_note_code(struct imap_mailbox *mb, const char *code,
			    const char *args)
{
	guint64 v;

	if (code == NULL)
		return;
	if (strcmp(code, "NOMODSEQ") == 0) {
		mb->highestmodseq = 0;
		return;
	}
	if (args == NULL ||
	    !g_ascii_string_to_unsigned(args, 10, 0, G_MAXUINT64, &v, NULL))
		return;
	if (strcmp(code, "UIDVALIDITY") == 0 && v <= G_MAXUINT32) {
		if (mb->uidvalidity != 0 && mb->uidvalidity != v) {
			/* Every UID we hold is void now. */
			mb->uidvalidity_changed = TRUE;
			g_array_set_size(mb->uids, 0);
			mb->known = 0;
			g_array_set_size(mb->expunged, 0);
			g_array_set_size(mb->flags, 0);
		}
		mb->uidvalidity = (uint32_t)v;
	} else if (strcmp(code, "UIDNEXT") == 0 && v <= G_MAXUINT32) {
		mb->uidnext = (uint32_t)v;
	} else if (strcmp(code, "HIGHESTMODSEQ") == 0) {
		mb->highestmodseq = v;
	}
}

void imap_mailbox_apply(struct imap_mailbox *mb,
			const struct imap_response *resp)
{
	if (resp == NULL || resp->kind != IMAP_RESPONSE_UNTAGGED)
		return;
	if (resp->status != IMAP_STATUS_NONE) {
		if (resp->status == IMAP_STATUS_OK)
			imap_mailbox_note_code(mb, resp->code, resp->code_args);
		return;
	}
	if (resp->keyword == NULL)
		return;
	if (strcmp(resp->keyword, "VANISHED") == 0) {
		mailbox_vanished(mb, resp);
		return;
	}
	if (!resp->has_number)
		return;
	if (strcmp(resp->keyword, "EXISTS") == 0)
		mailbox_exists(mb, resp->number);
	else if (strcmp(resp->keyword, "EXPUNGE") == 0)
		mailbox_expunge(mb, resp->number);
	else if (strcmp(resp->keyword, "FETCH") == 0)
		mailbox_fetch(mb, resp);
}

static void mailbox_handler(const struct imap_response *resp, void *user_data)
{
	imap_mailbox_apply(user_data, resp);
}

void imap_mailbox_register(struct imap_mailbox *mb, struct imap_untagged *table)
{
	static const char *const names[] = {"EXISTS", "EXPUNGE", "VANISHED",
					    "FETCH", "OK"};

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		imap_untagged_register(table, names[i], mailbox_handler, mb);
}

void imap_mailbox_take_changes(struct imap_mailbox *mb,
			       struct imap_mailbox_changes *changes_r)
{
	imap_uid_ranges_normalize(mb->expunged);
	changes_r->expunged = mb->expunged;
	changes_r->flags = mb->flags;
	changes_r->grew = mb->grew;
	changes_r->uidvalidity_changed = mb->uidvalidity_changed;
	changes_r->desync = mb->desync;
	mb->expunged = mailbox_new_ranges();
	mb->flags = mailbox_new_flags();
	mb->grew = FALSE;
	mb->uidvalidity_changed = FALSE;
	mb->desync = FALSE;
}

void imap_mailbox_changes_clear(struct imap_mailbox_changes *changes)
{
	g_clear_pointer(&changes->expunged, g_array_unref);
	g_clear_pointer(&changes->flags, g_array_unref);
}
