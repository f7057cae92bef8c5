/* test_idle.c - the connection's listen mode (imap_conn_idle_begin,
 * imap_conn_listen, imap_conn_idle_end) against the scripted peer:
 * untagged data inside IDLE reaches the handlers, a wake-up fd written by
 * another thread ends the wait at once, silence is not an error, and an
 * unsolicited BYE is reported as IMAP_ERROR_BYE with the connection
 * broken.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "conn.h"
#include "imap-error.h"
#include "imappeer.h"
#include "mailbox.h"
#include "session-private.h"
#include "testtls.h"
#include "untagged.h"

static gpointer wake_later(gpointer data)
{
	uint64_t one = 1;

	g_usleep(100 * 1000);
	g_assert_cmpint(write(GPOINTER_TO_INT(data), &one, sizeof(one)), ==,
			sizeof(one));
	return NULL;
}

static void test_listen(void)
{
	static const struct peer_step steps[] = {
		{"IDLE", "+ idling\r\n* 4 EXISTS\r\n* 2 EXPUNGE\r\n",
		 PEER_REPLY, 0},
		{"DONE", "%t OK done\r\n", PEER_REPLY, 0},
		{"IDLE", "+ idling\r\n", PEER_REPLY, 0},
		{"DONE", "%t OK done\r\n", PEER_REPLY, 0},
		{"IDLE", "+ idling\r\n* OK Still here\r\n", PEER_REPLY, 0},
		{"DONE", "* 1 FETCH (FLAGS (\\Seen))\r\n%t OK done\r\n",
		 PEER_REPLY, 0},
		{"IDLE", "+ idling\r\n* BYE Session invalidated\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0},
	};
	struct peer *peer = peer_start("IDLE", NULL, steps);
	struct imap_session *s = peer_session(peer);
	struct imap_conn *conn = s->conn;
	struct imap_untagged *table = imap_untagged_new();
	struct imap_mailbox *mb = imap_mailbox_new(0, 0);
	int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	GError *err = NULL;
	GThread *t;
	uint64_t v;

	imap_mailbox_register(mb, table);
	/* Data inside IDLE goes to the handlers. */
	g_assert_true(imap_conn_idle_begin(conn, imap_untagged_dispatch_cb,
					   table, &err));
	g_assert_no_error(err);
	g_assert_true(imap_conn_idling(conn));
	g_assert_cmpint(imap_conn_listen(conn, wake, 5000,
					 imap_untagged_dispatch_cb, table,
					 &err),
			==, IMAP_CONN_LISTEN_DATA);
	g_assert_no_error(err);
	g_assert_cmpuint(imap_mailbox_exists(mb), ==, 3);
	g_assert_true(imap_conn_idle_end(conn, imap_untagged_dispatch_cb, table,
					 &err));
	g_assert_no_error(err);
	g_assert_false(imap_conn_idling(conn));

	/* Another thread ends the wait (the timeout is far away). */
	g_assert_true(imap_conn_idle_begin(conn, NULL, NULL, &err));
	t = g_thread_new("waker", wake_later, GINT_TO_POINTER(wake));
	g_assert_cmpint(imap_conn_listen(conn, wake, 60000, NULL, NULL, &err),
			==, IMAP_CONN_LISTEN_WOKEN);
	g_thread_join(t);
	g_assert_cmpint(read(wake, &v, sizeof(v)), ==, sizeof(v));
	g_assert_true(imap_conn_idle_end(conn, NULL, NULL, &err));
	g_assert_no_error(err);

	/* Silence is QUIET, not an error; "* OK Still here" is data; what
	 * comes with the completion of DONE reaches the handlers too. */
	g_assert_true(imap_conn_idle_begin(conn, imap_untagged_dispatch_cb,
					   table, &err));
	g_assert_cmpint(imap_conn_listen(conn, wake, 2000,
					 imap_untagged_dispatch_cb, table,
					 &err),
			==, IMAP_CONN_LISTEN_DATA);
	g_assert_cmpint(imap_conn_listen(conn, wake, 200,
					 imap_untagged_dispatch_cb, table,
					 &err),
			==, IMAP_CONN_LISTEN_QUIET);
	g_assert_no_error(err);
	g_assert_false(imap_conn_is_broken(conn));
	g_assert_true(imap_conn_idle_end(conn, imap_untagged_dispatch_cb, table,
					 &err));
	g_assert_no_error(err);
	{
		struct imap_mailbox_changes ch;

		imap_mailbox_take_changes(mb, &ch);
		/* msn 1's UID is unknown: no flag change can be named */
		g_assert_cmpuint(ch.flags->len, ==, 0);
		imap_mailbox_changes_clear(&ch);
	}

	/* An unsolicited BYE: reconnect, the connection is broken. */
	g_assert_true(imap_conn_idle_begin(conn, NULL, NULL, &err));
	g_assert_cmpint(imap_conn_listen(conn, wake, 5000, NULL, NULL, &err),
			==, IMAP_CONN_LISTEN_ERROR);
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_BYE);
	g_clear_error(&err);
	g_assert_true(imap_conn_is_broken(conn));

	close(wake);
	imap_untagged_free(table);
	imap_mailbox_free(mb);
	imap_session_free(s);
	peer_stop(peer);
	peer_assert_done(peer);
	peer_free(peer);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	testtls_setup();
	g_test_add_func("/idle/listen", test_listen);
	ret = g_test_run();
	testtls_teardown();
	return ret;
}
