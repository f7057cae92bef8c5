/* log.h - diagnostics for the daemon.
 *
 * Messages go to stderr in the foreground and to syslog once daemonized;
 * when stderr is the systemd journal's stream ($JOURNAL_STREAM names it:
 * a service, imapfs -f) they go to the journal through GLib's structured
 * logging (g_log_writer_journald) with a PRIORITY field, and to stderr if
 * the journal does not take them.
 * Nothing secret is ever passed here: callers log commands through
 * imap_cmd_describe(), which redacts, and never log message bodies.
 */
#ifndef IMAPFS_LOG_H
#define IMAPFS_LOG_H

#include <glib.h>

enum imapfs_log_level {
	IMAPFS_LOG_ERROR,
	IMAPFS_LOG_WARNING,
	IMAPFS_LOG_INFO,
	IMAPFS_LOG_DEBUG,
};

/* Where lines go. */
enum imapfs_log_sink {
	IMAPFS_LOG_SINK_STDERR,
	IMAPFS_LOG_SINK_SYSLOG,
	IMAPFS_LOG_SINK_JOURNAL,
};

/* The sink for a process whose stderr is @stderr_fd: the journal if
 * $JOURNAL_STREAM names that descriptor's socket (checked with fstat, not
 * just the variable), else syslog when @daemonized, else stderr. Pure
 * apart from reading the environment and fstat; any thread. */
enum imapfs_log_sink imapfs_log_choose_sink(gboolean daemonized, int stderr_fd);

/* Sets the most verbose level that is printed (default WARNING) and the
 * sink (imapfs_log_choose_sink() for stderr; @use_syslog: daemonized).
 * Call before any thread starts (again after daemonizing); the settings
 * are read-only afterwards. */
void imapfs_log_setup(enum imapfs_log_level level, gboolean use_syslog);

/* TRUE if messages of @level are printed (cheap; use it to avoid building
 * expensive debug strings). Thread-safe. */
gboolean imapfs_log_enabled(enum imapfs_log_level level);

/* Prints one line (a trailing newline is added). Thread-safe: lines from
 * different threads never interleave. */
void imapfs_log(enum imapfs_log_level level, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

#define imapfs_debug(...) imapfs_log(IMAPFS_LOG_DEBUG, __VA_ARGS__)
#define imapfs_info(...) imapfs_log(IMAPFS_LOG_INFO, __VA_ARGS__)
#define imapfs_warning(...) imapfs_log(IMAPFS_LOG_WARNING, __VA_ARGS__)
#define imapfs_error(...) imapfs_log(IMAPFS_LOG_ERROR, __VA_ARGS__)

#endif
