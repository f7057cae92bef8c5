/* namemap.c - see namemap.h.
 *
 * The escaping is a bijection between the components escape() can be given
 * and the names it produces: unescape() decodes and then insists that
 * escaping the result gives back the very same name.  So a directory name
 * the user types either maps to exactly one mailbox component or is
 * refused; "%41" or "a%2Eb" never silently alias "A" or "a.b".
 */
#include "config.h"

#include <string.h>

#include "mutf7.h"
#include "namemap.h"

#define MESSAGE_SUFFIX ".eml"

/* "DIGITS.eml" with at least one digit, leading zeros included: such a
 * mailbox name must never look like a message file name, whatever the
 * message name parser accepts today. */
static gboolean looks_like_message_name(const char *s)
{
	const char *p = s;

	while (g_ascii_isdigit(*p))
		p++;
	return p != s && strcmp(p, MESSAGE_SUFFIX) == 0;
}

char *fs_namemap_escape(const char *component)
{
	GString *out;
	gboolean escape_dot;

	g_return_val_if_fail(component != NULL, g_strdup("%"));

	if (*component == '\0')
		return g_strdup("%");
	if (strcmp(component, ".") == 0)
		return g_strdup("%2E");
	if (strcmp(component, "..") == 0)
		return g_strdup("%2E%2E");

	escape_dot = looks_like_message_name(component);
	out = g_string_sized_new(strlen(component) + 8);
	for (const char *p = component; *p != '\0'; p++) {
		if (*p == '%')
			g_string_append(out, "%25");
		else if (*p == '/')
			g_string_append(out, "%2F");
		else if (*p == '.' && escape_dot)
			g_string_append(out, "%2E");
		else
			g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

char *fs_namemap_unescape(const char *name)
{
	GString *out;
	char *check;

	g_return_val_if_fail(name != NULL, NULL);

	if (strcmp(name, "%") == 0)
		return g_strdup("");

	out = g_string_sized_new(strlen(name));
	for (const char *p = name; *p != '\0'; p++) {
		if (*p != '%') {
			g_string_append_c(out, *p);
			continue;
		}
		/* Upper-case hex only: that is what escape() writes. */
		if (strncmp(p, "%25", 3) == 0)
			g_string_append_c(out, '%');
		else if (strncmp(p, "%2F", 3) == 0)
			g_string_append_c(out, '/');
		else if (strncmp(p, "%2E", 3) == 0)
			g_string_append_c(out, '.');
		else
			goto fail;
		p += 2;
	}

	/* Rejects every spelling escape() would not produce: "." and "..",
	 * "1.eml", "%2E" outside the names that need it, the empty name. */
	check = fs_namemap_escape(out->str);
	if (strcmp(check, name) != 0) {
		g_free(check);
		goto fail;
	}
	g_free(check);
	return g_string_free(out, FALSE);

fail:
	g_string_free(out, TRUE);
	return NULL;
}

static char *component_to_name(const char *raw, size_t len)
{
	char *mutf7 = g_strndup(raw, len);
	char *utf8 = imap_mutf7_decode(mutf7, NULL);
	char *name;

	/* A name that is not valid modified UTF-7 is shown as sent rather
	 * than hidden: the user can still see the mailbox exists. */
	name = fs_namemap_escape(utf8 != NULL ? utf8 : mutf7);
	g_free(utf8);
	g_free(mutf7);
	return name;
}

char **fs_namemap_mailbox_to_path(const char *mailbox, char delimiter)
{
	GPtrArray *parts = g_ptr_array_new();
	const char *start;

	if (mailbox == NULL) {
		g_ptr_array_add(parts, NULL);
		return (char **)g_ptr_array_free(parts, FALSE);
	}

	start = mailbox;
	for (;;) {
		const char *end =
			delimiter != '\0' ? strchr(start, delimiter) : NULL;

		if (end == NULL) {
			g_ptr_array_add(
				parts, component_to_name(start, strlen(start)));
			break;
		}
		g_ptr_array_add(parts, component_to_name(start, end - start));
		start = end + 1;
	}
	g_ptr_array_add(parts, NULL);
	return (char **)g_ptr_array_free(parts, FALSE);
}

char *fs_namemap_path_to_mailbox(const char *const *components, size_t n,
				 char delimiter)
{
	GString *out;

	g_return_val_if_fail(components != NULL || n == 0, NULL);

	if (n == 0 || (delimiter == '\0' && n > 1))
		return NULL;

	out = g_string_new(NULL);
	for (size_t i = 0; i < n; i++) {
		char *utf8 = fs_namemap_unescape(components[i]);
		char *mutf7;

		if (utf8 == NULL)
			goto fail;
		mutf7 = imap_mutf7_encode(utf8, NULL);
		g_free(utf8);
		if (mutf7 == NULL)
			goto fail;
		/* Checked on the encoded form, which is what the server
		 * splits. */
		if (delimiter != '\0' && strchr(mutf7, delimiter) != NULL) {
			g_free(mutf7);
			goto fail;
		}
		if (i > 0)
			g_string_append_c(out, delimiter);
		g_string_append(out, mutf7);
		g_free(mutf7);
	}
	return g_string_free(out, FALSE);

fail:
	g_string_free(out, TRUE);
	return NULL;
}

gboolean fs_namemap_parse_message_name(const char *name, guint32 *uid_r)
{
	guint64 uid = 0;
	const char *p = name;

	g_return_val_if_fail(name != NULL, FALSE);

	if (*p < '1' || *p > '9')
		return FALSE;
	/* At most 10 digits, so the value cannot overflow 64 bits. */
	for (; g_ascii_isdigit(*p); p++) {
		if (p - name >= 10)
			return FALSE;
		uid = uid * 10 + (guint64)(*p - '0');
	}
	if (uid > G_MAXUINT32 || strcmp(p, MESSAGE_SUFFIX) != 0)
		return FALSE;
	if (uid_r != NULL)
		*uid_r = (guint32)uid;
	return TRUE;
}

void fs_namemap_message_name(guint32 uid, char *buf, gsize size)
{
	g_return_if_fail(buf != NULL && size > 0);

	g_snprintf(buf, size, "%" G_GUINT32_FORMAT MESSAGE_SUFFIX, uid);
}

/* Namespaces */

static void namemap_path_free(gpointer p)
{
	struct fs_namemap_path *mp = p;

	/* levels may hold NULLs before its end: not a strv. */
	for (size_t i = 0; mp->names[i] != NULL; i++)
		g_free(mp->levels[i]);
	g_free(mp->levels);
	g_strfreev(mp->names);
	g_free(mp);
}

/* "INBOX" in any case, as the first component below a non-empty personal
 * prefix: written with its first letter escaped. */
static gboolean namemap_is_inbox_word(const char *s, size_t len)
{
	return len == 5 && g_ascii_strncasecmp(s, "INBOX", 5) == 0;
}

/* "INBOX" -> "%49NBOX", "inbox" -> "%69nbox" (@word has 5 letters). */
static char *namemap_escape_inbox_word(const char *word)
{
	return g_strdup_printf("%%%02X%.4s", (unsigned char)word[0], word + 1);
}

/* Reverses namemap_escape_inbox_word(); NULL if @name is not such a name. */
static char *namemap_unescape_inbox_word(const char *name)
{
	char *word;

	if (strlen(name) != 7 ||
	    (strncmp(name, "%49", 3) != 0 && strncmp(name, "%69", 3) != 0))
		return NULL;
	word = g_strdup_printf("%c%s", name[1] == '4' ? 'I' : 'i', name + 3);
	if (!namemap_is_inbox_word(word, strlen(word))) {
		g_free(word);
		return NULL;
	}
	return word;
}

/* Builds the path of @info: file names of the components of @rel (split
 * at the delimiter) below @top (NULL: none), with @server_base the server
 * name @rel is relative to. */
static struct fs_namemap_path *
namemap_build(const struct imap_mailbox_info *info, const char *top,
	      const char *server_base, const char *rel)
{
	struct fs_namemap_path *mp = g_new0(struct fs_namemap_path, 1);
	GPtrArray *names = g_ptr_array_new(), *levels = g_ptr_array_new();
	char **comps = fs_namemap_mailbox_to_path(rel, info->delimiter);
	const char *p = rel;
	size_t i;

	if (top != NULL) {
		g_ptr_array_add(names, g_strdup(top));
		g_ptr_array_add(levels, NULL);
	}
	for (i = 0; comps[i] != NULL; i++) {
		const char *end = info->delimiter != '\0'
					  ? strchr(p, info->delimiter)
					  : NULL;
		size_t len = end != NULL ? (size_t)(end - rel) : strlen(rel);

		g_ptr_array_add(names, comps[i]);
		g_ptr_array_add(levels, g_strdup_printf("%s%.*s", server_base,
							(int)len, rel));
		p = end != NULL ? end + 1 : p + strlen(p);
	}
	g_free(comps); /* the strings moved to names */
	g_ptr_array_add(names, NULL);
	g_ptr_array_add(levels, NULL);
	mp->names = (char **)g_ptr_array_free(names, FALSE);
	mp->levels = (char **)g_ptr_array_free(levels, FALSE);
	return mp;
}

static const char *namemap_kind_dir(enum imap_ns_kind kind)
{
	switch (kind) {
	case IMAP_NS_OTHER:
		return "Other Users";
	case IMAP_NS_SHARED:
		return "Shared Folders";
	default:
		return "Personal Folders";
	}
}

GPtrArray *fs_namemap_mailbox_paths(GPtrArray *infos)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(namemap_path_free);
	GHashTable *top = g_hash_table_new(g_str_hash, g_str_equal);
	guint i;

	/* The primary personal tree first: its top-level names win. */
	g_ptr_array_set_size(out, infos->len);
	for (i = 0; i < infos->len; i++) {
		const struct imap_mailbox_info *info = infos->pdata[i];
		const char *rel =
			info->rel_name != NULL ? info->rel_name : info->name;
		struct fs_namemap_path *mp;
		size_t plen =
			info->ns_prefix != NULL ? strlen(info->ns_prefix) : 0;

		if (!imap_mailbox_info_is_primary(info))
			continue;
		if (g_ascii_strcasecmp(info->name, "INBOX") == 0) {
			mp = namemap_build(info, NULL, "", info->name);
		} else {
			char *base = g_strndup(info->name, plen);
			const char *d = info->delimiter != '\0'
						? strchr(rel, info->delimiter)
						: NULL;
			size_t flen =
				d != NULL ? (size_t)(d - rel) : strlen(rel);

			mp = namemap_build(info, NULL, base, rel);
			if (plen > 0 && namemap_is_inbox_word(rel, flen)) {
				g_free(mp->names[0]);
				mp->names[0] = namemap_escape_inbox_word(rel);
			}
			g_free(base);
		}
		g_hash_table_add(top, mp->names[0]);
		out->pdata[i] = mp;
	}
	for (i = 0; i < infos->len; i++) {
		const struct imap_mailbox_info *info = infos->pdata[i];
		struct fs_namemap_path *mp;

		if (imap_mailbox_info_is_primary(info))
			continue;
		if (info->ns_prefix == NULL || *info->ns_prefix == '\0')
			mp = namemap_build(info,
					   namemap_kind_dir(info->ns_kind), "",
					   info->name);
		else
			mp = namemap_build(info, NULL, "", info->name);
		if (g_hash_table_contains(top, mp->names[0])) {
			char *renamed = g_strconcat(mp->names[0], "%", NULL);

			g_free(mp->names[0]);
			mp->names[0] = renamed;
		}
		out->pdata[i] = mp;
	}
	g_hash_table_destroy(top);
	return out;
}

char *fs_namemap_path_to_server_name(const char *prefix, char delimiter,
				     const char *const *components, size_t n)
{
	const char *first;
	char *inbox_word = NULL, *rest, *out;
	const char **comps;

	g_return_val_if_fail(prefix != NULL, NULL);
	if (n == 0 || components == NULL)
		return NULL;
	first = components[0];
	if (g_ascii_strcasecmp(first, "INBOX") == 0) {
		if (n == 1)
			return g_strdup("INBOX");
		if (*prefix != '\0')
			return NULL;
		return fs_namemap_path_to_mailbox(components, n, delimiter);
	}
	/* "%49NBOX": a mailbox named INBOX below the prefix. */
	if (*prefix != '\0')
		inbox_word = namemap_unescape_inbox_word(first);
	comps = g_new(const char *, n);
	memcpy(comps, components, n * sizeof(*comps));
	if (inbox_word != NULL)
		comps[0] = inbox_word;
	rest = fs_namemap_path_to_mailbox(comps, n, delimiter);
	g_free(comps);
	g_free(inbox_word);
	if (rest == NULL)
		return NULL;
	out = g_strconcat(prefix, rest, NULL);
	g_free(rest);
	return out;
}
