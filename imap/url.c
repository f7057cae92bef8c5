/* url.c - see url.h.
 *
 * A small, strict parser rather than a general RFC 3986 one: the accepted
 * language is exactly scheme "://" userinfo "@" host [":" port] ["/"].
 * Error messages quote only parts that cannot be secret (scheme, host,
 * port, path); the user part is never echoed, because a mistyped URL may
 * carry a password in it.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <arpa/inet.h>

#include "imap-error.h"
#include "url.h"

/* RFC 1035 limits a full name to 253 characters; user names longer than
 * this are not plausible and keep the error paths bounded. */
enum {
	URL_MAX_HOST = 253,
	URL_MAX_USER = 256,
};

static gboolean url_fail(GError **error, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

static gboolean url_fail(GError **error, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "invalid URL: %s",
		    msg);
	g_free(msg);
	return FALSE;
}

static gboolean url_is_scheme_char(char c)
{
	return g_ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
}

/* Percent-decodes the raw user part [@p, @p+@len). Returns the decoded,
 * NUL-terminated string or NULL with @error set. */
static char *url_decode_user(const char *p, size_t len, GError **error)
{
	GString *out;

	if (len == 0) {
		url_fail(error, "no user name: expected imaps://USER@HOST");
		return NULL;
	}
	if (len > 3 * URL_MAX_USER) {
		url_fail(error, "user name too long");
		return NULL;
	}
	out = g_string_sized_new(len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				goto bad_pct;
			hi = g_ascii_xdigit_value(p[i + 1]);
			lo = g_ascii_xdigit_value(p[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad_pct;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (c == ':') {
			url_fail(error,
				 "a password in the URL is not allowed; use "
				 "-o password_command=, -o password_file=, "
				 "IMAPFS_PASSWORD or ~/.netrc");
			goto fail;
		} else if (c == ' ' || c == '[' || c == ']') {
			url_fail(error, "invalid character in user name");
			goto fail;
		}
		/* Controls (CR, LF and NUL above all) could split an IMAP
		 * command or truncate the name, encoded or not. */
		if (c < 0x20 || c == 0x7f) {
			url_fail(error, "control character in user name");
			goto fail;
		}
		g_string_append_c(out, (char)c);
	}
	if (out->len > URL_MAX_USER) {
		url_fail(error, "user name too long");
		goto fail;
	}
	if (!g_utf8_validate(out->str, (gssize)out->len, NULL)) {
		url_fail(error, "user name is not valid UTF-8");
		goto fail;
	}
	return g_string_free(out, FALSE);

bad_pct:
	url_fail(error, "bad percent-encoding in user name");
fail:
	g_string_free(out, TRUE);
	return NULL;
}

static gboolean url_is_host_char(char c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* Parses [@p, @end) = host [":" port] into @url_r. */
static gboolean url_parse_hostport(const char *p, const char *end,
				   struct imap_url *url_r, GError **error)
{
	const char *host, *host_end, *q;
	unsigned long port = 0;

	if (*p == '[') {
		char buf[INET6_ADDRSTRLEN + 1];
		struct in6_addr addr;

		host = p + 1;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (host_end == NULL)
			return url_fail(error,
					"missing ']' after IPv6 address");
		if ((size_t)(host_end - host) >= sizeof(buf))
			return url_fail(error, "invalid IPv6 address");
		memcpy(buf, host, (size_t)(host_end - host));
		buf[host_end - host] = '\0';
		if (inet_pton(AF_INET6, buf, &addr) != 1)
			return url_fail(error, "invalid IPv6 address '%s'",
					buf);
		q = host_end + 1;
	} else {
		host = p;
		for (q = p; q < end && *q != ':'; q++) {
			if (!url_is_host_char(*q))
				return url_fail(error,
						"invalid character in host");
		}
		host_end = q;
		if (host_end == host)
			return url_fail(error, "empty host name");
		if (host_end - host > URL_MAX_HOST)
			return url_fail(error, "host name too long");
	}

	if (q < end) {
		const char *digits;

		if (*q != ':')
			return url_fail(error,
					"unexpected character after host");
		digits = ++q;
		for (; q < end; q++) {
			if (!g_ascii_isdigit(*q))
				return url_fail(error, "invalid port '%.*s'",
						(int)MIN(end - digits, 16),
						digits);
			port = port * 10 + (unsigned long)(*q - '0');
			if (port > 65535)
				return url_fail(error, "port out of range "
						       "(1-65535)");
		}
		if (q == digits)
			return url_fail(error, "empty port");
		if (port == 0)
			return url_fail(error, "port out of range (1-65535)");
	} else {
		port = url_r->implicit_tls ? 993 : 143;
	}

	url_r->host = g_strndup(host, (gsize)(host_end - host));
	url_r->port = (uint16_t)port;
	return TRUE;
}

gboolean imap_url_parse(const char *text, struct imap_url *url_r,
			GError **error)
{
	struct imap_url url = {0};
	const char *p = text, *authority, *auth_end, *at;
	size_t scheme_len;

	memset(url_r, 0, sizeof(*url_r));

	for (scheme_len = 0; url_is_scheme_char(p[scheme_len]); scheme_len++)
		;
	if (scheme_len == 0 || p[scheme_len] != ':' ||
	    strncmp(p + scheme_len, "://", 3) != 0)
		return url_fail(error, "expected imaps://USER@HOST[:PORT] or "
				       "imap://USER@HOST[:PORT]");
	if (scheme_len == 5 && g_ascii_strncasecmp(p, "imaps", 5) == 0) {
		url.implicit_tls = TRUE;
	} else if (scheme_len == 4 && g_ascii_strncasecmp(p, "imap", 4) == 0) {
		url.implicit_tls = FALSE;
	} else {
		return url_fail(error,
				"unsupported scheme '%.*s': use imaps:// or "
				"imap://",
				(int)MIN(scheme_len, 16), p);
	}
	authority = p + scheme_len + 3;
	auth_end = authority + strcspn(authority, "/?#");

	/* The last '@' ends the user: a host never contains one, and a user
	 * who typed alice@example.org@host unencoded still gets it right. */
	at = NULL;
	for (const char *s = authority; s < auth_end; s++)
		if (*s == '@')
			at = s;
	if (at == NULL)
		return url_fail(error,
				"no user name: expected imaps://USER@HOST");

	url.user = url_decode_user(authority, (size_t)(at - authority), error);
	if (url.user == NULL)
		return FALSE;
	if (!url_parse_hostport(at + 1, auth_end, &url, error))
		goto fail;

	if (*auth_end == '?' || *auth_end == '#') {
		url_fail(error, "a query or fragment is not allowed");
		goto fail;
	}
	if (*auth_end == '/' && auth_end[1] != '\0') {
		if (strpbrk(auth_end, "?#") != NULL)
			url_fail(error, "a query or fragment is not allowed");
		else
			url_fail(error,
				 "a path is not allowed (got '%.64s'): "
				 "mailboxes appear as directories",
				 auth_end);
		goto fail;
	}
	*url_r = url;
	return TRUE;
fail:
	imap_url_clear(&url);
	return FALSE;
}

void imap_url_clear(struct imap_url *url)
{
	g_free(url->user);
	g_free(url->host);
	memset(url, 0, sizeof(*url));
}
