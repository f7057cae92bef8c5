/* spool.h - local files on disk: scratch files, messages not yet sent, and
 * the shadow copies of messages being edited.
 *
 * Every file a program writes through the mount lives here first, in a
 * private directory (mode 0700, files 0600), never whole in memory. A
 * message is sent (APPEND) from its spool file, with bare LF turned into
 * CRLF on the fly (fs_spool_source()); if sending fails, the file stays
 * here and readable through the mount. At unmount, spool files that hold
 * data that never reached the server are kept and logged with their path
 * (fs_spool_dir_close()).
 *
 * Threading: every function is thread-safe. A struct fs_spool is
 * reference counted; its fields are private and protected by its lock.
 */
#ifndef IMAPFS_FS_SPOOL_H
#define IMAPFS_FS_SPOOL_H

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

#include "command.h"

struct fs_spool_dir;
struct fs_spool;

/* Creates the per-mount spool directory below @base (NULL: the default,
 * $XDG_CACHE_HOME/imapfs/spool or ~/.cache/imapfs/spool), creating parents
 * with mode 0700. Returns NULL with a message in @error (G_FILE_ERROR). */
struct fs_spool_dir *fs_spool_dir_new(const char *base, GError **error);

/* Closes the directory at unmount: every spool file still holding data
 * that was not sent (fs_spool_set_keep() TRUE) is renamed to a readable
 * name in the directory and logged as a warning; the others are deleted,
 * and the directory too if it ends up empty. NULL is allowed. */
void fs_spool_dir_close(struct fs_spool_dir *dir);

/* The directory's path (for logs and status). */
const char *fs_spool_dir_path(const struct fs_spool_dir *dir);

/* Creates an empty spool file for the file @label (mailbox/name, used in
 * logs and for the name kept at unmount). Returns a new reference, or
 * NULL with errno-style -errno in *errno_r. */
struct fs_spool *fs_spool_new(struct fs_spool_dir *dir, const char *label,
			      int *errno_r);

struct fs_spool *fs_spool_ref(struct fs_spool *sp);
/* Drops a reference; the last one closes and deletes the file unless it
 * must be kept (then fs_spool_dir_close() keeps it). NULL is allowed. */
void fs_spool_unref(struct fs_spool *sp);

/* Renames the label (after a rename(2) of the local file). */
void fs_spool_set_label(struct fs_spool *sp, const char *label);

/* pread/pwrite/ftruncate on the file. Writes and truncates count as a
 * change (fs_spool_dirty()). Return bytes / 0, or a negative errno. */
gssize fs_spool_read(struct fs_spool *sp, char *buf, size_t size,
		     uint64_t offset);
gssize fs_spool_write(struct fs_spool *sp, const char *buf, size_t size,
		      uint64_t offset);
int fs_spool_truncate(struct fs_spool *sp, uint64_t size);
/* Like fs_spool_write() for bytes that came from the server (a shadow
 * copy's initial content): not a change, nothing to keep. */
gssize fs_spool_fill(struct fs_spool *sp, const char *buf, size_t size,
		     uint64_t offset);
/* fdatasync of the file: 0 or a negative errno. */
int fs_spool_sync(struct fs_spool *sp);

/* Local attributes of the file. */
struct fs_spool_attr {
	uint64_t size;
	mode_t mode; /* permission bits */
	gint64 mtime, atime, ctime;
	gboolean mtime_set; /* utimensat set mtime: use it as INTERNALDATE */
	/* The INTERNALDATE of the message this file takes the place of
	 * (fs_spool_inherit()), used when mtime_set is FALSE; 0: none. */
	gint64 inherited_date;
	char *flags; /* user.imap.flags set on it, or NULL */
};
/* Fills @attr_r (free @attr_r->flags with g_free). */
void fs_spool_get_attr(struct fs_spool *sp, struct fs_spool_attr *attr_r);
void fs_spool_set_mode(struct fs_spool *sp, mode_t mode);
/* @mtime/@atime: seconds, or -1 to leave unchanged. */
void fs_spool_set_times(struct fs_spool *sp, gint64 atime, gint64 mtime);
/* @flags NULL clears. */
void fs_spool_set_flags(struct fs_spool *sp, const char *flags);
/* The file takes the place of a message with @flags and INTERNALDATE
 * @date: they become its flags (unless some were set already) and the
 * date it is sent with unless utimensat sets one. */
void fs_spool_inherit(struct fs_spool *sp, const char *flags, gint64 date);

/* Change counter (sshfs's write_ctr): increases with every write and
 * truncate. A commit records the value it sent (fs_spool_mark_sent());
 * the file is dirty while the two differ. */
uint64_t fs_spool_changes(struct fs_spool *sp);
gboolean fs_spool_dirty(struct fs_spool *sp);
/* Counts as a change without touching the bytes: the file must be sent
 * again (a new INTERNALDATE for a message already stored). */
void fs_spool_touch(struct fs_spool *sp);
void fs_spool_mark_sent(struct fs_spool *sp, uint64_t changes);
/* Whether fs_spool_dir_close() must keep the file (unsent data). */
void fs_spool_set_keep(struct fs_spool *sp, gboolean keep);

/* The commit lock: held by the one thread sending this file. */
void fs_spool_commit_lock(struct fs_spool *sp);
void fs_spool_commit_unlock(struct fs_spool *sp);

/* An APPEND of this file whose outcome could not be learned: the
 * connection died after it was sent, and asking the server failed too.
 * The next commit looks for it first (fs/commit.c). */
struct fs_spool_unresolved {
	char *mailbox;	    /* NULL: there is none */
	uint32_t min_uid;   /* it would have a UID above this */
	char *message_id;   /* what it was searched by */
	uint64_t wire_size; /* and its size */
};
/* @sp's record (owned by @sp); only with the commit lock held. */
struct fs_spool_unresolved *fs_spool_unresolved(struct fs_spool *sp);
/* Empties @u (mailbox NULL). */
void fs_spool_unresolved_clear(struct fs_spool_unresolved *u);

/* What sending the file needs to know, from one pass over it. */
struct fs_spool_scan {
	uint64_t wire_size; /* size with every bare LF made CRLF */
	gboolean has_nul;
	char *message_id; /* the Message-ID header's value, or NULL */
};
/* Scans the whole file. Returns 0 or a negative errno. Free
 * @scan_r->message_id. */
int fs_spool_scan(struct fs_spool *sp, struct fs_spool_scan *scan_r);

/* Fills @src with a literal source that streams the file with bare LF
 * made CRLF; @src->size is @scan->wire_size. The source holds @sp's
 * pointer (the caller keeps a reference until the send is over) and
 * @state, caller-allocated, tracks the position (sequential reads only). */
struct fs_spool_source_state {
	struct fs_spool *sp;
	uint64_t wire_pos;   /* next wire offset */
	uint64_t raw_pos;    /* next file offset */
	gboolean pending_lf; /* a CR was emitted for a bare LF; LF next */
	char prev;	     /* last raw byte emitted */
};
void fs_spool_source(struct fs_spool *sp, const struct fs_spool_scan *scan,
		     struct fs_spool_source_state *state,
		     struct imap_literal_source *src);

#endif
