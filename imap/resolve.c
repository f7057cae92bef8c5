/* resolve.c - see resolve.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "imap-error.h"
#include "reqctx.h"
#include "resolve.h"

/* The look-up of names (atomic; imap_resolve_set_lookup()). */
static imap_resolve_fn *resolve_lookup = getaddrinfo;
/* Look-ups whose thread has not finished (atomic): for tests. */
static gint resolve_pending;

/* One look-up, shared by the caller and the thread until both let go. */
struct resolve_job {
	gint refs; /* atomic: the caller's and the thread's */
	imap_resolve_fn *lookup;
	char *host, *service;
	struct addrinfo hints;
	GMutex lock;
	GCond done_cond;
	/* Protected by lock: set once by the thread. */
	gboolean done;
	int rc, err_no;
	struct addrinfo *res; /* until the caller takes it */
};

static void resolve_job_unref(struct resolve_job *job)
{
	if (!g_atomic_int_dec_and_test(&job->refs))
		return;
	if (job->res != NULL)
		freeaddrinfo(job->res);
	g_free(job->host);
	g_free(job->service);
	g_mutex_clear(&job->lock);
	g_cond_clear(&job->done_cond);
	g_free(job);
}

static gpointer resolve_thread(gpointer data)
{
	struct resolve_job *job = data;
	struct addrinfo *res = NULL;
	int rc = job->lookup(job->host, job->service, &job->hints, &res);
	int e = errno;

	g_mutex_lock(&job->lock);
	job->rc = rc;
	job->err_no = e;
	job->res = res;
	job->done = TRUE;
	g_cond_signal(&job->done_cond);
	g_mutex_unlock(&job->lock);
	resolve_job_unref(job);
	g_atomic_int_add(&resolve_pending, -1);
	return NULL;
}

void imap_resolve_set_lookup(imap_resolve_fn *fn)
{
	g_atomic_pointer_set(&resolve_lookup, fn != NULL ? fn : getaddrinfo);
}

unsigned int imap_resolve_pending(void)
{
	return (unsigned int)g_atomic_int_get(&resolve_pending);
}

static void resolve_set_error(const char *host, int rc, int e, GError **error)
{
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO, "cannot resolve %s: %s",
		    host, rc == EAI_SYSTEM ? g_strerror(e) : gai_strerror(rc));
}

static void resolve_set_timeout(const char *host, GError **error)
{
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
		    "resolving %s timed out (no answer from the DNS server)",
		    host);
}

struct addrinfo *imap_resolve(const char *host, const char *service,
			      const struct addrinfo *hints, gint64 deadline,
			      GError **error)
{
	struct addrinfo numeric = *hints, *res = NULL;
	imap_resolve_fn *lookup = g_atomic_pointer_get(&resolve_lookup);
	struct resolve_job *job;
	GThread *thread;
	int rc;

	/* A numeric address needs no resolver. */
	numeric.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(host, service, &numeric, &res);
	if (rc == 0)
		return res;
	if (rc != EAI_NONAME) {
		resolve_set_error(host, rc, errno, error);
		return NULL;
	}
	deadline = imap_reqctx_clamp(deadline);
	/* Past already: no look-up is started (none could be waited for). */
	if (deadline >= 0 && g_get_monotonic_time() >= deadline) {
		resolve_set_timeout(host, error);
		return NULL;
	}
	job = g_new0(struct resolve_job, 1);
	job->refs = 2;
	job->lookup = lookup;
	job->host = g_strdup(host);
	job->service = g_strdup(service);
	job->hints = *hints;
	g_mutex_init(&job->lock);
	g_cond_init(&job->done_cond);
	g_atomic_int_inc(&resolve_pending);
	thread = g_thread_try_new("imapfs-resolve", resolve_thread, job, NULL);
	if (thread == NULL) {
		/* No thread to spare: resolve here, unbounded as before. */
		g_atomic_int_add(&resolve_pending, -1);
		job->refs = 1;
		resolve_job_unref(job);
		rc = lookup(host, service, hints, &res);
		if (rc != 0) {
			resolve_set_error(host, rc, errno, error);
			return NULL;
		}
		return res;
	}
	g_thread_unref(thread); /* detached: it ends on its own */
	g_mutex_lock(&job->lock);
	while (!job->done) {
		gint64 now = g_get_monotonic_time(), until;

		if (deadline >= 0 && now >= deadline) {
			resolve_set_timeout(host, error);
			break;
		}
		if (!imap_reqctx_check(error))
			break;
		/* A second at most without a deadline, a slice when the
		 * request may be interrupted. */
		until = deadline >= 0 ? deadline : now + G_USEC_PER_SEC;
		if (imap_reqctx_interruptible())
			until = MIN(until, now + IMAP_REQCTX_SLICE_MS * 1000);
		g_cond_wait_until(&job->done_cond, &job->lock, until);
	}
	if (job->done) {
		if (job->rc == 0) {
			res = job->res;
			job->res = NULL;
		} else {
			resolve_set_error(host, job->rc, job->err_no, error);
		}
	}
	g_mutex_unlock(&job->lock);
	resolve_job_unref(job);
	return res;
}
