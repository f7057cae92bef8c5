/* log.c - see include/log.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"

/* Written once by imapfs_log_setup() before threads start; read-only after. */
static enum imapfs_log_level log_max_level = IMAPFS_LOG_WARNING;
static gboolean log_syslog;
/* Serialises writes to stderr. */
static GMutex log_mutex;

void imapfs_log_setup(enum imapfs_log_level level, gboolean use_syslog)
{
	log_max_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("imapfs", LOG_PID, LOG_USER);
}

gboolean imapfs_log_enabled(enum imapfs_log_level level)
{
	return level <= log_max_level;
}

void imapfs_log(enum imapfs_log_level level, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *const name[] = {"error", "warning", "info", "debug"};
	va_list ap;
	char *msg;

	if (!imapfs_log_enabled(level))
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog(prio[level], "%s", msg);
	} else {
		g_mutex_lock(&log_mutex);
		fprintf(stderr, "imapfs: %s: %s\n", name[level], msg);
		fflush(stderr);
		g_mutex_unlock(&log_mutex);
	}
	g_free(msg);
}
