/* wops_xattr.c - setting and removing extended attributes: the flags of a
 * stored message (user.imap.flags) are a STORE on the server; see wops.h
 * and docs/SEMANTICS.md ("Flags").
 *
 * A flags change of a stored message runs on a network thread (defer.h);
 * everything else is answered from memory. Both keep the order of the
 * node's requests (fs_defer_run_node()).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "acl.h"
#include "commit.h"
#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "wops.h"

#define XATTR_FLAGS "user.imap.flags"
#define XATTR_UID "user.imap.uid"

static struct imapfs *xattr_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* A deferred setxattr's arguments. */
struct xattr_args {
	fuse_ino_t ino;
	char *name, *value;
	size_t size;
};

static void xattr_args_free(gpointer p)
{
	struct xattr_args *a = p;

	g_free(a->name);
	g_free(a->value);
	g_free(a);
}

struct wops_store_ctx {
	const char *mailbox;
	uint32_t uidvalidity, uid;
	const char *flags;
	gboolean check; /* uid_state, not store */
	gboolean exists;
	uint64_t modseq;
	char *server_flags;
};

static gboolean wops_store_fn(struct imap_session *s, void *user_data,
			      GError **error)
{
	struct wops_store_ctx *c = user_data;

	if (c->check) {
		g_clear_pointer(&c->server_flags, g_free);
		return imap_session_uid_state(s, c->mailbox, c->uidvalidity,
					      c->uid, &c->exists, &c->modseq,
					      &c->server_flags, error);
	}
	return imap_session_store_flags(s, c->mailbox, c->uidvalidity, c->uid,
					IMAP_STORE_SET, c->flags, c->modseq,
					NULL, error);
}

/* Normalises a flags value from setxattr: whitespace-separated words,
 * \Recent dropped. */
static char *wops_parse_flags(const char *value, size_t size)
{
	char *v = g_strndup(value, size);
	char **words = g_strsplit_set(v, " \t\r\n", -1);
	GString *out = g_string_new(NULL);
	guint i;

	for (i = 0; words[i] != NULL; i++) {
		if (*words[i] == '\0' ||
		    g_ascii_strcasecmp(words[i], "\\Recent") == 0)
			continue;
		if (out->len > 0)
			g_string_append_c(out, ' ');
		g_string_append(out, words[i]);
	}
	g_strfreev(words);
	g_free(v);
	return g_string_free(out, FALSE);
}

/* Sets the flags of message @e on the server: refuses (-ESTALE) when
 * another client changed them since we last saw them, and stores with
 * UNCHANGEDSINCE so that a change racing ours is not overwritten. */
static int wops_store_flags(struct imapfs *fs, const struct fs_entry *e,
			    const char *flags)
{
	struct wops_store_ctx c = {.mailbox = e->mailbox,
				   .uidvalidity = e->uidvalidity,
				   .uid = e->uid,
				   .flags = flags,
				   .check = TRUE};
	GError *err = NULL;
	int r = 0;

	if (!imap_pool_run(fs->pool, e->mailbox, wops_store_fn, &c, &err))
		goto fail;
	if (!c.exists) {
		r = -ENOENT;
		goto out;
	}
	if (!fs_commit_same_flags(c.server_flags, e->flags)) {
		/* Show what the server has; the caller may try again. */
		fs_tree_set_msg_flags(fs->tree, e->ino, c.server_flags);
		r = -ESTALE;
		goto out;
	}
	c.check = FALSE;
	if (imap_pool_run_once(fs->pool, e->mailbox, wops_store_fn, &c, &err)) {
		fs_tree_set_msg_flags(fs->tree, e->ino, flags);
		/* -o delete=flag: \Deleted hides it; the kernel's cached
		 * name goes too. */
		if (fs->delete_mode == FS_DELETE_FLAG &&
		    imap_flags_contain(flags, "\\Deleted"))
			fs_notify_inval_entry(fs->notify, e->parent, e->name);
		goto out;
	}
fail:
	r = -fs_errno_from_error(err);
	imapfs_warning("%s UID %u: cannot set flags: %s", e->mailbox, e->uid,
		       err->message);
	g_error_free(err);
out:
	g_free(c.server_flags);
	return r;
}

static void wops_setxattr_body(fuse_req_t req, fuse_ino_t ino, const char *name,
			       const char *value, size_t size);

static void wops_setxattr_deferred(fuse_req_t req, void *args)
{
	struct xattr_args *a = args;

	wops_setxattr_body(req, a->ino, a->name, a->value, a->size);
}

/* Flags of a stored message are a STORE on the server; everything else is
 * answered from memory (after the node's earlier requests). */
void fs_wops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		      const char *value, size_t size, int flags)
{
	struct imapfs *fs = xattr_fs(req);
	gboolean net = FALSE;
	struct fs_entry e;
	struct xattr_args *a;

	if (!fs->read_only && strcmp(name, XATTR_FLAGS) == 0 &&
	    fs_tree_get(fs->tree, ino, &e) == 0) {
		net = !e.is_dir && !e.is_local;
		fs_entry_clear(&e);
	}
	a = g_new0(struct xattr_args, 1);
	a->ino = ino;
	a->name = g_strdup(name);
	a->value = g_malloc(size + 1);
	memcpy(a->value, value, size);
	a->size = size;
	fs_defer_run_node(fs->defer, req, ino, !net, wops_setxattr_deferred, a,
			  xattr_args_free);
}

static void wops_setxattr_body(fuse_req_t req, fuse_ino_t ino, const char *name,
			       const char *value, size_t size)
{
	struct imapfs *fs = xattr_fs(req);
	struct fs_entry e;
	char *v;
	int r;

	if (fs->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (strcmp(name, XATTR_FLAGS) != 0 && strcmp(name, XATTR_UID) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	r = fs_tree_get(fs->tree, ino, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (e.is_dir) {
		r = -ENOTSUP;
	} else if (strcmp(name, XATTR_UID) == 0) {
		/* cp -a copies it along: harmless on a file not yet sent,
		 * and a no-op with the message's own UID. */
		char num[16];

		g_snprintf(num, sizeof(num), "%u", e.uid);
		r = e.is_local || (size == strlen(num) &&
				   memcmp(value, num, size) == 0)
			    ? 0
			    : -EPERM;
	} else if (e.is_local) {
		v = wops_parse_flags(value, size);
		fs_spool_set_flags(e.spool, v);
		g_free(v);
	} else if (!imap_acl_has_right(e.rights, 'w') &&
		   !imap_acl_has_right(e.rights, 's')) {
		r = -EACCES;
	} else {
		v = wops_parse_flags(value, size);
		r = wops_store_flags(fs, &e, v);
		g_free(v);
	}
	fs_entry_clear(&e);
	fuse_reply_err(req, -r);
}

void fs_wops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs_entry e;
	int r;

	if (strcmp(name, XATTR_FLAGS) == 0) {
		fs_wops_setxattr(req, ino, name, "", 0, 0);
		return;
	}
	if (xattr_fs(req)->read_only || strcmp(name, XATTR_UID) != 0) {
		fuse_reply_err(req, xattr_fs(req)->read_only ? EROFS : ENODATA);
		return;
	}
	/* A file not sent yet has no UID to lose, and rsync -X removes
	 * every name its source lacks: fine there, EPERM on a message. */
	r = fs_tree_get(xattr_fs(req)->tree, ino, &e);
	if (r == 0) {
		r = e.is_local ? 0 : -EPERM;
		fs_entry_clear(&e);
	}
	fuse_reply_err(req, -r);
}
