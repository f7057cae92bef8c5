/* log.h - diagnostics for the daemon.
 *
 * Messages go to stderr in the foreground and to syslog once daemonized.
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

/* Sets the most verbose level that is printed (default WARNING) and
 * whether to use syslog. Call once at startup before any thread starts;
 * the settings are read-only afterwards. */
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
