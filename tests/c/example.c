/* A C user of resty-client-tls: a real in-memory TLS 1.3 handshake whose server
 * certificate callback (nginx's certificate phase) requests a client certificate with
 * CA hints and disables session reuse, then every function after the handshake.
 *
 *   example SERVER_CERT SERVER_KEY CLIENT_CERT CLIENT_KEY CLIENT_CHAIN CA EXPECTED_PEM
 *
 * Exits 0 when every check passes; prints what failed otherwise. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "resty_client_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int header_alone_compiles(void); /* header_alone.c */

static int failures = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

static X509 *read_cert(const char *path) {
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!x) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
    return x;
}

static EVP_PKEY *read_key(const char *path) {
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!k) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
    return k;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    if (!buf || fread(buf, 1, *len, f) != *len) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
    fclose(f);
    return buf;
}

static X509 *ca_cert; /* the hint and trust anchor handed to the certificate callback */

/* nginx's ssl_certificate_by_lua runs here. */
static int cert_cb(SSL *ssl, void *arg) {
    (void)arg;
    const char *err = NULL;
    STACK_OF(X509) *ca = sk_X509_new_null();
    X509_up_ref(ca_cert);
    sk_X509_push(ca, ca_cert);
    int rc = resty_client_tls_request_client_certificate(ssl, ca, 2, &err);
    CHECK(rc == RESTY_CLIENT_TLS_OK, "request: %s", err ? err : "");
    sk_X509_pop_free(ca, X509_free); /* freed right after the call, as the contract allows */
    rc = resty_client_tls_disable_session_reuse(ssl, &err);
    CHECK(rc == RESTY_CLIENT_TLS_OK, "disable: %s", err ? err : "");
    return 1;
}

static void pump(SSL *client, SSL *server) {
    for (int i = 0; i < 100; i++) {
        int c = SSL_do_handshake(client);
        int s = SSL_do_handshake(server);
        if (c == 1 && s == 1) return;
    }
    ERR_print_errors_fp(stderr);
    fprintf(stderr, "handshake did not complete\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s SERVER_CERT SERVER_KEY CLIENT_CERT CLIENT_KEY CLIENT_CHAIN CA EXPECTED_PEM\n", argv[0]);
        return 2;
    }
    CHECK(header_alone_compiles() == RESTY_CLIENT_TLS_OK, "header_alone.c");
    const char *err = NULL;
    CHECK(resty_client_tls_openssl_check(&err) == RESTY_CLIENT_TLS_OK, "one OpenSSL: %s", err ? err : "");

    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    X509 *cert = read_cert(argv[1]);
    EVP_PKEY *key = read_key(argv[2]);
    SSL_CTX_use_certificate(sctx, cert); /* both take their own reference */
    SSL_CTX_use_PrivateKey(sctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
    SSL_CTX_set_cert_cb(sctx, cert_cb, NULL);
    ca_cert = read_cert(argv[6]);

    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    cert = read_cert(argv[3]);
    key = read_key(argv[4]);
    SSL_CTX_use_certificate(cctx, cert);
    SSL_CTX_use_PrivateKey(cctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    SSL_CTX_add_extra_chain_cert(cctx, read_cert(argv[5])); /* takes ownership */

    SSL *server = SSL_new(sctx), *client = SSL_new(cctx);
    BIO *sbio, *cbio;
    BIO_new_bio_pair(&sbio, 0, &cbio, 0);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_bio(client, cbio, cbio);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    pump(client, server);

    /* The CA hint the client received. */
    STACK_OF(X509_NAME) *names = SSL_get_client_CA_list(client);
    CHECK(names && sk_X509_NAME_num(names) == 1 &&
              X509_NAME_cmp(sk_X509_NAME_value(names, 0), X509_get_subject_name(ca_cert)) == 0,
          "one CA hint, the CA's subject");

    /* The chain: size query, one byte short, exact. */
    size_t want_len;
    char *want = read_file(argv[7], &want_len);
    size_t len = 0;
    int rc = resty_client_tls_get_full_client_certificate_chain(server, NULL, &len, &err);
    CHECK(rc == RESTY_CLIENT_TLS_AGAIN && len == want_len, "size query: rc=%d len=%zu want=%zu", rc, len, want_len);
    char *buf = malloc(want_len);
    len = want_len - 1;
    rc = resty_client_tls_get_full_client_certificate_chain(server, buf, &len, &err);
    CHECK(rc == RESTY_CLIENT_TLS_AGAIN && len == want_len, "one byte short: rc=%d", rc);
    len = want_len;
    rc = resty_client_tls_get_full_client_certificate_chain(server, buf, &len, &err);
    CHECK(rc == RESTY_CLIENT_TLS_OK && len == want_len && memcmp(buf, want, want_len) == 0, "chain bytes: rc=%d", rc);

    char verify[128];
    len = sizeof verify;
    rc = resty_client_tls_get_client_verify(server, verify, &len, &err);
    CHECK(rc == RESTY_CLIENT_TLS_OK && len == 7 && memcmp(verify, "SUCCESS", 7) == 0, "verify: %.*s", (int)len, verify);

    int resumed = -1;
    len = sizeof verify;
    rc = resty_client_tls_get_session_info(server, &resumed, verify, &len, &err);
    CHECK(rc == RESTY_CLIENT_TLS_OK && resumed == 0 && len == 0, "session info: rc=%d resumed=%d", rc, resumed);

    /* Reuse was disabled: no TLS 1.3 ticket reached the client. */
    char byte;
    SSL_write(server, "x", 1);
    CHECK(SSL_read(client, &byte, 1) == 1, "read");
    SSL_SESSION *sess = SSL_get_session(client);
    CHECK(sess && !SSL_SESSION_is_resumable(sess), "the client holds no resumable session");

    /* Bad input: clear errors, nothing written. */
    err = NULL;
    CHECK(resty_client_tls_disable_session_reuse(NULL, &err) == RESTY_CLIENT_TLS_ERROR && err &&
              strcmp(err, "ssl is NULL") == 0, "NULL ssl");
    len = 5;
    CHECK(resty_client_tls_get_client_verify(server, NULL, &len, &err) == RESTY_CLIENT_TLS_ERROR, "NULL buf");
    CHECK(resty_client_tls_get_client_verify(server, verify, NULL, &err) == RESTY_CLIENT_TLS_ERROR, "NULL buf_len");
    CHECK(resty_client_tls_disable_session_reuse(server, &err) == RESTY_CLIENT_TLS_ERROR, "after the handshake");
    CHECK(resty_client_tls_is_valid_client_verify("FAILED:x", 8) == 1, "valid");
    CHECK(resty_client_tls_is_valid_client_verify("FAILED", 6) == 0, "invalid");
    CHECK(resty_client_tls_is_valid_client_verify(NULL, 3) == 0, "NULL v");
    CHECK(ERR_peek_error() == 0, "the OpenSSL error queue is empty");

    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    X509_free(ca_cert);
    free(buf);
    free(want);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("C example: all checks passed\n");
    return 0;
}
