/* spool.c - see spool.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "log.h"
#include "spool.h"

/* How much of a file's head is searched for the Message-ID header. */
#define SPOOL_HEADER_SCAN (64 * 1024)
#define SPOOL_CHUNK (64 * 1024)

struct fs_spool_dir {
	char *path;
	GMutex lock;
	/* Every live spool file (protected by lock). */
	GHashTable *files; /* struct fs_spool * set */
	unsigned int next; /* protected by lock */
};

struct fs_spool {
	gint ref; /* atomic */
	struct fs_spool_dir *dir;
	int fd; /* immutable */
	/* NULL once the directory was closed (protected by the directory's
	 * lock until then). */
	char *path; /* immutable */
	GMutex commit;
	GMutex lock;
	/* Protected by lock: */
	char *label;
	struct fs_spool_attr attr;
	uint64_t changes, sent;
	gboolean keep;
	struct fs_spool_unresolved unresolved; /* protected by commit */
};

static char *spool_default_base(void)
{
	return g_build_filename(g_get_user_cache_dir(), "imapfs", "spool",
				NULL);
}

struct fs_spool_dir *fs_spool_dir_new(const char *base, GError **error)
{
	char *b = base != NULL ? g_strdup(base) : spool_default_base();
	char *tmpl, *path;
	struct fs_spool_dir *dir;

	if (g_mkdir_with_parents(b, 0700) != 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
			    "cannot create spool directory %s: %s", b,
			    g_strerror(e));
		g_free(b);
		return NULL;
	}
	tmpl = g_build_filename(b, "mount-XXXXXX", NULL);
	g_free(b);
	path = g_mkdtemp_full(tmpl, 0700);
	if (path == NULL) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
			    "cannot create spool directory %s: %s", tmpl,
			    g_strerror(e));
		g_free(tmpl);
		return NULL;
	}
	dir = g_new0(struct fs_spool_dir, 1);
	dir->path = path;
	g_mutex_init(&dir->lock);
	dir->files = g_hash_table_new(g_direct_hash, g_direct_equal);
	return dir;
}

const char *fs_spool_dir_path(const struct fs_spool_dir *dir)
{
	return dir->path;
}

/* A file name from a label: "/" and control characters become "_". */
static char *spool_safe_name(const char *label)
{
	char *s = g_strdup(label);
	char *p;

	for (p = s; *p != '\0'; p++) {
		if (*p == '/' || (unsigned char)*p < 0x20)
			*p = '_';
	}
	return s;
}

void fs_spool_dir_close(struct fs_spool_dir *dir)
{
	GHashTableIter it;
	gpointer k;

	if (dir == NULL)
		return;
	g_mutex_lock(&dir->lock);
	g_hash_table_iter_init(&it, dir->files);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		struct fs_spool *sp = k;
		char *safe, *kept;

		g_mutex_lock(&sp->lock);
		/* References dropped after this find no directory. */
		sp->dir = NULL;
		if (!sp->keep || sp->attr.size == 0) {
			g_mutex_unlock(&sp->lock);
			g_unlink(sp->path);
			continue;
		}
		safe = spool_safe_name(sp->label);
		kept = g_strdup_printf("%s/unsent-%u-%s", dir->path,
				       ++dir->next, safe);
		if (g_rename(sp->path, kept) != 0) {
			g_free(kept);
			kept = g_strdup(sp->path);
		}
		imapfs_warning("%s was not sent to the server; its data is "
			       "kept in %s",
			       sp->label, kept);
		g_free(kept);
		g_free(safe);
		g_mutex_unlock(&sp->lock);
	}
	g_mutex_unlock(&dir->lock);
	/* Fails (and keeps it) when files were kept. */
	g_rmdir(dir->path);
	/* Spool objects still referenced are freed by their owners; their
	 * files were dealt with above. */
	g_hash_table_destroy(dir->files);
	g_mutex_clear(&dir->lock);
	g_free(dir->path);
	g_free(dir);
}

