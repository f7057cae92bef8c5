/* quota.c - see quota.h. */
#include "config.h"

#include "log.h"
#include "quota.h"
#include "session.h"

struct fs_quota {
	struct imap_pool *pool; /* immutable */
	gint64 ttl_us;		/* immutable */
	GMutex lock;
	/* Protected by lock: */
	gint64 fetched_at; /* monotonic us; 0 = never */
	gboolean have;
	uint64_t used_kib, limit_kib;
};

struct fs_quota *fs_quota_new(struct imap_pool *pool, gint64 ttl_us)
{
	struct fs_quota *q = g_new0(struct fs_quota, 1);

	q->pool = pool;
	q->ttl_us = ttl_us;
	g_mutex_init(&q->lock);
	return q;
}

void fs_quota_free(struct fs_quota *quota)
{
	if (quota == NULL)
		return;
	g_mutex_clear(&quota->lock);
	g_free(quota);
}

static gboolean quota_fn(struct imap_session *s, void *user_data,
			 GError **error)
{
	uint64_t *q = user_data;

	return imap_session_quota(s, &q[0], &q[1], error);
}

gboolean fs_quota_get(struct fs_quota *quota, uint64_t *used_kib_r,
		      uint64_t *limit_kib_r)
{
	gint64 now = g_get_monotonic_time();
	uint64_t q[2] = {0, 0};
	GError *err = NULL;
	gboolean have;

	g_mutex_lock(&quota->lock);
	if (quota->fetched_at != 0 && now - quota->fetched_at < quota->ttl_us) {
		have = quota->have;
		*used_kib_r = quota->used_kib;
		*limit_kib_r = quota->limit_kib;
		g_mutex_unlock(&quota->lock);
		return have;
	}
	g_mutex_unlock(&quota->lock);

	have = imap_pool_run(quota->pool, NULL, quota_fn, q, &err);
	if (!have) {
		imapfs_debug("no storage quota: %s", err->message);
		g_error_free(err);
	}
	g_mutex_lock(&quota->lock);
	quota->fetched_at = g_get_monotonic_time();
	quota->have = have;
	quota->used_kib = q[0];
	quota->limit_kib = q[1];
	g_mutex_unlock(&quota->lock);
	*used_kib_r = q[0];
	*limit_kib_r = q[1];
	return have;
}

gboolean fs_quota_peek(struct fs_quota *quota, gboolean *have_r,
		       uint64_t *used_kib_r, uint64_t *limit_kib_r)
{
	gint64 now = g_get_monotonic_time();
	gboolean fresh;

	g_mutex_lock(&quota->lock);
	fresh = quota->fetched_at != 0 &&
		now - quota->fetched_at < quota->ttl_us;
	if (fresh) {
		*have_r = quota->have;
		*used_kib_r = quota->used_kib;
		*limit_kib_r = quota->limit_kib;
	}
	g_mutex_unlock(&quota->lock);
	return fresh;
}
