/* idle.c - see idle.h.
 *
 * One loop per listener thread: connect (with backoff), set up (NOTIFY,
 * or EXAMINE + UID map), then IDLE and listen until the server says
 * something, the owner wakes us, the watchdog or the renewal is due.
 * Every response read on the connection -- inside a command or not --
 * goes through one untagged table (imap/untagged.c): STATUS and LIST
 * handlers here, the selected mailbox's state (imap/mailbox.c) there.
 * Hooks run with no IDLE in progress only when they need the connection
 * (the UID map); in NOTIFY mode the IDLE stays up while they run.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "conn.h"
#include "idle.h"
#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "session-int.h"
#include "session-private.h"
#include "untagged.h"

#define IDLE_DEFAULT_WATCHDOG_MS (5 * 60 * 1000)
#define IDLE_DEFAULT_RENEW_MS (25 * 60 * 1000)
#define IDLE_BACKOFF_FIRST_MS 1000
#define IDLE_BACKOFF_MAX_MS (60 * 1000)
/* UID fetches after an EXAMINE, for messages arriving meanwhile. */
#define IDLE_EXAMINE_ROUNDS 4
/* A connection that lasted this long was not refused: reconnect at once. */
#define IDLE_STABLE_US (30 * G_USEC_PER_SEC)
/* Second look at the mailbox list after a LIST notification. */
#define IDLE_LIST_RECHECK_US (1500 * 1000)
/* Coalescing of a burst of news (idle_settle()). */
#define IDLE_SETTLE_MS 100
#define IDLE_SETTLE_MAX_MS 1000
/* Mailboxes whose merged STATUS is remembered (NOTIFY): more than any
 * account has; beyond it the cache starts over. */
#define IDLE_MAX_KNOWN 100000u

struct imap_idle {
	struct imap_idle_params params;
	struct imap_idle_hooks hooks;
	GThread *thread;
	int wake_fd;	 /* eventfd: imap_idle_wake(), imap_idle_stop() */
	gint stopping;	 /* atomic */
	gint connects;	 /* atomic */
	gint probes;	 /* atomic */
	gint renewals;	 /* atomic */
	gint connected;	 /* atomic */
	gint use_notify; /* atomic */

	/* Everything below belongs to the listener thread. */
	struct imap_session *session;
	struct imap_untagged *table;
	struct imap_mailbox *mb;
	char *selected; /* the mailbox IDLEd on (no NOTIFY) */
	/* NOTIFY: server name -> struct imap_mailbox_status *, merged. */
	GHashTable *known;
	/* Names whose STATUS came since the hooks last ran (a set). */
	GHashTable *pending;
	gboolean list_changed;
	/* NOTIFY: when to look at the mailbox list once more after a LIST
	 * notification (monotonic us, 0: not planned). */
	gint64 list_recheck_at;
};

/* ---- untagged handlers ---- */

/* "* STATUS mailbox (MESSAGES n UIDNEXT n UIDVALIDITY n HIGHESTMODSEQ n
 * ...)": merged into what is known of the mailbox. */
static void idle_on_status(const struct imap_response *resp, void *user_data)
{
	struct imap_idle *idle = user_data;
	const struct imap_arg *items;
	const char *name;
	size_t n;
	struct imap_mailbox_status *st;

	if (resp->count != 2 || !imap_arg_get_astring(&resp->args[0], &name) ||
	    !imap_arg_get_list(&resp->args[1], &items, &n))
		return;
	st = g_hash_table_lookup(idle->known, name);
	if (st == NULL) {
		if (g_hash_table_size(idle->known) >= IDLE_MAX_KNOWN)
			g_hash_table_remove_all(idle->known);
		st = g_new0(struct imap_mailbox_status, 1);
		g_hash_table_insert(idle->known, g_strdup(name), st);
	}
	imap_status_items_parse(items, n, st);
	g_hash_table_add(idle->pending, g_strdup(name));
}

static void idle_on_list(const struct imap_response *resp, void *user_data)
{
	struct imap_idle *idle = user_data;

	(void)resp;
	idle->list_changed = TRUE;
}

/* ---- waiting ---- */

static gboolean idle_stopping(struct imap_idle *idle)
{
	return g_atomic_int_get(&idle->stopping) != 0;
}