struct fs_spool *fs_spool_new(struct fs_spool_dir *dir, const char *label,
			      int *errno_r)
{
	struct fs_spool *sp;
	char *path;
	int fd;

	g_mutex_lock(&dir->lock);
	path = g_strdup_printf("%s/f%u", dir->path, ++dir->next);
	g_mutex_unlock(&dir->lock);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*errno_r = -errno;
		imapfs_warning("cannot create spool file %s: %s", path,
			       g_strerror(errno));
		g_free(path);
		return NULL;
	}
	sp = g_new0(struct fs_spool, 1);
	sp->ref = 1;
	sp->dir = dir;
	sp->fd = fd;
	sp->path = path;
	g_mutex_init(&sp->commit);
	g_mutex_init(&sp->lock);
	sp->label = g_strdup(label);
	sp->attr.mode = 0600;
	sp->attr.mtime = sp->attr.atime = sp->attr.ctime =
		g_get_real_time() / G_USEC_PER_SEC;
	g_mutex_lock(&dir->lock);
	g_hash_table_add(dir->files, sp);
	g_mutex_unlock(&dir->lock);
	return sp;
}

struct fs_spool *fs_spool_ref(struct fs_spool *sp)
{
	g_atomic_int_inc(&sp->ref);
	return sp;
}

void fs_spool_unref(struct fs_spool *sp)
{
	gboolean keep;

	if (sp == NULL || !g_atomic_int_dec_and_test(&sp->ref))
		return;
	if (sp->dir != NULL) {
		g_mutex_lock(&sp->dir->lock);
		g_hash_table_remove(sp->dir->files, sp);
		g_mutex_unlock(&sp->dir->lock);
		keep = sp->keep && sp->attr.size > 0;
		if (keep)
			imapfs_warning("%s was not sent to the server; its "
				       "data is kept in %s",
				       sp->label, sp->path);
		else
			g_unlink(sp->path);
	}
	close(sp->fd);
	g_free(sp->path);
	g_free(sp->label);
	g_free(sp->attr.flags);
	fs_spool_unresolved_clear(&sp->unresolved);
	g_mutex_clear(&sp->lock);
	g_mutex_clear(&sp->commit);
	g_free(sp);
}

void fs_spool_set_label(struct fs_spool *sp, const char *label)
{
	g_mutex_lock(&sp->lock);
	g_free(sp->label);
	sp->label = g_strdup(label);
	g_mutex_unlock(&sp->lock);
}

static gint64 spool_now(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

gssize fs_spool_read(struct fs_spool *sp, char *buf, size_t size,
		     uint64_t offset)
{
	ssize_t n = pread(sp->fd, buf, size, (off_t)offset);

	return n < 0 ? -errno : n;
}

static gssize spool_pwrite(struct fs_spool *sp, const char *buf, size_t size,
			   uint64_t offset, gboolean change)
{
	size_t done = 0;

	g_mutex_lock(&sp->lock);
	while (done < size) {
		ssize_t n = pwrite(sp->fd, buf + done, size - done,
				   (off_t)(offset + done));

		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			g_mutex_unlock(&sp->lock);
			return done > 0 ? (gssize)done : -e;
		}
		done += (size_t)n;
	}
	sp->attr.size = MAX(sp->attr.size, offset + size);
	if (change) {
		sp->attr.mtime = sp->attr.ctime = spool_now();
		sp->attr.mtime_set = FALSE;
		sp->changes++;
		sp->keep = TRUE;
	}
	g_mutex_unlock(&sp->lock);
	return (gssize)done;
}

gssize fs_spool_write(struct fs_spool *sp, const char *buf, size_t size,
		      uint64_t offset)
{
	return spool_pwrite(sp, buf, size, offset, TRUE);
}

gssize fs_spool_fill(struct fs_spool *sp, const char *buf, size_t size,
		     uint64_t offset)
{
	return spool_pwrite(sp, buf, size, offset, FALSE);
}

