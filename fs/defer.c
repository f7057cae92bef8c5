/* defer.c - see defer.h. */
#include "config.h"

#include "defer.h"
#include "log.h"
#include "reqctx.h"

struct fs_defer {
	GThreadPool *threads; /* immutable */
	int timeout_ms;	      /* immutable */
	GMutex lock;
	/* node (uint64_t *) -> struct defer_node, present while a request
	 * of the node runs. Protected by @lock. */
	GHashTable *nodes;
};

/* The requests of one node after the one running. */
struct defer_node {
	uint64_t node;	/* the key */
	GQueue waiting; /* of struct defer_job, oldest first */
};

struct defer_job {
	struct fs_defer *defer;
	fuse_req_t req;
	fs_defer_fn *fn;
	void *args;
	GDestroyNotify free_args;
	gint64 deadline;
	uint64_t node; /* 0: not serialised */
};

static void defer_push(struct defer_job *job);

/* The interrupt test of a deferred request: libfuse marks the request
 * when the kernel sends FUSE_INTERRUPT for it (also when the interrupt
 * came before the request was picked up). */
static gboolean defer_interrupted(void *data)
{
	return fuse_req_interrupted(data) != 0;
}

/* The request of @node that ran is done: the next one's turn. */
static void defer_node_done(struct fs_defer *d, uint64_t node)
{
	struct defer_node *n;
	struct defer_job *next;

	g_mutex_lock(&d->lock);
	n = g_hash_table_lookup(d->nodes, &node);
	next = g_queue_pop_head(&n->waiting);
	if (next == NULL)
		g_hash_table_remove(d->nodes, &node);
	g_mutex_unlock(&d->lock);
	if (next != NULL)
		defer_push(next);
}

static void defer_execute(struct defer_job *job)
{
	struct imap_reqctx ctx = {
		.deadline = job->deadline,
		.interrupted = defer_interrupted,
		.data = job->req,
		/* An unknown outcome gets one more timeout to be learned. */
		.grace = job->defer != NULL
				 ? (gint64)job->defer->timeout_ms * 1000
				 : 0};

	imap_reqctx_enter(&ctx);
	job->fn(job->req, job->args);
	imap_reqctx_leave();
	if (job->free_args != NULL)
		job->free_args(job->args);
	if (job->node != 0)
		defer_node_done(job->defer, job->node);
	g_free(job);
}

static void defer_thread(gpointer data, gpointer user_data)
{
	defer_execute(data);
}

/* Hands @job to a network thread. */
static void defer_push(struct defer_job *job)
{
	GError *err = NULL;

	if (!g_thread_pool_push(job->defer->threads, job, &err)) {
		/* No thread could be made: serve it here rather than not
		 * at all. */
		imapfs_warning("cannot start a network thread: %s",
			       err->message);
		g_error_free(err);
		defer_execute(job);
	}
}

struct fs_defer *fs_defer_new(unsigned int max_threads, int timeout_ms)
{
	struct fs_defer *d = g_new0(struct fs_defer, 1);

	d->timeout_ms = timeout_ms;
	g_mutex_init(&d->lock);
	d->nodes = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					 g_free);
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
	/* A node's next request is pushed by the one before it: wait until
	 * no node has any (each ends within its deadline), so that nothing
	 * is pushed into the pool while it is freed. */
	g_mutex_lock(&defer->lock);
	while (g_hash_table_size(defer->nodes) > 0) {
		g_mutex_unlock(&defer->lock);
		g_usleep(10 * 1000);
		g_mutex_lock(&defer->lock);
	}
	g_mutex_unlock(&defer->lock);
	g_thread_pool_free(defer->threads, FALSE, TRUE);
	g_hash_table_destroy(defer->nodes);
	g_mutex_clear(&defer->lock);
	g_free(defer);
}

static struct defer_job *defer_job_new(struct fs_defer *defer, fuse_req_t req,
				       fs_defer_fn *fn, void *args,
				       GDestroyNotify free_args)
{
	struct defer_job *job = g_new0(struct defer_job, 1);

	job->defer = defer;
	job->req = req;
	job->fn = fn;
	job->args = args;
	job->free_args = free_args;
	job->deadline = defer != NULL ? g_get_monotonic_time() +
						(gint64)defer->timeout_ms * 1000
				      : 0;
	return job;
}

void fs_defer_run(struct fs_defer *defer, fuse_req_t req, fs_defer_fn *fn,
		  void *args, GDestroyNotify free_args)
{
	struct defer_job *job = defer_job_new(defer, req, fn, args, free_args);

	if (defer == NULL)
		defer_execute(job);
	else
		defer_push(job);
}

void fs_defer_run_node(struct fs_defer *defer, fuse_req_t req, uint64_t node,
		       gboolean local, fs_defer_fn *fn, void *args,
		       GDestroyNotify free_args)
{
	struct defer_job *job = defer_job_new(defer, req, fn, args, free_args);
	struct defer_node *n;

	if (defer == NULL || node == 0) {
		if (defer == NULL || local)
			defer_execute(job);
		else
			defer_push(job);
		return;
	}
	job->node = node;
	g_mutex_lock(&defer->lock);
	n = g_hash_table_lookup(defer->nodes, &node);
	if (n != NULL) {
		/* Its turn comes when the one before it is done. */
		g_queue_push_tail(&n->waiting, job);
		g_mutex_unlock(&defer->lock);
		return;
	}
	n = g_new0(struct defer_node, 1);
	n->node = node;
	g_queue_init(&n->waiting);
	g_hash_table_insert(defer->nodes, &n->node, n);
	g_mutex_unlock(&defer->lock);
	if (local)
		defer_execute(job);
	else
		defer_push(job);
}
