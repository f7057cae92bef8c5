/* wops.h - the FUSE operations that change the mailbox (the write path).
 *
 * The rules (docs/SEMANTICS.md, "Writing"):
 * - "<UID>.eml" names a message on the server. Any other name ending in
 *   ".eml" (not starting with ".") is a new message: created locally,
 *   APPENDed when it is closed, fsynced or renamed to that name; then it
 *   is listed as "<UID>.eml" and the name keeps resolving to it.
 * - Every other name is a scratch file: local only, never sent, until it
 *   is renamed to a message name.
 * - Writing to a message edits a shadow copy; closing it replaces the
 *   message (APPEND with the old flags and date, then UID EXPUNGE).
 * - unlink of a message: STORE \Deleted + UID EXPUNGE (or a move to
 *   \Trash with -o delete=trash); rename across folders: MOVE; mkdir,
 *   rmdir, rename of a directory: CREATE, DELETE, RENAME.
 * - Never a bare EXPUNGE: without UIDPLUS, unlink, a move without MOVE
 *   and a replacement answer EPERM and send nothing; with -o delete=flag
 *   their removal of the old message is a STORE of \Deleted alone
 *   (UIDPLUS or not), and the message stays in the tree, hidden
 *   (fs_tree_set_hide_deleted()).
 * On a read-only mount (-o ro) every one of these answers EROFS, and
 * FLUSH answers ENOSYS (the kernel then stops sending it); such a mount's
 * opens never reach fs_wops_open (fs/ops.c answers ENOSYS: the kernel
 * opens alone, fh 0), so a write through them reaches fs_wops_write
 * with no handle and answers EROFS there.
 *
 * Each function is a struct fuse_lowlevel_ops handler (same arguments);
 * the per-open state is a struct fs_handle in fi->fh (0 for read-only
 * opens of messages).
 */
#ifndef IMAPFS_FS_WOPS_H
#define IMAPFS_FS_WOPS_H

#include <fuse_lowlevel.h>

#include "ops.h"

/* The state of one open file that may be written (fi->fh). */
struct fs_handle {
	struct fs_spool *spool; /* a reference */
	gboolean writable;
	/* The file became a copy made on the server (fs/copy.c): its
	 * bytes are not in @spool, and writing to it is refused. Only the
	 * handle's own thread of requests touches it (the kernel does not
	 * run two requests of one copy_file_range at once). */
	gboolean copied;
};

void fs_wops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_wops_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode, struct fuse_file_info *fi);
void fs_wops_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		   off_t off, struct fuse_file_info *fi);
void fs_wops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_wops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		   struct fuse_file_info *fi);
void fs_wops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_wops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		     int to_set, struct fuse_file_info *fi);
void fs_wops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode, dev_t rdev);
void fs_wops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode);
void fs_wops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_wops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_wops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		     const char *name);
void fs_wops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		  const char *newname);
void fs_wops_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		    fuse_ino_t newparent, const char *newname,
		    unsigned int flags);
void fs_wops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		      const char *value, size_t size, int flags);
void fs_wops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* Reads through a handle's spool file (a local file or a message being
 * edited). Replies itself. */
void fs_wops_read_spool(fuse_req_t req, struct fs_spool *sp, size_t size,
			off_t off);

#endif
