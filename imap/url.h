/* url.h - parsing the account URL given on the command line.
 *
 *   imaps://USER@HOST[:PORT]   implicit TLS (default port 993)
 *   imap://USER@HOST[:PORT]    STARTTLS required (default port 143)
 *
 * USER may be percent-encoded (alice%40example.org). HOST may be a name,
 * an IPv4 address or a bracketed IPv6 address. A password in the URL
 * (user:pass@) is refused: secrets never go on the command line. An
 * optional trailing "/" is accepted; any other path, query or fragment is
 * refused.  Pure functions, thread-safe.
 */
#ifndef IMAPFS_IMAP_URL_H
#define IMAPFS_IMAP_URL_H

#include <glib.h>
#include <stdint.h>

struct imap_url {
	gboolean implicit_tls; /* imaps:// */
	char *user;	       /* decoded; non-empty, no CR/LF/NUL */
	char *host;	       /* without brackets for IPv6 */
	uint16_t port;
};

/* Parses @text into @url_r (fields owned by @url_r; release with
 * imap_url_clear()). Returns FALSE with IMAP_ERROR_INVALID and a message
 * that says what is wrong (never echoing a password) on any error. */
gboolean imap_url_parse(const char *text, struct imap_url *url_r,
			GError **error);

/* Frees the fields of @url and zeroes it. */
void imap_url_clear(struct imap_url *url);

#endif