int fs_spool_truncate(struct fs_spool *sp, uint64_t size)
{
	int r = 0;

	g_mutex_lock(&sp->lock);
	if (ftruncate(sp->fd, (off_t)size) != 0) {
		r = -errno;
	} else {
		if (size != sp->attr.size)
			sp->attr.mtime_set = FALSE;
		sp->attr.size = size;
		sp->attr.mtime = sp->attr.ctime = spool_now();
		sp->changes++;
		sp->keep = TRUE;
	}
	g_mutex_unlock(&sp->lock);
	return r;
}

int fs_spool_sync(struct fs_spool *sp)
{
	return fdatasync(sp->fd) != 0 ? -errno : 0;
}

void fs_spool_get_attr(struct fs_spool *sp, struct fs_spool_attr *attr_r)
{
	g_mutex_lock(&sp->lock);
	*attr_r = sp->attr;
	attr_r->flags = g_strdup(sp->attr.flags);
	g_mutex_unlock(&sp->lock);
}

void fs_spool_set_mode(struct fs_spool *sp, mode_t mode)
{
	g_mutex_lock(&sp->lock);
	sp->attr.mode = mode & 07777;
	sp->attr.ctime = spool_now();
	g_mutex_unlock(&sp->lock);
}

void fs_spool_set_times(struct fs_spool *sp, gint64 atime, gint64 mtime)
{
	g_mutex_lock(&sp->lock);
	if (atime >= 0)
		sp->attr.atime = atime;
	if (mtime >= 0) {
		sp->attr.mtime = mtime;
		sp->attr.mtime_set = TRUE;
	}
	sp->attr.ctime = spool_now();
	g_mutex_unlock(&sp->lock);
}

void fs_spool_set_flags(struct fs_spool *sp, const char *flags)
{
	g_mutex_lock(&sp->lock);
	g_free(sp->attr.flags);
	sp->attr.flags = g_strdup(flags);
	g_mutex_unlock(&sp->lock);
}

void fs_spool_inherit(struct fs_spool *sp, const char *flags, gint64 date)
{
	g_mutex_lock(&sp->lock);
	if (sp->attr.flags == NULL)
		sp->attr.flags = g_strdup(flags != NULL ? flags : "");
	sp->attr.inherited_date = date;
	g_mutex_unlock(&sp->lock);
}

uint64_t fs_spool_changes(struct fs_spool *sp)
{
	uint64_t c;

	g_mutex_lock(&sp->lock);
	c = sp->changes;
	g_mutex_unlock(&sp->lock);
	return c;
}

gboolean fs_spool_dirty(struct fs_spool *sp)
{
	gboolean d;

	g_mutex_lock(&sp->lock);
	d = sp->changes != sp->sent;
	g_mutex_unlock(&sp->lock);
	return d;
}

void fs_spool_touch(struct fs_spool *sp)
{
	g_mutex_lock(&sp->lock);
	sp->changes++;
	g_mutex_unlock(&sp->lock);
}

void fs_spool_mark_sent(struct fs_spool *sp, uint64_t changes)
{
	g_mutex_lock(&sp->lock);
	sp->sent = changes;
	if (sp->sent == sp->changes)
		sp->keep = FALSE;
	g_mutex_unlock(&sp->lock);
}

void fs_spool_set_keep(struct fs_spool *sp, gboolean keep)
{
	g_mutex_lock(&sp->lock);
	sp->keep = keep;
	g_mutex_unlock(&sp->lock);
}

void fs_spool_commit_lock(struct fs_spool *sp)
{
	g_mutex_lock(&sp->commit);
}

void fs_spool_commit_unlock(struct fs_spool *sp)
{
	g_mutex_unlock(&sp->commit);
}

struct fs_spool_unresolved *fs_spool_unresolved(struct fs_spool *sp)
{
	return &sp->unresolved;
}

void fs_spool_unresolved_clear(struct fs_spool_unresolved *u)
{
	g_free(u->mailbox);
	g_free(u->message_id);
	memset(u, 0, sizeof(*u));
}

/* Finds "Message-ID:" at the start of a header line in @head (the header
 * ends at the first empty line) and returns its value, unfolded and
 * trimmed, or NULL. */
