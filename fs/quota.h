/* quota.h - the storage quota statfs reports, cached.
 *
 * statfs is called often (df, file managers, every cp and rsync); asking
 * the server each time sent a GETQUOTAROOT per call. The answer -- a
 * STORAGE quota, or that there is none (no QUOTA extension, or a reply
 * without resources like Courier's "* QUOTA "ROOT" ()") -- is kept for
 * a fixed time.
 *
 * Threading: any thread. The lock is never held across the server round
 * trip; two callers that find the cache stale at once may both ask.
 */
#ifndef IMAPFS_FS_QUOTA_H
#define IMAPFS_FS_QUOTA_H

#include <glib.h>
#include <stdint.h>

#include "pool.h"

/* How long an answer is reused. */
#define FS_QUOTA_TTL_US (30 * G_USEC_PER_SEC)

struct fs_quota;

/* Creates the cache for @pool (not owned; must outlive it), keeping
 * answers for @ttl_us. Never returns NULL. */
struct fs_quota *fs_quota_new(struct imap_pool *pool, gint64 ttl_us);

/* Frees. NULL is allowed. */
void fs_quota_free(struct fs_quota *quota);

/* Storage used and limit in KiB from GETQUOTAROOT INBOX, at most the TTL
 * old. Returns FALSE when there is no STORAGE quota or the server could
 * not be asked (that answer is cached too, so a broken server is not
 * asked on every statfs). */
gboolean fs_quota_get(struct fs_quota *quota, uint64_t *used_kib_r,
		      uint64_t *limit_kib_r);

/* The cached answer without asking the server: returns TRUE and sets
 * *have_r (what fs_quota_get() would return) and the two values if an
 * answer at most the TTL old is cached, FALSE otherwise. Never waits for
 * the network. */
gboolean fs_quota_peek(struct fs_quota *quota, gboolean *have_r,
		       uint64_t *used_kib_r, uint64_t *limit_kib_r);

#endif
