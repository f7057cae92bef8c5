/* defer.c - see defer.h. */
#include "config.h"

#include "defer.h"
#include "log.h"
#include "reqctx.h"

struct fs_defer {
	GThreadPool *threads; /* immutable */
	int timeout_ms;	      /* immutable */
};

struct defer_job {
	fuse_req_t req;
	fs_defer_fn *fn;
	void *args;
	GDestroyNotify free_args;
	gint64 deadline;
};

/* The interrupt test of a deferred request: libfuse marks the request
 * when the kernel sends FUSE_INTERRUPT for it (also when the interrupt
 * came before the request was picked up). */
static gboolean defer_interrupted(void *data)
{
	return fuse_req_interrupted(data) != 0;
}

static void defer_execute(struct defer_job *job)
{
	struct imap_reqctx ctx = {.deadline = job->deadline,
				  .interrupted = defer_interrupted,
				  .data = job->req};

	imap_reqctx_enter(&ctx);
	job->fn(job->req, job->args);
	imap_reqctx_leave();
	if (job->free_args != NULL)
		job->free_args(job->args);
	g_free(job);
}

static void defer_thread(gpointer data, gpointer user_data)
{
	defer_execute(data);
}

struct fs_defer *fs_defer_new(unsigned int max_threads, int timeout_ms)
{
	struct fs_defer *d = g_new0(struct fs_defer, 1);

	d->timeout_ms = timeout_ms;
	/* Non-exclusive: threads are made as requests come and end when
	 * idle, so a quiet mount holds none of them. */
	d->threads = g_thread_pool_new(defer_thread, d, (gint)max_threads,
				       FALSE, NULL);
	return d;
}

void fs_defer_free(struct fs_defer *defer)
{
	if (defer == NULL)
		return;
	g_thread_pool_free(defer->threads, FALSE, TRUE);
	g_free(defer);
}

void fs_defer_run(struct fs_defer *defer, fuse_req_t req, fs_defer_fn *fn,
		  void *args, GDestroyNotify free_args)
{
	struct defer_job *job = g_new0(struct defer_job, 1);
	GError *err = NULL;

	job->req = req;
	job->fn = fn;
	job->args = args;
	job->free_args = free_args;
	job->deadline = g_get_monotonic_time() +
			(gint64)(defer != NULL ? defer->timeout_ms : 0) * 1000;
	if (defer == NULL) {
		job->deadline = 0;
		defer_execute(job);
		return;
	}
	if (!g_thread_pool_push(defer->threads, job, &err)) {
		/* No thread could be made: serve it here rather than not
		 * at all. */
		imapfs_warning("cannot start a network thread: %s",
			       err->message);
		g_error_free(err);
		defer_execute(job);
	}
}
