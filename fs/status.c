/* status.c - see status.h. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "bodycache.h"
#include "pool.h"
#include "status.h"
#include "tree.h"

/* What imapfs looks for in CAPABILITY (and uses where offered). */
static const char *const status_caps[] = {
	"IMAP4rev1", "SASL-IR",	      "LITERAL+",    "ENABLE",	 "CONDSTORE",
	"NAMESPACE", "LIST-EXTENDED", "SPECIAL-USE", "CHILDREN", "QUOTA",
	"UIDPLUS",   "MOVE",	      "IDLE",
};

void fs_status_set_caps(struct fs_status *status,
			const struct imap_session *session)
{
	GString *used = g_string_new(NULL), *missing = g_string_new(NULL);
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(status_caps); i++) {
		GString *to = imap_session_has_cap(session, status_caps[i])
				      ? used
				      : missing;

		if (to->len > 0)
			g_string_append_c(to, ' ');
		g_string_append(to, status_caps[i]);
	}
	g_free(status->caps_used);
	g_free(status->caps_missing);
	status->caps_used = g_string_free(used, FALSE);
	status->caps_missing = g_string_free(missing, FALSE);
}

/* The "server:" line: online, or offline with why and the reconnect
 * state; plus a note when the server's limit shrank the pool. */
static char *status_server(struct imap_pool *pool)
{
	struct imap_pool_state ps;
	GString *out = g_string_new(NULL);

	imap_pool_state(pool, &ps);
	if (!ps.offline) {
		g_string_append(out, "online");
	} else {
		GDateTime *t = g_date_time_new_from_unix_local(
			ps.offline_since / G_USEC_PER_SEC);
		char *when = g_date_time_format(t, "%H:%M:%S");

		g_string_append_printf(
			out,
			"offline since %s (%s); cached data is "
			"served; %u reconnect attempt(s)",
			when, ps.reason != NULL ? ps.reason : "unknown cause",
			ps.attempts);
		if (ps.next_attempt_ms > 0)
			g_string_append_printf(out, ", next in %u s",
					       (ps.next_attempt_ms + 999) /
						       1000);
		else
			g_string_append(out, ", next one now");
		g_free(when);
		g_date_time_unref(t);
	}
	if (ps.limit_refusals > 0) {
		g_string_append_printf(out,
				       "\nlimit:        the server refused %u "
				       "connection(s) for its limit "
				       "(configured %u",
				       ps.limit_refusals, ps.configured_size);
		if (ps.size < ps.configured_size)
			g_string_append_printf(out,
					       ", now %u; one more tried in "
					       "%u s",
					       ps.size,
					       (ps.regrow_ms + 999) / 1000);
		g_string_append_c(out, ')');
	}
	g_free(ps.reason);
	return g_string_free(out, FALSE);
}

void fs_status_set_watch(struct fs_status *status, struct fs_watch *watch)
{
	g_mutex_lock(&status->watch_lock);
	status->watch = watch;
	g_mutex_unlock(&status->watch_lock);
}

/* The "watch:" line (without its newline). */
static char *status_watch(struct fs_status *st)
{
	char *text;

	g_mutex_lock(&st->watch_lock);
	text = st->watch != NULL ? fs_watch_describe(st->watch)
				 : g_strdup("off");
	g_mutex_unlock(&st->watch_lock);
	return text;
}

static char *status_text(struct fs_status *st)
{
	unsigned int count, idle, size;
	uint64_t cached = fs_bodycache_bytes(st->fs->cache);
	GDateTime *since =
		g_date_time_new_from_unix_local(st->started / G_USEC_PER_SEC);
	char *when = g_date_time_format(since, "%Y-%m-%d %H:%M:%S %z");
	char *text, *server = status_server(st->fs->pool);
	char *watch = status_watch(st);
	uint64_t full, refreshed;

	imap_pool_stats(st->fs->pool, &count, &idle, &size);
	fs_tree_load_counts(st->fs->tree, &full, &refreshed);
	text = g_strdup_printf(
		"mount point:  %s\n"
		"account:      %s@%s port %u (%s)\n"
		"mounted:      %s (pid %d)\n"
		"capabilities: %s\n"
		"not offered:  %s\n"
		"server:       %s\n"
		"watch:        %s\n"
		"connections:  %u open (%u busy, %u idle), at most %u\n"
		"cache:        %" G_GUINT64_FORMAT " KiB of %u MiB\n"
		"messages:     %" G_GUINT64_FORMAT " known\n"
		"listings:     %" G_GUINT64_FORMAT " full, %" G_GUINT64_FORMAT
		" refreshed\n"
		"settings:     timeout=%u listing_ttl=%u attr_timeout=%.0f "
		"delete=%s\n",
		st->mountpoint, st->user, st->host, st->port,
		st->implicit_tls ? "imaps: TLS" : "imap: STARTTLS", when,
		(int)getpid(), st->caps_used ? st->caps_used : "",
		st->caps_missing && *st->caps_missing ? st->caps_missing
						      : "(none)",
		server, watch, count, count - MIN(idle, count), idle, size,
		(cached + 1023) / 1024, st->cache_mb,
		fs_tree_count_files(st->fs->tree), full, refreshed,
		st->timeout_s, st->listing_ttl, st->attr_timeout,
		fs_options_delete_name(st->fs->delete_mode));
	g_free(when);
	g_free(server);
	g_free(watch);
	g_date_time_unref(since);
	return text;
}

char *fs_status_answer(const char *request, void *user_data)
{
	struct fs_status *st = user_data;

	if (strcmp(request, "status") == 0)
		return status_text(st);
	if (strcmp(request, "refresh") == 0) {
		fs_tree_invalidate_all(st->fs->tree);
		return g_strdup("refreshed: every folder listing is reloaded "
				"on its next use\n");
	}
	return NULL;
}

void fs_status_clear(struct fs_status *status)
{
	g_free(status->mountpoint);
	g_free(status->user);
	g_free(status->host);
	g_free(status->caps_used);
	g_free(status->caps_missing);
	memset(status, 0, sizeof(*status));
}