static char *spool_find_message_id(const char *head, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t eol = i;

		while (eol < len && head[eol] != '\n')
			eol++;
		if (eol == i || (eol == i + 1 && head[i] == '\r'))
			return NULL; /* end of the header */
		if (eol - i > 11 &&
		    g_ascii_strncasecmp(head + i, "Message-ID:", 11) == 0) {
			GString *v = g_string_new(NULL);
			size_t j = i + 11;

			/* The value, with folded continuation lines. */
			for (;;) {
				for (; j < eol; j++) {
					if (head[j] != '\r')
						g_string_append_c(v, head[j]);
				}
				if (eol + 1 < len && (head[eol + 1] == ' ' ||
						      head[eol + 1] == '\t')) {
					j = eol + 1;
					eol = j;
					while (eol < len && head[eol] != '\n')
						eol++;
					continue;
				}
				break;
			}
			g_strstrip(v->str);
			if (*v->str == '\0') {
				g_string_free(v, TRUE);
				return NULL;
			}
			return g_string_free(v, FALSE);
		}
		i = eol + 1;
	}
	return NULL;
}

int fs_spool_scan(struct fs_spool *sp, struct fs_spool_scan *scan_r)
{
	char *buf = g_malloc(SPOOL_CHUNK);
	GString *head = g_string_new(NULL);
	uint64_t pos = 0, wire = 0;
	char prev = 0;
	int r = 0;

	memset(scan_r, 0, sizeof(*scan_r));
	for (;;) {
		ssize_t n = pread(sp->fd, buf, SPOOL_CHUNK, (off_t)pos);
		ssize_t i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			char c = buf[i];

			if (c == '\0')
				scan_r->has_nul = TRUE;
			if (c == '\n' && prev != '\r')
				wire++; /* the CR we insert */
			wire++;
			prev = c;
		}
		if (head->len < SPOOL_HEADER_SCAN)
			g_string_append_len(
				head, buf,
				MIN((size_t)n, SPOOL_HEADER_SCAN - head->len));
		pos += (uint64_t)n;
	}
	g_free(buf);
	if (r == 0) {
		scan_r->wire_size = wire;
		scan_r->message_id =
			spool_find_message_id(head->str, head->len);
	}
	g_string_free(head, TRUE);
	return r;
}

static gssize spool_source_read(void *user_data, uint64_t offset, void *out,
				size_t len, GError **error)
{
	struct fs_spool_source_state *st = user_data;
	char *dst = out;
	char raw[SPOOL_CHUNK];
	size_t produced = 0;

	if (offset != st->wire_pos) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "spool source read out of order");
		return -1;
	}
	while (produced < len) {
		size_t want = MIN((len - produced) / 2 + 1, sizeof(raw));
		ssize_t n, i;

		if (st->pending_lf) {
			dst[produced++] = '\n';
			st->pending_lf = FALSE;
			st->prev = '\n';
			continue;
		}
		n = pread(st->sp->fd, raw, want, (off_t)st->raw_pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			g_set_error(
				error, G_FILE_ERROR, g_file_error_from_errno(e),
				"cannot read spool file: %s", g_strerror(e));
			return -1;
		}
		if (n == 0)
			break;
		/* Each raw byte becomes at most two: @want was sized so
		 * that they fit, except a final LF handled by pending_lf. */
		for (i = 0; i < n && produced < len; i++) {
			char c = raw[i];

			if (c == '\n' && st->prev != '\r') {
				dst[produced++] = '\r';
				if (produced == len) {
					st->pending_lf = TRUE;
					i++;
					break;
				}
			}
			dst[produced++] = c;
			st->prev = c;
		}
		st->raw_pos += (uint64_t)i;
	}
	if (produced == 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
			    "spool file shrank while it was being sent");
		return -1;
	}
	st->wire_pos += produced;
	return (gssize)produced;
}

void fs_spool_source(struct fs_spool *sp, const struct fs_spool_scan *scan,
		     struct fs_spool_source_state *state,
		     struct imap_literal_source *src)
{
	memset(state, 0, sizeof(*state));
	state->sp = sp;
	src->size = scan->wire_size;
	src->read = spool_source_read;
	src->user_data = state;
}
