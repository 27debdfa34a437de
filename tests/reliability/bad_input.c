/* Bad input at the C boundary: every export with NULL and wrong arguments, on a NULL ssl,
 * a server-side SSL before any handshake and a client-side SSL. Prints one markdown table
 * row per case with the observed result; exits non-zero when a result is not the
 * expected clear error. Built with ASan/LSan/UBSan and run under valgrind by
 * tests/reliability/valgrind.sh. */
#include <openssl/ssl.h>

#include "resty_client_tls.h"

#include <stdio.h>
#include <string.h>

static int failures;

static void row(const char *what, int rc, int want_rc, const char *err, const char *want_err) {
    int ok = rc == want_rc && (want_err == NULL || (err != NULL && strstr(err, want_err) != NULL));
    if (!ok) failures++;
    printf("| %s | %d%s%s%s | %s |\n", what, rc, err ? " `" : "", err ? err : "", err ? "`" : "",
           ok ? "ok" : "UNEXPECTED");
}

int main(void) {
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *server = SSL_new(sctx), *client = SSL_new(cctx);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    char buf[64];
    size_t len;
    int resumed = 7, rc;
    const char *err;

#define CALL(what, want_rc, want_err, expr) \
    do { err = NULL; rc = (expr); row(what, rc, want_rc, err, want_err); } while (0)

    printf("| call | observed (rc, err) | |\n| --- | --- | --- |\n");
    CALL("request_client_certificate(NULL ssl)", -1, "ssl is NULL",
         resty_client_tls_request_client_certificate(NULL, NULL, -1, &err));
    CALL("disable_session_reuse(NULL ssl)", -1, "ssl is NULL", resty_client_tls_disable_session_reuse(NULL, &err));
    len = sizeof buf;
    CALL("get_full_client_certificate_chain(NULL ssl)", -1, "ssl is NULL",
         resty_client_tls_get_full_client_certificate_chain(NULL, buf, &len, &err));
    CALL("get_client_verify(NULL ssl)", -1, "ssl is NULL", resty_client_tls_get_client_verify(NULL, buf, &len, &err));
    CALL("get_session_info(NULL ssl)", -1, "ssl is NULL",
         resty_client_tls_get_session_info(NULL, &resumed, buf, &len, &err));
    CALL("any call with NULL ssl and NULL err", -1, NULL, resty_client_tls_disable_session_reuse(NULL, NULL));

    len = 10;
    CALL("get_client_verify(buf NULL, *buf_len 10)", -1, "buf is NULL but *buf_len is not 0",
         resty_client_tls_get_client_verify(server, NULL, &len, &err));
    len = 10;
    CALL("get_session_info(buf NULL, *buf_len 10)", -1, "buf is NULL but *buf_len is not 0",
         resty_client_tls_get_session_info(server, &resumed, NULL, &len, &err));
    len = 0;
    CALL("get_client_verify(buf NULL, *buf_len 0): size query", -2, NULL,
         resty_client_tls_get_client_verify(server, NULL, &len, &err));
    printf("| ... size reported | %zu (strlen(\"NONE\")) | %s |\n", len, len == 4 ? "ok" : "UNEXPECTED");
    failures += len != 4;
    len = 0;
    CALL("get_client_verify(buf non-NULL, *buf_len 0)", -2, NULL,
         resty_client_tls_get_client_verify(server, buf, &len, &err));
    CALL("get_client_verify(buf_len NULL)", -1, "buf_len is NULL",
         resty_client_tls_get_client_verify(server, buf, NULL, &err));
    len = sizeof buf;
    CALL("get_session_info(resumed NULL)", -1, "resumed is NULL",
         resty_client_tls_get_session_info(server, NULL, buf, &len, &err));
    len = 0;
    CALL("get_full_client_certificate_chain, no handshake yet", -5, NULL,
         resty_client_tls_get_full_client_certificate_chain(server, NULL, &len, &err));
    CALL("request_client_certificate on a client-side SSL", -1, "client-side",
         resty_client_tls_request_client_certificate(client, NULL, -1, &err));
    CALL("disable_session_reuse on a client-side SSL", -1, "client-side",
         resty_client_tls_disable_session_reuse(client, &err));
    len = sizeof buf;
    CALL("get_full_client_certificate_chain on a client-side SSL", -1, "client-side",
         resty_client_tls_get_full_client_certificate_chain(client, buf, &len, &err));
    STACK_OF(X509) *empty = sk_X509_new_null();
    CALL("request_client_certificate(empty stack): no hints, empty store", 0, NULL,
         resty_client_tls_request_client_certificate(server, empty, -1, &err));
    sk_X509_free(empty);
    CALL("is_valid_client_verify(NULL, 7)", 0, NULL, resty_client_tls_is_valid_client_verify(NULL, 7));
    CALL("is_valid_client_verify(\"SUCCESS\", 0)", 0, NULL, resty_client_tls_is_valid_client_verify("SUCCESS", 0));
    CALL("openssl_check", 0, NULL, resty_client_tls_openssl_check(&err));

    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    printf("%s: %d unexpected\n", failures ? "FAIL" : "all bad inputs answered as expected", failures);
    return failures != 0;
}
