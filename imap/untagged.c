/* untagged.c - see untagged.h.
 *
 * A handful of handlers per connection: a flat array searched linearly is
 * both the simplest and the fastest structure here.
 */
#include "config.h"

#include <string.h>

#include "untagged.h"

struct untagged_entry {
	char *name; /* upper case: "EXISTS", "OK", "OK [UIDNEXT]", "*" */
	imap_untagged_handler_fn *fn;
	void *user_data;
};

struct imap_untagged {
	GArray *entries; /* struct untagged_entry */
};

static void untagged_entry_clear(gpointer p)
{
	g_free(((struct untagged_entry *)p)->name);
}

struct imap_untagged *imap_untagged_new(void)
{
	struct imap_untagged *t = g_new0(struct imap_untagged, 1);

	t->entries = g_array_new(FALSE, FALSE, sizeof(struct untagged_entry));
	g_array_set_clear_func(t->entries, untagged_entry_clear);
	return t;
}

void imap_untagged_free(struct imap_untagged *table)
{
	if (table == NULL)
		return;
	g_array_unref(table->entries);
	g_free(table);
}

void imap_untagged_register(struct imap_untagged *table, const char *name,
			    imap_untagged_handler_fn *fn, void *user_data)
{
	struct untagged_entry e = {g_ascii_strup(name, -1), fn, user_data};

	g_array_append_val(table->entries, e);
}

const char *imap_untagged_name(const struct imap_response *resp)
{
	static const char *const status[] = {NULL,  "OK",  "NO",
					     "BAD", "BYE", "PREAUTH"};

	if (resp == NULL || resp->kind != IMAP_RESPONSE_UNTAGGED)
		return NULL;
	if (resp->status != IMAP_STATUS_NONE) {
		if ((size_t)resp->status >= G_N_ELEMENTS(status))
			return NULL;
		return status[resp->status];
	}
	return resp->keyword;
}

/* "OK [CODE]" matches an OK response whose code is CODE. */
static gboolean untagged_matches(const char *entry, const char *name,
				 const struct imap_response *resp)
{
	size_t n = strlen(name);

	if (strcmp(entry, name) == 0)
		return TRUE;
	if (resp->code == NULL || strncmp(entry, name, n) != 0 ||
	    strncmp(entry + n, " [", 2) != 0)
		return FALSE;
	entry += n + 2;
	n = strlen(resp->code);
	return strncmp(entry, resp->code, n) == 0 &&
	       strcmp(entry + n, "]") == 0;
}

unsigned int imap_untagged_dispatch(struct imap_untagged *table,
				    const struct imap_response *resp)
{
	const char *name = imap_untagged_name(resp);
	unsigned int called = 0;
	guint i;

	if (name == NULL)
		return 0;
	for (i = 0; i < table->entries->len; i++) {
		struct untagged_entry *e = &g_array_index(
			table->entries, struct untagged_entry, i);

		if (strcmp(e->name, "*") != 0 &&
		    untagged_matches(e->name, name, resp)) {
			e->fn(resp, e->user_data);
			called++;
		}
	}
	for (i = 0; i < table->entries->len; i++) {
		struct untagged_entry *e = &g_array_index(
			table->entries, struct untagged_entry, i);

		if (strcmp(e->name, "*") == 0) {
			e->fn(resp, e->user_data);
			called++;
		}
	}
	return called;
}

void imap_untagged_dispatch_cb(struct imap_response *resp, void *user_data)
{
	imap_untagged_dispatch(user_data, resp);
}
