/* copy.h - copy_file_range(2) between messages of the mount: UID COPY.
 *
 * coreutils' cp (9.x) copies with copy_file_range(fd_in, NULL, fd_out,
 * NULL, huge, 0) first. When the source is a message on the server and
 * the destination a new, still empty message file of the same mount,
 * imapfs copies on the server (UID COPY: no bytes travel, flags and
 * INTERNALDATE come along) and the destination becomes that copy. Every
 * other case answers EOPNOTSUPP, on which the kernel copies through
 * read and write itself (without giving up on the operation, as ENOSYS
 * would make it do).  The UID COPY runs on a network thread (defer.h),
 * after the earlier requests of the destination's node; whether a copy
 * applies is decided from memory in the FUSE worker.
 */
#ifndef IMAPFS_FS_COPY_H
#define IMAPFS_FS_COPY_H

#include <fuse_lowlevel.h>

/* The struct fuse_lowlevel_ops copy_file_range handler. */
void fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			off_t off_out, struct fuse_file_info *fi_out,
			size_t len, int flags);

#endif
