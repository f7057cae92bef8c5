/* status.h - what "imapfs status MOUNTPOINT" prints, and what
 * "imapfs refresh" (or SIGHUP) does, for a running mount.
 */
#ifndef IMAPFS_FS_STATUS_H
#define IMAPFS_FS_STATUS_H

#include <glib.h>

#include "ops.h"
#include "watch.h"
#include "session.h"

struct fs_status {
	/* All immutable once the control thread runs. */
	struct imapfs *fs;
	char *mountpoint; /* absolute */
	char *user, *host;
	unsigned int port;
	gboolean implicit_tls;
	unsigned int cache_mb, timeout_s, listing_ttl;
	double attr_timeout;
	char *caps_used;    /* the capabilities imapfs uses that the server */
	char *caps_missing; /* offers / does not offer, space-separated */
	gint64 started;	    /* g_get_real_time() at mount */
	/* The live view while it runs, else NULL (protected by
	 * watch_lock: it is stopped while the control thread may answer). */
	GMutex watch_lock;
	struct fs_watch *watch;
};

/* Records which of the capabilities imapfs uses @session's server offers
 * (into caps_used / caps_missing). Call before the session is shared. */
void fs_status_set_caps(struct fs_status *status,
			const struct imap_session *session);

/* The fs_control_fn: "status" -> the status text, "refresh" -> drops every
 * cached listing (fs_tree_invalidate_all) and says so; NULL otherwise.
 * @user_data is a struct fs_status. Any thread. */
char *fs_status_answer(const char *request, void *user_data);

/* Sets (or with NULL clears, before it is stopped) the live view that
 * the status text describes. Any thread. */
void fs_status_set_watch(struct fs_status *status, struct fs_watch *watch);

/* Frees the strings of @status. */
void fs_status_clear(struct fs_status *status);

#endif
