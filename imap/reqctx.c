/* reqctx.c - see reqctx.h. */
#include "config.h"

#include "imap-error.h"
#include "reqctx.h"

static GPrivate reqctx_current;

void imap_reqctx_enter(struct imap_reqctx *ctx)
{
	g_private_set(&reqctx_current, ctx);
}

void imap_reqctx_leave(void)
{
	g_private_set(&reqctx_current, NULL);
}

gint64 imap_reqctx_clamp(gint64 deadline)
{
	const struct imap_reqctx *ctx = g_private_get(&reqctx_current);

	if (ctx == NULL || ctx->deadline == 0)
		return deadline;
	if (deadline < 0 || ctx->deadline < deadline)
		return ctx->deadline;
	return deadline;
}

gboolean imap_reqctx_interruptible(void)
{
	const struct imap_reqctx *ctx = g_private_get(&reqctx_current);

	return ctx != NULL && ctx->interrupted != NULL;
}

gboolean imap_reqctx_check(GError **error)
{
	const struct imap_reqctx *ctx = g_private_get(&reqctx_current);

	if (ctx == NULL || ctx->interrupted == NULL ||
	    !ctx->interrupted(ctx->data))
		return TRUE;
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "interrupted");
	return FALSE;
}

int imap_reqctx_slice_ms(int ms)
{
	if (!imap_reqctx_interruptible())
		return ms;
	if (ms < 0 || ms > IMAP_REQCTX_SLICE_MS)
		return IMAP_REQCTX_SLICE_MS;
	return ms;
}
