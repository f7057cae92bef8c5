/* acl.c - MYRIGHTS (RFC 4314); see acl.h. */
#include "config.h"

#include <string.h>

#include "acl.h"
#include "command.h"
#include "imap-error.h"
#include "session-int.h"

/* More letters than any server defines: a longer reply is garbage. */
#define ACL_MAX_RIGHTS 64

static gboolean acl_same_mailbox(const char *a, const char *b)
{
	if (g_ascii_strcasecmp(a, "INBOX") == 0)
		return g_ascii_strcasecmp(b, "INBOX") == 0;
	return strcmp(a, b) == 0;
}

char *imap_acl_parse_myrights(const struct imap_response *resp,
			      const char *mailbox)
{
	const char *name, *rights;
	GString *out;

	if (resp->keyword == NULL || strcmp(resp->keyword, "MYRIGHTS") != 0 ||
	    resp->count != 2 || !imap_arg_get_astring(&resp->args[0], &name) ||
	    !imap_arg_get_astring(&resp->args[1], &rights) ||
	    !acl_same_mailbox(name, mailbox))
		return NULL;
	out = g_string_new(NULL);
	for (const char *p = rights; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z' && out->len < ACL_MAX_RIGHTS &&
		    strchr(out->str, *p) == NULL)
			g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

gboolean imap_acl_has_right(const char *rights, char right)
{
	if (rights == NULL)
		return TRUE;
	if (strchr(rights, right) != NULL)
		return TRUE;
	/* RFC 2086 servers send c and d for the rights RFC 4314 split. */
	if ((right == 'k' || right == 'x') && strchr(rights, 'c') != NULL)
		return TRUE;
	if ((right == 't' || right == 'e') && strchr(rights, 'd') != NULL)
		return TRUE;
	return FALSE;
}

struct acl_myrights_ctx {
	const char *mailbox;
	char *rights;
};

static void acl_myrights_cb(struct imap_response *resp, void *user_data)
{
	struct acl_myrights_ctx *ctx = user_data;
	char *rights = imap_acl_parse_myrights(resp, ctx->mailbox);

	if (rights == NULL)
		return;
	g_free(ctx->rights);
	ctx->rights = rights;
}

gboolean imap_session_myrights(struct imap_session *session,
			       const char *mailbox, char **rights_r,
			       GError **error)
{
	struct acl_myrights_ctx ctx = {mailbox, NULL};
	struct imap_cmd *cmd = imap_cmd_new("MYRIGHTS");
	gboolean ok;

	ok = imap_cmd_add_string(cmd, mailbox, strlen(mailbox), FALSE, error) &&
	     imap_session_run(session, cmd, acl_myrights_cb, &ctx, NULL, error);
	imap_cmd_free(cmd);
	if (ok && ctx.rights == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "server sent no MYRIGHTS for %s", mailbox);
		ok = FALSE;
	}
	if (!ok) {
		g_free(ctx.rights);
		return FALSE;
	}
	*rights_r = ctx.rights;
	return TRUE;
}
