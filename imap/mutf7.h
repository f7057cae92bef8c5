/* mutf7.h - modified UTF-7 mailbox name encoding (RFC 3501 5.1.3,
 * RFC 9051 5.1.3).
 *
 * Printable ASCII (0x20-0x7e) except "&" stands for itself; "&" is "&-";
 * everything else is UTF-16 in a modified base64 (alphabet A-Z a-z 0-9 +
 * ",") between "&" and "-".  Decoding is strict, so that a name decodes to
 * exactly one UTF-8 string and encoding that string gives the name back.
 *
 * Pure functions, no global state, thread-safe.
 */
#ifndef IMAPFS_IMAP_MUTF7_H
#define IMAPFS_IMAP_MUTF7_H

#include <glib.h>

/* Decodes a NUL-terminated modified UTF-7 name to a newly allocated UTF-8
 * string.  Returns NULL with IMAP_ERROR_PROTOCOL when the input is not the
 * canonical encoding of some string: bytes outside 0x20-0x7e, unterminated
 * or empty "&...-" runs other than "&-", characters outside the modified
 * base64 alphabet, non-zero padding bits, a run that encodes printable
 * ASCII, two adjacent encoded runs, lone or reversed surrogates, U+0000. */
char *imap_mutf7_decode(const char *in, GError **error);

/* Encodes a NUL-terminated UTF-8 string to a newly allocated modified UTF-7
 * name.  Returns NULL with IMAP_ERROR_INVALID if @in is not valid UTF-8. */
char *imap_mutf7_encode(const char *in, GError **error);

#endif
