/* mutate_probe.c - runs the write requests of imap/mutate.h against a real
 * server, for tests/integration/test_mutate.py, which prepares the server,
 * runs this and checks the result over its own IMAP connection.
 *
 * The account comes from the environment (IMAP_HOST, IMAP_PORT (implicit
 * TLS), IMAP_CAFILE, IMAP_USER, IMAP_PASSWORD: never argv); PROBE_FILE is
 * the message to APPEND (streamed from the file with pread), PROBE_MSGID
 * its Message-ID.  Each step prints "name=value" lines on stdout; a step
 * that fails prints "name=error:<code>" (an imap-error.h code) and the
 * probe goes on.  Exit status 0 unless the setup failed.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap-error.h"
#include "mutate.h"

static gssize probe_pread(void *user_data, uint64_t offset, void *buf,
			  size_t len, GError **error)
{
	int fd = GPOINTER_TO_INT(user_data);
	ssize_t n = pread(fd, buf, len, (off_t)offset);

	if (n <= 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO,
			    "short read from the probe file");
		return -1;
	}
	return n;
}

/* Prints "name=error:<code>" for a failure; returns @ok. */
static gboolean probe_check(const char *name, gboolean ok, GError **error)
{
	if (!ok) {
		printf("%s=error:%d\n", name, (*error)->code);
		fprintf(stderr, "%s: %s\n", name, (*error)->message);
		g_clear_error(error);
	}
	return ok;
}

static const char *probe_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL) {
		fprintf(stderr, "mutate_probe: %s is not set\n", name);
		exit(2);
	}
	return v;
}

int main(void)
{
	struct imap_account account = {
		.host = (char *)probe_env("IMAP_HOST"),
		.port = (uint16_t)atoi(probe_env("IMAP_PORT")),
		.implicit_tls = TRUE,
		.cafile = (char *)probe_env("IMAP_CAFILE"),
		.user = (char *)probe_env("IMAP_USER"),
		.password = (char *)probe_env("IMAP_PASSWORD"),
		.timeout_ms = 20000,
	};
	const char *box = "Probe \"q\"";
	struct imap_append_req req = {.mailbox = box};
	struct imap_append_result ar;
	struct imap_copy_result cr;
	struct imap_mailbox_status st;
	struct imap_session *s;
	GError *error = NULL;
	struct stat sb;
	uint32_t uid, uidvalidity, found = 0, inbox_copy = 0;
	uint64_t modseq = 0, modseq2 = 0;
	gboolean exists = FALSE;
	char *flags = NULL, *perm;
	int fd;

	fd = open(probe_env("PROBE_FILE"), O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0)
		return 2;
	s = imap_session_open(&account, &error);
	if (s == NULL) {
		fprintf(stderr, "open: %s\n", error->message);
		return 2;
	}
	printf("uidplus=%d move=%d condstore=%d\n",
	       imap_session_has_cap(s, "UIDPLUS"),
	       imap_session_has_cap(s, "MOVE"),
	       imap_session_has_cap(s, "CONDSTORE"));
	printf("prefix=%s\n", imap_session_personal_prefix(s));

	probe_check("create", imap_session_create(s, box, &error), &error);
	printf("create_again=%s\n",
	       imap_session_create(s, box, &error) ? "ok" : "");
	if (error != NULL)
		probe_check("create_again", FALSE, &error);
	probe_check("create_target", imap_session_create(s, "Target", &error),
		    &error);

	req.source.size = (uint64_t)sb.st_size;
	req.source.read = probe_pread;
	req.source.user_data = GINT_TO_POINTER(fd);
	req.flags = "\\Seen $Label1";
	req.internaldate = 1700000000;
	if (!probe_check("append", imap_session_append(s, &req, &ar, &error),
			 &error))
		return 1;
	printf("append=%u %u\n", ar.uidvalidity, ar.uid);
	uid = ar.uid;

	if (probe_check("status", imap_session_status(s, box, &st, &error),
			&error))
		printf("status=%u %u %u\n", st.exists, st.uidnext,
		       st.uidvalidity);

	if (probe_check("find",
			imap_session_find_appended(s, box, ar.uidvalidity, 1,
						   probe_env("PROBE_MSGID"),
						   (uint64_t)sb.st_size, &found,
						   &uidvalidity, &error),
			&error))
		printf("find=%u %u\n", found, uidvalidity);
	/* A wrong size matches nothing. */
	if (probe_check("find_wrong_size",
			imap_session_find_appended(
				s, box, 0, 1, probe_env("PROBE_MSGID"),
				(uint64_t)sb.st_size + 1, &found, NULL, &error),
			&error))
		printf("find_wrong_size=%u\n", found);

	if (probe_check("state",
			imap_session_uid_state(s, box, ar.uidvalidity, uid,
					       &exists, &modseq, &flags,
					       &error),
			&error))
		printf("state=%d %s\n", exists, flags != NULL ? flags : "");
	g_free(flags);

	perm = imap_session_permanent_flags(s, box, &error);
	if (probe_check("perm", perm != NULL, &error))
		printf("perm=%s\n", perm);
	g_free(perm);

	if (probe_check("store",
			imap_session_store_flags(s, box, ar.uidvalidity, uid,
						 IMAP_STORE_ADD, "\\Flagged",
						 modseq, &modseq2, &error),
			&error))
		printf("store=%d\n", modseq2 > modseq);
	/* The MODSEQ from before that store is stale now. */
	printf("store_stale=%s\n",
	       imap_session_store_flags(s, box, ar.uidvalidity, uid,
					IMAP_STORE_ADD, "$Stale", modseq, NULL,
					&error)
		       ? "ok"
		       : "");
	if (error != NULL)
		probe_check("store_stale", FALSE, &error);

	if (probe_check("copy",
			imap_session_copy(s, box, ar.uidvalidity, uid, "INBOX",
					  &cr, &error),
			&error)) {
		printf("copy=%u\n", cr.uid);
		inbox_copy = cr.uid;
	}
	probe_check("move_missing",
		    imap_session_move(s, box, ar.uidvalidity, uid,
				      "Nonexistent", FALSE, &cr, NULL, &error),
		    &error);
	if (probe_check("move",
			imap_session_move(s, box, ar.uidvalidity, uid, "Target",
					  FALSE, &cr, NULL, &error),
			&error))
		printf("move=%u %u\n", cr.uidvalidity, cr.uid);

	if (probe_check("status_inbox",
			imap_session_status(s, "INBOX", &st, &error), &error))
		printf("inbox_uidvalidity=%u\n", st.uidvalidity);
	if (probe_check("expunge",
			imap_session_expunge_uid(s, "INBOX", st.uidvalidity,
						 inbox_copy, FALSE, NULL,
						 &error),
			&error))
		printf("expunge=ok\n");

	probe_check("delete_full", imap_session_delete(s, "Target", &error),
		    &error);
	probe_check("rename", imap_session_rename(s, box, "Renamed", &error),
		    &error);
	probe_check("delete_empty", imap_session_delete(s, "Renamed", &error),
		    &error);
	probe_check("delete_missing", imap_session_delete(s, "Renamed", &error),
		    &error);
	imap_session_free(s);
	close(fd);
	printf("done=1\n");
	return 0;
}
