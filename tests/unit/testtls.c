/* testtls.c - see testtls.h. */
#include "config.h"

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "testtls.h"

static struct {
	char *dir;
	char *ca_path;
	EVP_PKEY *ca_key;
	X509 *ca;
} pki;

static void add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	g_assert_nonnull(ext);
	g_assert_cmpint(X509_add_ext(cert, ext, -1), ==, 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for @key named @cn, signed by the CA (or self-signed when
 * @san is NULL, which makes it the CA). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san)
{
	X509 *cert = X509_new();
	X509_NAME *name;
	X509V3_CTX ctx;
	gboolean is_ca = san == NULL;

	g_assert_nonnull(cert);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert),
			 (long)g_random_int_range(1, G_MAXINT32));
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert,
			     is_ca ? name : X509_get_subject_name(pki.ca));
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, is_ca ? cert : pki.ca, cert, NULL, NULL, 0);
	if (is_ca) {
		add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(cert, &ctx, NID_key_usage,
			"critical,keyCertSign,cRLSign");
		add_ext(cert, &ctx, NID_subject_key_identifier, "hash");
	} else {
		add_ext(cert, &ctx, NID_basic_constraints, "CA:FALSE");
		add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth");
		add_ext(cert, &ctx, NID_subject_alt_name, san);
	}
	g_assert_cmpint(X509_sign(cert, is_ca ? key : pki.ca_key, EVP_sha256()),
			>, 0);
	return cert;
}

void testtls_setup(void)
{
	GError *error = NULL;
	FILE *f;

	pki.dir = g_dir_make_tmp("imapfs-testtls-XXXXXX", &error);
	g_assert_no_error(error);
	pki.ca_key = EVP_EC_gen("P-256");
	g_assert_nonnull(pki.ca_key);
	pki.ca = make_cert(pki.ca_key, "imapfs test CA", NULL);
	pki.ca_path = g_build_filename(pki.dir, "ca.pem", NULL);
	f = fopen(pki.ca_path, "w");
	g_assert_nonnull(f);
	g_assert_cmpint(PEM_write_X509(f, pki.ca), ==, 1);
	g_assert_cmpint(fclose(f), ==, 0);
}

void testtls_teardown(void)
{
	g_unlink(pki.ca_path);
	g_rmdir(pki.dir);
	g_free(pki.ca_path);
	g_free(pki.dir);
	X509_free(pki.ca);
	EVP_PKEY_free(pki.ca_key);
}

const char *testtls_ca_path(void)
{
	return pki.ca_path;
}

SSL_CTX *testtls_server_ctx(const char *san)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = make_cert(key, "imapfs test server", san);

	g_assert_nonnull(ctx);
	g_assert_cmpint(SSL_CTX_use_certificate(ctx, cert), ==, 1);
	g_assert_cmpint(SSL_CTX_use_PrivateKey(ctx, key), ==, 1);
	/* Send the CA too, so that a client without it sees "self-signed
	 * certificate in certificate chain". */
	g_assert_cmpint(SSL_CTX_add1_chain_cert(ctx, pki.ca), ==, 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

int testtls_listen(uint16_t *port_r)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	g_assert_cmpint(listen(fd, 8), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}