static void idle_drain_wake(struct imap_idle *idle)
{
	uint64_t v;

	while (read(idle->wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

/* Sleeps @ms or until woken. */
static void idle_sleep(struct imap_idle *idle, int ms)
{
	struct pollfd pfd = {.fd = idle->wake_fd, .events = POLLIN};

	(void)poll(&pfd, 1, ms);
	idle_drain_wake(idle);
}

/* ---- the hooks ---- */

static gboolean idle_wanted(struct imap_idle *idle, gboolean connected)
{
	return idle->hooks.wanted == NULL ||
	       idle->hooks.wanted(idle->hooks.user_data, idle->params.index,
				  connected);
}

static void idle_lost(struct imap_idle *idle, const GError *err,
		      gboolean connecting)
{
	if (idle->hooks.lost != NULL && !idle_stopping(idle))
		idle->hooks.lost(idle->hooks.user_data, idle->params.index, err,
				 connecting);
}

static void idle_run_hooks(struct imap_idle *idle)
{
	GHashTableIter it;
	gpointer k;
	GHashTable *pending = idle->pending;

	if (idle->list_changed && idle->hooks.mailboxes != NULL) {
		idle->list_changed = FALSE;
		idle->hooks.mailboxes(idle->hooks.user_data);
		/* Dovecot 2.3 was seen to send nothing for a RENAME or
		 * DELETE that closely followed the CREATE it had just
		 * reported: look again a moment later. */
		idle->list_recheck_at =
			g_get_monotonic_time() + IDLE_LIST_RECHECK_US;
	}
	idle->list_changed = FALSE;
	idle->pending =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_hash_table_iter_init(&it, pending);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		struct imap_mailbox_status *st =
			g_hash_table_lookup(idle->known, k);

		if (st != NULL && idle->hooks.status != NULL)
			idle->hooks.status(idle->hooks.user_data, k, st);
	}
	g_hash_table_destroy(pending);
}

/* "FETCH first:* (UID)" on the examined mailbox: the MSN->UID map learns
 * the UIDs from the replies (its FETCH handler). */
static gboolean idle_fetch_uids(struct imap_idle *idle, uint32_t first,
				GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new("FETCH");
	char *set = g_strdup_printf("%u:*", first);
	gboolean ok;

	imap_cmd_add_atom(cmd, set);
	imap_cmd_add_atom(cmd, "(UID)");
	g_free(set);
	ok = imap_session_run(idle->session, cmd, imap_untagged_dispatch_cb,
			      idle->table, NULL, error);
	imap_cmd_free(cmd);
	return ok;
}

/* The selected mailbox's changes to the owner; fills the UID map for
 * new messages first. FALSE if the connection failed or the state must
 * be rebuilt (then idle->selected is cleared). */
static gboolean idle_deliver_selected(struct imap_idle *idle, GError **error)
{
	struct imap_mailbox_changes ch;
	struct imap_mailbox_status st = {0};
	uint32_t first;

	if (idle->selected == NULL)
		return TRUE;
	first = imap_mailbox_first_unknown(idle->mb);
	if (first != 0 && !idle_fetch_uids(idle, first, error))
		return FALSE;
	imap_mailbox_take_changes(idle->mb, &ch);
	st.uidvalidity = imap_mailbox_uidvalidity(idle->mb);
	st.uidnext = imap_mailbox_uidnext(idle->mb);
	st.exists = imap_mailbox_exists(idle->mb);
	st.highestmodseq = imap_mailbox_highestmodseq(idle->mb);
	if (idle->hooks.selected != NULL &&
	    (ch.grew || ch.desync || ch.uidvalidity_changed ||
	     ch.expunged->len > 0 || ch.flags->len > 0))
		idle->hooks.selected(idle->hooks.user_data, idle->selected, &st,
				     &ch);
	if (ch.desync || ch.uidvalidity_changed)
		g_clear_pointer(&idle->selected, g_free);
	imap_mailbox_changes_clear(&ch);
	return TRUE;
}

/* ---- setting up ---- */

static gboolean idle_examine(struct imap_idle *idle, const char *mailbox,
			     GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new("EXAMINE");
	struct imap_response *tagged = NULL;
	struct imap_mailbox_changes ch;
	gboolean ok;

	g_clear_pointer(&idle->selected, g_free);
	imap_mailbox_reset(idle->mb);
	ok = imap_cmd_add_string(cmd, mailbox, strlen(mailbox), FALSE, error);
	if (ok)
		ok = imap_session_run(idle->session, cmd,
				      imap_untagged_dispatch_cb, idle->table,
				      &tagged, error);
	imap_cmd_free(cmd);
	if (tagged != NULL)
		imap_mailbox_note_code(idle->mb, tagged->code,
				       tagged->code_args);
	imap_response_free(tagged);
	if (!ok)
		return FALSE;
	/* Messages that arrive while the UIDs are fetched ("* n EXISTS"
	 * inside the FETCH) belong to the starting point too: without their
	 * UIDs the status below would give the old UIDNEXT, and their
	 * arrival, discarded with the other changes, would never be told.
	 * A few rounds at most (a server that never stops growing is
	 * caught up by the next delivery). */
	for (int round = 0; round < IDLE_EXAMINE_ROUNDS; round++) {
		uint32_t first = imap_mailbox_first_unknown(idle->mb);

		if (first == 0)
			break;
		if (!idle_fetch_uids(idle, first, error))
			return FALSE;
	}
	/* What the EXAMINE itself reported is the starting point, not a
	 * change; but the owner's view may be older than it: it compares
	 * with this status. */
	imap_mailbox_take_changes(idle->mb, &ch);
	imap_mailbox_changes_clear(&ch);
	idle->selected = g_strdup(mailbox);
	if (idle->hooks.status != NULL) {
		struct imap_mailbox_status st = {
			.uidvalidity = imap_mailbox_uidvalidity(idle->mb),
			.uidnext = imap_mailbox_uidnext(idle->mb),
			.exists = imap_mailbox_exists(idle->mb),
			.highestmodseq = imap_mailbox_highestmodseq(idle->mb),
		};

		idle->hooks.status(idle->hooks.user_data, mailbox, &st);
	}
	return TRUE;
}

/* Nothing to IDLE on any more (the owner's pick: the mailbox may be
 * about to be deleted or renamed, and Dovecot cuts off a session whose
 * selected mailbox goes): leave it. FALSE on a connection failure. */
static gboolean idle_leave(struct imap_idle *idle, GError **error)
{
	GError *err = NULL;

	g_clear_pointer(&idle->selected, g_free);
	imap_mailbox_reset(idle->mb);
	if (imap_session_leave_selected(idle->session, &err))
		return TRUE;
	if (imap_error_is_fatal(err)) {
		g_propagate_error(error, err);
		return FALSE;
	}
	g_error_free(err);
	return TRUE;
}

static gboolean idle_setup_notify(struct imap_idle *idle, GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new("NOTIFY");
	GError *err = NULL;
	gboolean ok;

	/* STATUS: the server sends the state of every mailbox now, which
	 * is what a fresh connection must compare with. */
	imap_cmd_add_atom(cmd, idle->params.notify_events);
	ok = imap_session_run(idle->session, cmd, imap_untagged_dispatch_cb,
			      idle->table, NULL, &err);
	imap_cmd_free(cmd);
	if (ok)
		return TRUE;
	if (g_error_matches(err, IMAP_ERROR, IMAP_ERROR_NO) ||
	    g_error_matches(err, IMAP_ERROR, IMAP_ERROR_BAD)) {
		imapfs_info("watch: server refused NOTIFY (%s); using IDLE",
			    err->message);
		g_error_free(err);
		return FALSE;
	}
	g_propagate_error(error, err);
	return FALSE;
}

/* NOTIFY reports on the mailboxes of its first STATUS burst; one created
 * later may be missed (see below), so only those are polled. */
static gboolean idle_covered(void *ctx, const char *mailbox)
{
	struct imap_idle *idle = ctx;

	return g_hash_table_contains(idle->known, mailbox);
}

static gboolean idle_covered_none(void *ctx, const char *mailbox)
{
	(void)ctx;
	(void)mailbox;
	return FALSE;
}

/* The periodic work of listener 0: the owner's, then the STATUS polls it
 * asks for.  Also with NOTIFY: Dovecot 2.3.19 stops reporting mailbox
 * names (and never reports mailboxes created from then on) once another
 * session ran LIST ... RETURN (STATUS ...) -- which the mount's own
 * mailbox list does -- so the owner polls the list and the folders that
 * NOTIFY never spoke of. Returns FALSE on a connection failure;
 * *next_ms_r: when to come back (-1: never). */
static gboolean idle_poll(struct imap_idle *idle, gboolean notify,
			  int *next_ms_r, GError **error)
{
	char **names;

	*next_ms_r = -1;
	if (idle->params.index != 0 || idle->hooks.poll == NULL)
		return TRUE;
	names = idle->hooks.poll(idle->hooks.user_data,
				 notify ? idle_covered : idle_covered_none,
				 idle, next_ms_r);
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		struct imap_cmd *cmd;
		GError *err = NULL;
		gboolean ok;

		cmd = imap_cmd_new("STATUS");
		ok = imap_cmd_add_string(cmd, names[i], strlen(names[i]), FALSE,
					 &err);

		if (ok) {
			imap_cmd_add_atom(
				cmd,
				imap_session_has_cap(idle->session, "CONDSTORE")
					? "(MESSAGES UIDNEXT UIDVALIDITY "
					  "HIGHESTMODSEQ)"
					: "(MESSAGES UIDNEXT UIDVALIDITY)");
			ok = imap_session_run(idle->session, cmd,
					      imap_untagged_dispatch_cb,
					      idle->table, NULL, &err);
		}
		imap_cmd_free(cmd);
		if (!ok && imap_error_is_fatal(err)) {
			g_propagate_error(error, err);
			g_strfreev(names);
			return FALSE;
		}
		/* A mailbox that went: the mailbox list will tell. */
		if (!ok)
			idle->list_changed = TRUE;
		g_clear_error(&err);
	}
	g_strfreev(names);
	return TRUE;
}

/* ---- the loop ---- */

/* After news: goes on listening while more arrives, up to
 * IDLE_SETTLE_MS of quiet (at most IDLE_SETTLE_MAX_MS in all), so that a
 * burst is handled once and the echo of the mount's own change finds the
 * tree already updated by the write path. FALSE on a failure. */
static gboolean idle_settle(struct imap_idle *idle, struct imap_conn *conn,
			    GError **error)
{
	gint64 end = g_get_monotonic_time() + IDLE_SETTLE_MAX_MS * 1000;

	while (imap_conn_idling(conn) && g_get_monotonic_time() < end) {
		enum imap_conn_listen_result r = imap_conn_listen(
			conn, -1, IDLE_SETTLE_MS, imap_untagged_dispatch_cb,
			idle->table, error);

		if (r == IMAP_CONN_LISTEN_ERROR)
			return FALSE;
		if (r == IMAP_CONN_LISTEN_QUIET)
			break;
	}
	return TRUE;
}

/* Why a wait of the IDLE loop may end without news. */
enum idle_due { IDLE_DUE_WATCHDOG, IDLE_DUE_RENEW, IDLE_DUE_OTHER };

/* One connected session, until it fails (the error is returned), we stop
 * or the owner no longer wants it (NULL). */
static GError *idle_serve(struct imap_idle *idle, gboolean notify)
{
	struct imap_conn *conn = idle->session->conn;
	int watchdog = idle->params.watchdog_ms;
	GError *err = NULL;

	while (!idle_stopping(idle)) {
		gint64 renew_at;
		int next_poll = -1;
		gboolean again = FALSE;

		if (!notify && idle->params.index != 0 &&
		    idle->hooks.pick == NULL)
			break;
		if (!idle_wanted(idle, TRUE))
			break;
		if (!notify) {
			char *want = idle->hooks.pick != NULL
					     ? idle->hooks.pick(
						       idle->hooks.user_data,
						       idle->params.index)
					     : NULL;

			if (want == NULL && idle->selected != NULL &&
			    !idle_leave(idle, &err))
				break;
			if (want != NULL &&
			    g_strcmp0(want, idle->selected) != 0 &&
			    !idle_examine(idle, want, &err)) {
				g_free(want);
				if (imap_error_is_fatal(err))
					break;
				/* A mailbox that vanished: the list will
				 * tell; idle on nothing until then. */
				idle->list_changed = TRUE;
				g_clear_error(&err);
			} else {
				g_free(want);
			}
			if (!idle_deliver_selected(idle, &err))
				break;
		}
		if (!idle_poll(idle, notify, &next_poll, &err))
			break;
		idle_run_hooks(idle);
		if (idle->hooks.quiet != NULL)
			idle->hooks.quiet(idle->hooks.user_data,
					  idle->params.index);
		if (!imap_session_has_cap(idle->session, "IDLE")) {
			/* Nothing to listen with: polls only (listener 0),
			 * the others have nothing to do. */
			if (idle->params.index != 0)
				idle_sleep(idle, -1);
			else
				idle_sleep(idle, next_poll >= 0 ? next_poll
								: watchdog);
			continue;
		}
		if (!imap_conn_idle_begin(conn, imap_untagged_dispatch_cb,
					  idle->table, &err))
			break;
		renew_at = g_get_monotonic_time() +
			   (gint64)idle->params.renew_ms * 1000;
		while (!again) {
			gint64 left_us = renew_at - g_get_monotonic_time();
			int timeout = watchdog;
			enum idle_due due = IDLE_DUE_WATCHDOG;
			enum imap_conn_listen_result r;

			if (left_us <= 0) {
				g_atomic_int_inc(&idle->renewals);
				break;
			}
			if ((left_us + 999) / 1000 <= timeout) {
				timeout = (int)((left_us + 999) / 1000);
				due = IDLE_DUE_RENEW;
			}
			if (next_poll >= 0 && next_poll < timeout) {
				timeout = next_poll;
				due = IDLE_DUE_OTHER;
			}
			if (idle->list_recheck_at != 0) {
				int recheck =
					(int)CLAMP((idle->list_recheck_at -
						    g_get_monotonic_time() +
						    999) / 1000,
						   0, timeout);

				if (recheck < timeout)
					due = IDLE_DUE_OTHER;
				timeout = recheck;
			}
			r = imap_conn_listen(conn, idle->wake_fd, timeout,
					     imap_untagged_dispatch_cb,
					     idle->table, &err);
			if (r == IMAP_CONN_LISTEN_ERROR)
				goto out;
			if (r == IMAP_CONN_LISTEN_WOKEN) {
				idle_drain_wake(idle);
				again = TRUE;
			} else if (r == IMAP_CONN_LISTEN_QUIET &&
				   idle->list_recheck_at != 0 &&
				   g_get_monotonic_time() >=
					   idle->list_recheck_at) {
				idle->list_recheck_at = 0;
				if (idle->hooks.mailboxes != NULL)
					idle->hooks.mailboxes(
						idle->hooks.user_data);
			} else if (r == IMAP_CONN_LISTEN_QUIET) {
				/* Watchdog, renewal or a poll due: DONE, and
				 * the completion proves the server is
				 * alive. */
				if (due == IDLE_DUE_WATCHDOG)
					g_atomic_int_inc(&idle->probes);
				else if (due == IDLE_DUE_RENEW)
					g_atomic_int_inc(&idle->renewals);
				again = TRUE;
			} else if (!imap_conn_idling(conn)) {
				again = TRUE; /* the server ended it */
			} else if (!idle_settle(idle, conn, &err)) {
				goto out;
			} else if (notify) {
				/* Statuses and lists: the hooks use the
				 * pool, our IDLE can stay. */
				idle_run_hooks(idle);
			} else {
				again = TRUE; /* the UID map needs us */
			}
		}
		if (!imap_conn_idle_end(conn, imap_untagged_dispatch_cb,
					idle->table, &err))
			break;
	}
out:
	if (idle->hooks.quiet != NULL)
		idle->hooks.quiet(idle->hooks.user_data, idle->params.index);
	return err;
}

static gpointer idle_thread(gpointer data)
{
	struct imap_idle *idle = data;
	int backoff = 0;

	while (!idle_stopping(idle)) {
		GError *err = NULL;
		gboolean notify = FALSE;
		gint64 since;

		if (backoff > 0)
			idle_sleep(idle, backoff);
		if (idle_stopping(idle))
			break;
		if (!idle_wanted(idle, FALSE)) {
			/* Until the owner's state changes (the server is
			 * back, the live view is torn down): then at once. */
			imapfs_debug("watch %u: not connecting for now",
				     idle->params.index);
			idle_sleep(idle, -1);
			backoff = 0;
			continue;
		}
		idle->session = imap_session_open(idle->params.account, &err);
		if (idle->session == NULL) {
			imapfs_info("watch %u: cannot connect: %s",
				    idle->params.index, err->message);
			idle_lost(idle, err, TRUE);
			g_error_free(err);
			backoff = MIN(MAX(backoff * 2, IDLE_BACKOFF_FIRST_MS),
				      IDLE_BACKOFF_MAX_MS);
			continue;
		}
		g_atomic_int_inc(&idle->connects);
		g_atomic_int_set(&idle->connected, 1);
		since = g_get_monotonic_time();
		g_hash_table_remove_all(idle->known);
		g_hash_table_remove_all(idle->pending);
		g_clear_pointer(&idle->selected, g_free);
		if (idle->params.try_notify && idle->params.index == 0 &&
		    imap_session_has_cap(idle->session, "NOTIFY")) {
			notify = idle_setup_notify(idle, &err);
			if (err != NULL) {
				imapfs_info("watch: NOTIFY failed: %s",
					    err->message);
				g_clear_error(&err);
			}
		}
		g_atomic_int_set(&idle->use_notify, notify);
		imapfs_debug("watch %u: connected (%s)", idle->params.index,
			     notify ? "NOTIFY" : "IDLE");
		if (imap_session_is_usable(idle->session)) {
			if (idle->hooks.connected != NULL)
				idle->hooks.connected(idle->hooks.user_data,
						      idle->params.index,
						      notify);
			err = idle_serve(idle, notify);
		}
		if (err != NULL) {
			if (!idle_stopping(idle))
				imapfs_info("watch %u: connection lost (%s); "
					    "reconnecting",
					    idle->params.index, err->message);
			idle_lost(idle, err, FALSE);
			g_clear_error(&err);
		}
		/* A connection that served for a while (then a BYE at
		 * autologout, a server restart) is retried at once; one that
		 * fails soon after login backs off. */
		if (g_get_monotonic_time() - since > IDLE_STABLE_US)
			backoff = 0;
		else
			backoff = MIN(MAX(backoff * 2, IDLE_BACKOFF_FIRST_MS),
				      IDLE_BACKOFF_MAX_MS);
		if (imap_session_is_usable(idle->session) &&
		    imap_conn_idling(idle->session->conn)) {
			/* Stopping inside IDLE: leave it so that LOGOUT is
			 * understood. */
			if (!imap_conn_idle_end(idle->session->conn, NULL, NULL,
						NULL))
				imap_session_abort(idle->session);
		}
		g_clear_pointer(&idle->session, imap_session_free);
		g_atomic_int_set(&idle->connected, 0);
	}
	return NULL;
}

struct imap_idle *imap_idle_start(const struct imap_idle_params *params,
				  const struct imap_idle_hooks *hooks)
{
	struct imap_idle *idle = g_new0(struct imap_idle, 1);
	char name[32];

	idle->params = *params;
	if (idle->params.notify_events == NULL)
		idle->params.notify_events = IMAP_IDLE_NOTIFY_ALL;
	if (idle->params.watchdog_ms <= 0)
		idle->params.watchdog_ms = IDLE_DEFAULT_WATCHDOG_MS;
	if (idle->params.renew_ms <= 0)
		idle->params.renew_ms = IDLE_DEFAULT_RENEW_MS;
	idle->hooks = *hooks;
	idle->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	idle->table = imap_untagged_new();
	idle->mb = imap_mailbox_new(0, 0);
	idle->known =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	idle->pending =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	imap_untagged_register(idle->table, "STATUS", idle_on_status, idle);
	imap_untagged_register(idle->table, "LIST", idle_on_list, idle);
	imap_mailbox_register(idle->mb, idle->table);
	g_snprintf(name, sizeof(name), "imapfs-watch%u", params->index);
	idle->thread = g_thread_new(name, idle_thread, idle);
	return idle;
}

void imap_idle_wake(struct imap_idle *idle)
{
	uint64_t one = 1;

	if (idle != NULL)
		(void)!write(idle->wake_fd, &one, sizeof(one));
}

void imap_idle_stop(struct imap_idle *idle)
{
	if (idle == NULL)
		return;
	g_atomic_int_set(&idle->stopping, 1);
	imap_idle_wake(idle);
	g_thread_join(idle->thread);
	close(idle->wake_fd);
	imap_untagged_free(idle->table);
	imap_mailbox_free(idle->mb);
	g_hash_table_destroy(idle->known);
	g_hash_table_destroy(idle->pending);
	g_free(idle->selected);
	g_free(idle);
}

void imap_idle_stats(struct imap_idle *idle, struct imap_idle_stats *stats_r)
{
	stats_r->connects = (unsigned int)g_atomic_int_get(&idle->connects);
	stats_r->probes = (unsigned int)g_atomic_int_get(&idle->probes);
	stats_r->renewals = (unsigned int)g_atomic_int_get(&idle->renewals);
	stats_r->connected = g_atomic_int_get(&idle->connected) != 0;
	stats_r->notify = g_atomic_int_get(&idle->use_notify) != 0;
}
