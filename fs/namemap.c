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
