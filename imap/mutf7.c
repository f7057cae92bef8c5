/* mutf7.c - see mutf7.h.
 *
 * The decoder accepts exactly the strings the encoder produces.  That is
 * what makes the mapping between server names and file names a bijection:
 * if two different spellings decoded to the same UTF-8 name, one of the two
 * mailboxes would be unreachable from the file system, and a name built from
 * a directory name might not be the one the server has.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "imap-error.h"
#include "mutf7.h"

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static gboolean is_direct(gunichar c)
{
	return c >= 0x20 && c <= 0x7e;
}

static gboolean decode_fail(GError **error, size_t pos, const char *why)
{
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
		    "invalid modified UTF-7 mailbox name at offset %zu: %s",
		    pos, why);
	return FALSE;
}

/* Decodes the base64 run that starts at in[*pos] (just after "&") up to and
 * including its "-", appending the characters to @out. */
static gboolean decode_run(const char *in, size_t *pos, GString *out,
			   GError **error)
{
	size_t i = *pos;
	guint32 bits = 0;
	unsigned int nbits = 0;
	gunichar high = 0;
	gboolean any = FALSE;

	for (;; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == '-')
			break;
		if (c == '\0')
			return decode_fail(error, i, "unterminated &-run");
		v = b64_value(c);
		if (v < 0)
			return decode_fail(error, i,
					   "character outside modified base64");
		bits = (bits << 6) | (guint32)v;
		nbits += 6;
		if (nbits < 16)
			continue;

		nbits -= 16;
		guint32 unit = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;

		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return decode_fail(
					error, i, "high surrogate without low");
			g_string_append_unichar(
				out, 0x10000 + ((high - 0xd800) << 10) +
					     (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return decode_fail(error, i, "lone low surrogate");
		} else if (unit == 0) {
			return decode_fail(error, i, "encoded U+0000");
		} else if (is_direct(unit)) {
			/* The encoder writes printable ASCII as itself. */
			return decode_fail(error, i, "encoded printable ASCII");
		} else {
			g_string_append_unichar(out, unit);
		}
		any = TRUE;
	}

	if (high != 0)
		return decode_fail(error, i, "high surrogate at end of run");
	if (!any)
		return decode_fail(error, i, "empty &-run");
	/* A canonical run ends with fewer than 6 leftover bits, all zero. */
	if (nbits >= 6)
		return decode_fail(error, i, "superfluous base64 character");
	if (bits != 0)
		return decode_fail(error, i, "non-zero padding bits");
	*pos = i + 1;
	return TRUE;
}

char *imap_mutf7_decode(const char *in, GError **error)
{
	GString *out;
	size_t i = 0;
	/* TRUE right after a run: a second run there should have been merged
	 * into the first one by the encoder. */
	gboolean after_run = FALSE;

	g_return_val_if_fail(in != NULL, NULL);

	out = g_string_sized_new(strlen(in) + 1);
	while (in[i] != '\0') {
		unsigned char c = (unsigned char)in[i];

		if (!is_direct(c)) {
			decode_fail(error, i, "byte outside 0x20-0x7e");
			goto fail;
		}
		if (c != '&') {
			g_string_append_c(out, (char)c);
			after_run = FALSE;
			i++;
			continue;
		}
		if (in[i + 1] == '-') {
			g_string_append_c(out, '&');
			after_run = FALSE;
			i += 2;
			continue;
		}
		if (after_run) {
			decode_fail(error, i, "adjacent &-runs");
			goto fail;
		}
		i++;
		if (!decode_run(in, &i, out, error))
			goto fail;
		after_run = TRUE;
	}
	return g_string_free(out, FALSE);

fail:
	g_string_free(out, TRUE);
	return NULL;
}

static void flush_bits(GString *out, guint32 *bits, unsigned int *nbits)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		g_string_append_c(out, b64_chars[(*bits >> *nbits) & 0x3f]);
	}
	*bits &= (1u << *nbits) - 1;
}

static void put_unit(GString *out, guint32 unit, guint32 *bits,
		     unsigned int *nbits)
{
	*bits = (*bits << 16) | unit;
	*nbits += 16;
	flush_bits(out, bits, nbits);
}

static void end_run(GString *out, guint32 *bits, unsigned int *nbits)
{
	if (*nbits > 0)
		g_string_append_c(out,
				  b64_chars[(*bits << (6 - *nbits)) & 0x3f]);
	*bits = 0;
	*nbits = 0;
	g_string_append_c(out, '-');
}

char *imap_mutf7_encode(const char *in, GError **error)
{
	GString *out;
	const char *p;
	gboolean in_run = FALSE;
	guint32 bits = 0;
	unsigned int nbits = 0;

	g_return_val_if_fail(in != NULL, NULL);

	if (!g_utf8_validate(in, -1, NULL)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "mailbox name is not valid UTF-8");
		return NULL;
	}

	out = g_string_sized_new(strlen(in) + 1);
	for (p = in; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (is_direct(c)) {
			if (in_run) {
				end_run(out, &bits, &nbits);
				in_run = FALSE;
			}
			if (c == '&')
				g_string_append(out, "&-");
			else
				g_string_append_c(out, (char)c);
			continue;
		}
		if (!in_run) {
			g_string_append_c(out, '&');
			in_run = TRUE;
		}
		if (c >= 0x10000) {
			c -= 0x10000;
			put_unit(out, 0xd800 | (c >> 10), &bits, &nbits);
			put_unit(out, 0xdc00 | (c & 0x3ff), &bits, &nbits);
		} else {
			put_unit(out, c, &bits, &nbits);
		}
	}
	if (in_run)
		end_run(out, &bits, &nbits);
	return g_string_free(out, FALSE);
}
