/* log.c - see include/log.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* Written by imapfs_log_setup() before threads start; read-only after. */
static enum imapfs_log_level log_max_level = IMAPFS_LOG_WARNING;
static enum imapfs_log_sink log_sink = IMAPFS_LOG_SINK_STDERR;
/* Serialises writes to stderr. */
static GMutex log_mutex;

/* systemd.exec(5): $JOURNAL_STREAM is "DEVICE:INODE" of the stream
 * socket a service's stderr is connected to; it counts only if @fd is that
 * socket (the variable is inherited by children whose stderr may be
 * elsewhere). */
static gboolean log_is_journal_stream(int fd)
{
	const char *v = g_getenv("JOURNAL_STREAM");
	guint64 dev, ino;
	struct stat st;
	char *end;

	if (v == NULL || !g_ascii_isdigit(v[0]))
		return FALSE;
	dev = g_ascii_strtoull(v, &end, 10);
	if (*end != ':' || !g_ascii_isdigit(end[1]))
		return FALSE;
	ino = g_ascii_strtoull(end + 1, &end, 10);
	if (*end != '\0' || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return FALSE;
	return (guint64)st.st_dev == dev && (guint64)st.st_ino == ino;
}

enum imapfs_log_sink imapfs_log_choose_sink(gboolean daemonized, int stderr_fd)
{
	/* Our stderr is the journal's stream (a systemd service, imapfs
	 * -f): the journal gets priorities through its native socket.
	 * GLib's own test looks at the peer's address instead. */
	if (log_is_journal_stream(stderr_fd) ||
	    g_log_writer_is_journald(stderr_fd))
		return IMAPFS_LOG_SINK_JOURNAL;
	return daemonized ? IMAPFS_LOG_SINK_SYSLOG : IMAPFS_LOG_SINK_STDERR;
}

static void log_to_stderr(enum imapfs_log_level level, const char *msg)
{
	static const char *const name[] = {"error", "warning", "info", "debug"};

	g_mutex_lock(&log_mutex);
	fprintf(stderr, "imapfs: %s: %s\n", name[level], msg);
	fflush(stderr);
	g_mutex_unlock(&log_mutex);
}

/* GLib's structured logging to the journal's native socket, with the
 * syslog priority; FALSE if the journal could not take it. */
static gboolean log_to_journal(enum imapfs_log_level level, const char *msg)
{
	static const char *const prio[] = {"3", "4", "6", "7"};
	/* Never G_LOG_LEVEL_ERROR: GLib aborts after those. */
	static const GLogLevelFlags flags[] = {
		G_LOG_LEVEL_CRITICAL, G_LOG_LEVEL_WARNING, G_LOG_LEVEL_INFO,
		G_LOG_LEVEL_DEBUG};
	const GLogField fields[] = {
		{"MESSAGE", msg, -1},
		{"PRIORITY", prio[level], -1},
		{"SYSLOG_IDENTIFIER", "imapfs", -1},
		{"GLIB_DOMAIN", "imapfs", -1},
	};

	return g_log_writer_journald(flags[level], fields, G_N_ELEMENTS(fields),
				     NULL) == G_LOG_WRITER_HANDLED;
}

void imapfs_log_setup(enum imapfs_log_level level, gboolean use_syslog)
{
	log_max_level = level;
	log_sink = imapfs_log_choose_sink(use_syslog, STDERR_FILENO);
	if (log_sink == IMAPFS_LOG_SINK_SYSLOG)
		openlog("imapfs", LOG_PID, LOG_USER);
}

gboolean imapfs_log_enabled(enum imapfs_log_level level)
{
	return level <= log_max_level;
}

void imapfs_log(enum imapfs_log_level level, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	va_list ap;
	char *msg;

	if (!imapfs_log_enabled(level))
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	switch (log_sink) {
	case IMAPFS_LOG_SINK_SYSLOG:
		syslog(prio[level], "%s", msg);
		break;
	case IMAPFS_LOG_SINK_JOURNAL:
		/* No journal socket after all: the stream still works. */
		if (!log_to_journal(level, msg))
			log_to_stderr(level, msg);
		break;
	case IMAPFS_LOG_SINK_STDERR:
		log_to_stderr(level, msg);
		break;
	}
	g_free(msg);
}
