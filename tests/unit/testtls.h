/* testtls.h - a throwaway PKI and TLS listeners for unit tests.
 *
 * testtls_setup() makes a CA with OpenSSL's C API and writes its
 * certificate to a temporary directory; servers get certificates signed by
 * it for the subjectAltName they ask for.  Everything listens on 127.0.0.1
 * with an ephemeral port.  Nothing leaves the machine.
 *
 * Threading: setup/teardown from the main thread, before and after the
 * tests; the rest from any thread once setup returned.
 */
#ifndef IMAPFS_TESTS_TESTTLS_H
#define IMAPFS_TESTS_TESTTLS_H

#include <glib.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* Creates the CA (asserts on failure). */
void testtls_setup(void);

/* Removes the temporary files and frees the CA. */
void testtls_teardown(void);

/* The PEM file of the CA certificate (valid between setup and teardown). */
const char *testtls_ca_path(void);

/* A server context whose certificate (signed by the CA, which is sent as
 * chain certificate too) has subjectAltName @san, e.g. "IP:127.0.0.1" or
 * "DNS:imap.test".  Caller frees with SSL_CTX_free(). */
SSL_CTX *testtls_server_ctx(const char *san);

/* A TCP socket listening on 127.0.0.1 with an ephemeral port, stored in
 * *port_r. Returns the fd (asserts on failure). */
int testtls_listen(uint16_t *port_r);

#endif
