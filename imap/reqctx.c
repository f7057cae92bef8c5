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

	return ctx != NULL && ctx->interrupted != NULL && !ctx->sent;
}

gboolean imap_reqctx_check(GError **error)
{
	const struct imap_reqctx *ctx = g_private_get(&reqctx_current);

	if (ctx == NULL || ctx->interrupted == NULL || ctx->sent ||
	    !ctx->interrupted(ctx->data))
		return TRUE;
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "interrupted");
	return FALSE;
}

gboolean imap_reqctx_begin_send(GError **error)
{
	struct imap_reqctx *ctx = g_private_get(&reqctx_current);

	if (ctx == NULL)
		return TRUE;
	if (!imap_reqctx_check(error))
		return FALSE;
	if (ctx->deadline != 0 && g_get_monotonic_time() >= ctx->deadline) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
			    "deadline passed before sending");
		return FALSE;
	}
	ctx->sent = TRUE;
	return TRUE;
}

int imap_reqctx_slice_ms(int ms)
{
	if (!imap_reqctx_interruptible())
		return ms;
	if (ms < 0 || ms > IMAP_REQCTX_SLICE_MS)
		return IMAP_REQCTX_SLICE_MS;
	return ms;
}

void imap_reqctx_grant_grace(void)
{
	struct imap_reqctx *ctx = g_private_get(&reqctx_current);
	gint64 until;

	if (ctx == NULL || ctx->deadline == 0 || ctx->grace <= 0)
		return;
	until = g_get_monotonic_time() + ctx->grace;
	if (until > ctx->deadline)
		ctx->deadline = until;
	ctx->grace = 0;
}
