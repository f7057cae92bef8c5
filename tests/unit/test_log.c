/* test_log.c - imap/log.c: which sink the lines go to. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "log.h"

static char *stream_of(int fd)
{
	struct stat st;

	g_assert_cmpint(fstat(fd, &st), ==, 0);
	return g_strdup_printf("%lu:%lu", (unsigned long)st.st_dev,
			       (unsigned long)st.st_ino);
}

/* JOURNAL_STREAM naming the descriptor's socket: the journal, daemonized
 * or not. */
static void test_journal_stream(void)
{
	int sv[2];
	char *id;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
	id = stream_of(sv[0]);
	g_setenv("JOURNAL_STREAM", id, TRUE);
	g_assert_cmpint(imapfs_log_choose_sink(FALSE, sv[0]), ==,
			IMAPFS_LOG_SINK_JOURNAL);
	g_assert_cmpint(imapfs_log_choose_sink(TRUE, sv[0]), ==,
			IMAPFS_LOG_SINK_JOURNAL);
	/* Another socket (an inherited variable, stderr redirected) does
	 * not count. */
	g_assert_cmpint(imapfs_log_choose_sink(FALSE, sv[1]), ==,
			IMAPFS_LOG_SINK_STDERR);
	g_assert_cmpint(imapfs_log_choose_sink(TRUE, sv[1]), ==,
			IMAPFS_LOG_SINK_SYSLOG);
	g_unsetenv("JOURNAL_STREAM");
	g_free(id);
	close(sv[0]);
	close(sv[1]);
}

/* A fake or malformed JOURNAL_STREAM, or a pipe as stderr: today's
 * behaviour (stderr in the foreground, syslog daemonized). */
static void test_fake_journal_stream(void)
{
	static const char *const fakes[] = {"1:2", "", "garbage", "0:0",
					    "18446744073709551615:1"};
	int p[2];
	char *id;

	g_assert_cmpint(pipe(p), ==, 0);
	for (size_t i = 0; i < G_N_ELEMENTS(fakes); i++) {
		g_setenv("JOURNAL_STREAM", fakes[i], TRUE);
		g_assert_cmpint(imapfs_log_choose_sink(FALSE, p[1]), ==,
				IMAPFS_LOG_SINK_STDERR);
		g_assert_cmpint(imapfs_log_choose_sink(TRUE, p[1]), ==,
				IMAPFS_LOG_SINK_SYSLOG);
	}
	/* The right numbers, but a pipe is no journal stream. */
	id = stream_of(p[1]);
	g_setenv("JOURNAL_STREAM", id, TRUE);
	g_assert_cmpint(imapfs_log_choose_sink(FALSE, p[1]), ==,
			IMAPFS_LOG_SINK_STDERR);
	g_unsetenv("JOURNAL_STREAM");
	g_assert_cmpint(imapfs_log_choose_sink(FALSE, p[1]), ==,
			IMAPFS_LOG_SINK_STDERR);
	g_assert_cmpint(imapfs_log_choose_sink(TRUE, p[1]), ==,
			IMAPFS_LOG_SINK_SYSLOG);
	g_free(id);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/log/journal-stream", test_journal_stream);
	g_test_add_func("/log/fake-journal-stream", test_fake_journal_stream);
	return g_test_run();
}
