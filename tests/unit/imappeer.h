/* imappeer.h - a scripted IMAP server over TLS for unit tests of imap/.
 *
 * The peer listens on 127.0.0.1 (certificate from testtls.h), greets with
 * a capability list, and answers the commands a session sends while it
 * logs in and out (AUTHENTICATE, LOGIN, CAPABILITY, ENABLE, NAMESPACE,
 * LOGOUT) by itself.  Every other command is matched, in order, against a
 * script of steps and answered as the step says; it is also appended to a
 * transcript, without its tag, exactly as it arrived (CRLF included;
 * literal contents above 4 KiB replaced by "<n bytes>" and hashed).  A
 * command the script does not expect is answered BAD and noted in errors.
 *
 * AUTHENTICATE OAUTHBEARER and XOAUTH2 (announce them in @caps) always
 * fail: the peer sends PEER_OAUTH_ERROR_B64 as a challenge, appends
 * "AUTHENTICATE <mechanism>\r\nSASL: <the client's answer>\r\n" to the
 * transcript and answers NO [AUTHENTICATIONFAILED] token refused.
 *
 * Each connection runs in a thread of its own; peer_stop() ends them all.
 * Threading: the main thread starts, stops and reads results after stop.
 */
#ifndef IMAPFS_TESTS_IMAPPEER_H
#define IMAPFS_TESTS_IMAPPEER_H

#include <glib.h>
#include <stdint.h>

#include "session.h"

/* {"status":"invalid_token"} in base64. */
#define PEER_OAUTH_ERROR_B64 "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0="

enum peer_action {
	/* Read the whole command (answering "+" to each synchronising
	 * literal), then send the reply. */
	PEER_REPLY,
	/* At the first synchronising literal, send the reply instead of
	 * "+"; the command ends there. */
	PEER_REFUSE_LITERAL,
	/* Read @arg bytes of the first literal, then hang up. */
	PEER_HANGUP_MID_LITERAL,
	/* Read the whole command, then hang up without a reply. */
	PEER_HANGUP,
};

struct peer_step {
	/* The command (after the tag) must start with this. NULL ends the
	 * script. */
	const char *expect;
	/* Sent as the answer; every "%t" becomes the command's tag. */
	const char *reply;
	enum peer_action action;
	size_t arg;
};

struct peer {
	/* Set by peer_start(). */
	uint16_t port;
	/* Logins allowed at once (0: any number); the next one is refused
	 * with NO [LIMIT], as Dovecot's mail_max_userip_connections does.
	 * Set it under lock while connections may come. */
	unsigned int max_logins;
	unsigned int logged_in; /* protected by lock */
	/* Results: valid after peer_stop(). */
	GString *transcript;
	GString *errors;
	unsigned int connections;
	/* SHA-256 (hex) and size of the last literal above 4 KiB. */
	char *big_sha256;
	uint64_t big_size;
	/* Private. */
	char *caps;
	char *namespace;
	const struct peer_step *steps;
	size_t next_step;
	GMutex lock;
	int listen_fd;
	int wake[2];
	GThread *thread;
	GPtrArray *conns;
};

/* Starts a peer announcing "IMAP4rev1 AUTH=PLAIN SASL-IR" plus @caps
 * (space-separated, may be ""), answering NAMESPACE with @namespace (the
 * three lists, e.g. "((\"\" \"/\")) NIL NIL"; NULL: a default) when @caps
 * has NAMESPACE, and working through @steps (kept by reference; an array
 * ending with an entry whose expect is NULL). */
struct peer *peer_start(const char *caps, const char *namespace,
			const struct peer_step *steps);

/* Stops accepting, hangs up every connection, joins the threads. After
 * this the results may be read; peer_free() frees. */
void peer_stop(struct peer *peer);
void peer_free(struct peer *peer);

/* An account for the peer (127.0.0.1, implicit TLS, the test CA, a 5 s
 * timeout); static storage, valid until the next call. */
const struct imap_account *peer_account(const struct peer *peer);

/* Opens a session on the peer; asserts success. */
struct imap_session *peer_session(const struct peer *peer);

/* Asserts that the peer saw no unexpected command and the script was
 * worked through completely. Call after peer_stop(). */
void peer_assert_done(struct peer *peer);

#endif
