/* test_defer.c - the order of deferred requests (fs/defer.c) and the
 * send gate of a non-idempotent command (imap/reqctx.c). */
#include "config.h"

#include "defer.h"
#include "imap-error.h"
#include "reqctx.h"

/* What the jobs saw, in the order they ran. */
struct record {
	GMutex lock;
	GArray *order;	  /* of int: job numbers */
	gint64 other_end; /* when the other node's job ended */
	gint64 first_end; /* when node 7's first job ended */
	GThread *ran_on;  /* the thread of the last job */
};

struct job {
	struct record *rec;
	int n;
	int sleep_ms;
};

static void job_fn(fuse_req_t req, void *args)
{
	struct job *j = args;

	g_usleep((gulong)j->sleep_ms * 1000);
	g_mutex_lock(&j->rec->lock);
	g_array_append_val(j->rec->order, j->n);
	if (j->n == 100)
		j->rec->other_end = g_get_monotonic_time();
	if (j->n == 0)
		j->rec->first_end = g_get_monotonic_time();
	j->rec->ran_on = g_thread_self();
	g_mutex_unlock(&j->rec->lock);
}

static struct job *job_new(struct record *rec, int n, int sleep_ms)
{
	struct job *j = g_new0(struct job, 1);

	j->rec = rec;
	j->n = n;
	j->sleep_ms = sleep_ms;
	return j;
}

/* Requests of one node run one at a time in the order given, those
 * answered from memory too; another node's do not wait for them. */
static void test_node_order(void)
{
	struct fs_defer *d = fs_defer_new(8, 5000);
	struct record rec = {.order = g_array_new(FALSE, FALSE, sizeof(int))};
	int i;

	g_mutex_init(&rec.lock);
	fs_defer_run_node(d, NULL, 7, FALSE, job_fn, job_new(&rec, 0, 300),
			  g_free);
	for (i = 1; i < 6; i++)
		/* 3 does not need the network: it still waits its turn. */
		fs_defer_run_node(d, NULL, 7, i == 3, job_fn,
				  job_new(&rec, i, 10), g_free);
	fs_defer_run_node(d, NULL, 9, FALSE, job_fn, job_new(&rec, 100, 10),
			  g_free);
	fs_defer_free(d);
	g_assert_cmpuint(rec.order->len, ==, 7);
	/* The other node's request did not queue behind node 7's. */
	g_assert_cmpint(g_array_index(rec.order, int, 0), ==, 100);
	g_assert_cmpint(rec.other_end, <, rec.first_end);
	for (i = 0; i < 6; i++)
		g_assert_cmpint(g_array_index(rec.order, int, i + 1), ==, i);
	g_array_unref(rec.order);
	g_mutex_clear(&rec.lock);
}

/* A request answered from memory, of a node with nothing pending, runs
 * at once in the calling thread; a network one never does. */
static void test_local_runs_inline(void)
{
	struct fs_defer *d = fs_defer_new(2, 5000);
	struct record rec = {.order = g_array_new(FALSE, FALSE, sizeof(int))};

	g_mutex_init(&rec.lock);
	fs_defer_run_node(d, NULL, 5, TRUE, job_fn, job_new(&rec, 1, 0),
			  g_free);
	g_assert_cmpuint(rec.order->len, ==, 1);
	g_assert_true(rec.ran_on == g_thread_self());
	fs_defer_run_node(d, NULL, 5, FALSE, job_fn, job_new(&rec, 2, 0),
			  g_free);
	fs_defer_free(d);
	g_assert_cmpuint(rec.order->len, ==, 2);
	g_assert_true(rec.ran_on != g_thread_self());
	g_array_unref(rec.order);
	g_mutex_clear(&rec.lock);
}

static gboolean flag_interrupted(void *data)
{
	return *(gboolean *)data;
}

/* Interrupted before sending: CANCELLED, and the request stays
 * interruptible; past the gate, interrupts are ignored. */
static void test_send_gate(void)
{
	gboolean intr = TRUE;
	struct imap_reqctx ctx = {.interrupted = flag_interrupted,
				  .data = &intr};
	GError *err = NULL;

	imap_reqctx_enter(&ctx);
	g_assert_false(imap_reqctx_begin_send(&err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_CANCELLED);
	g_clear_error(&err);
	g_assert_false(ctx.sent);
	g_assert_true(imap_reqctx_interruptible());
	intr = FALSE;
	g_assert_true(imap_reqctx_begin_send(&err));
	g_assert_no_error(err);
	intr = TRUE;
	g_assert_true(imap_reqctx_check(&err));
	g_assert_false(imap_reqctx_interruptible());
	imap_reqctx_leave();
}

/* Past the deadline nothing is sent (TIMEOUT); an unknown outcome
 * moves the deadline once by the grace. */
static void test_deadline_and_grace(void)
{
	gint64 now = g_get_monotonic_time();
	struct imap_reqctx ctx = {.deadline = now - 1,
				  .grace = 10 * G_USEC_PER_SEC};
	GError *err = NULL;

	imap_reqctx_enter(&ctx);
	g_assert_false(imap_reqctx_begin_send(&err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_clear_error(&err);
	imap_reqctx_grant_grace();
	g_assert_cmpint(ctx.deadline, >=, now + 10 * G_USEC_PER_SEC);
	g_assert_cmpint(ctx.grace, ==, 0);
	g_assert_true(imap_reqctx_begin_send(&err));
	now = ctx.deadline;
	imap_reqctx_grant_grace(); /* once only */
	g_assert_cmpint(ctx.deadline, ==, now);
	imap_reqctx_leave();
	/* Without a context nothing is refused. */
	g_assert_true(imap_reqctx_begin_send(&err));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/defer/node-order", test_node_order);
	g_test_add_func("/defer/local-runs-inline", test_local_runs_inline);
	g_test_add_func("/reqctx/send-gate", test_send_gate);
	g_test_add_func("/reqctx/deadline-and-grace", test_deadline_and_grace);
	return g_test_run();
}
