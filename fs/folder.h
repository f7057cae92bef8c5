/* folder.h - bringing a folder's listing up to date from the server: a
 * full load the first time, then incremental refreshes (what changed
 * since the last UIDNEXT, message count and HIGHESTMODSEQ), and a single
 * message for a lookup in a folder not listed yet.
 *
 * Runs in a FUSE worker, on a pool session, never holding the tree's
 * lock across the network (fs_tree_folder_begin()/_end() bracket it).
 */
#ifndef IMAPFS_FS_FOLDER_H
#define IMAPFS_FS_FOLDER_H

#include <stdint.h>

#include "ops.h"

/* Makes sure directory @ino's listing is loaded and not older than
 * @max_age_us: a full load if it never was (or its UIDVALIDITY changed),
 * else a refresh. Returns 1 if it was loaded or refreshed now, 0 if it
 * was fresh (or another thread is refreshing it: the current listing
 * serves meanwhile), or a negative errno. */
int fs_folder_load(struct imapfs *fs, uint64_t ino, gint64 max_age_us);

/* For a lookup of message @uid in directory @ino: in a listed folder as
 * fs_folder_load() with the listing TTL; in a folder never listed, asks
 * for that one message (EXAMINE + UID FETCH uid) and adds it, so a stat
 * of one name does not list a whole folder -- after many such lookups in
 * one folder it is listed in full instead. Returns 0 or a negative
 * errno (-ENOENT is left to the lookup to answer). */
int fs_folder_prepare_lookup(struct imapfs *fs, uint64_t ino, uint32_t uid);

#endif
