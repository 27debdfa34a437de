/* A panic inside the Rust core becomes RESTY_CLIENT_TLS_ERROR at the boundary, end to end:
 * loads a libresty_client_tls.so built with `--features test-hooks`, where every export
 * panics inside its guard while RESTY_CLIENT_TLS_TEST_PANIC is set, and calls them all on
 * a real SSL*; then unsets it and checks that the same process goes on working.
 *   panic_host LIB */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static void expect(int cond, const char *what) {
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    failures += !cond;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { printf("FAIL dlopen: %s\n", dlerror()); return 1; }
    int (*check)(const char **) = (int (*)(const char **))dlsym(h, "resty_client_tls_openssl_check");
    int (*request)(SSL *, const void *, int, const char **) =
        (int (*)(SSL *, const void *, int, const char **))dlsym(h, "resty_client_tls_request_client_certificate");
    int (*disable)(SSL *, const char **) = (int (*)(SSL *, const char **))dlsym(h, "resty_client_tls_disable_session_reuse");
    int (*chain)(SSL *, char *, size_t *, const char **) =
        (int (*)(SSL *, char *, size_t *, const char **))dlsym(h, "resty_client_tls_get_full_client_certificate_chain");
    int (*verify)(SSL *, char *, size_t *, const char **) =
        (int (*)(SSL *, char *, size_t *, const char **))dlsym(h, "resty_client_tls_get_client_verify");
    int (*session)(SSL *, int *, char *, size_t *, const char **) =
        (int (*)(SSL *, int *, char *, size_t *, const char **))dlsym(h, "resty_client_tls_get_session_info");
    int (*valid)(const char *, size_t) = (int (*)(const char *, size_t))dlsym(h, "resty_client_tls_is_valid_client_verify");

    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL *ssl = SSL_new(ctx);
    char buf[64];
    size_t len;
    int resumed;
    const char *err;
    const char *P = "internal error (panic)";
#define PANICS(expr, what) do { err = NULL; int rc_ = (expr); \
        expect(rc_ == -1 && err && strcmp(err, P) == 0, what " -> -1, \"internal error (panic)\""); } while (0)

    setenv("RESTY_CLIENT_TLS_TEST_PANIC", "1", 1);
    PANICS(check(&err), "openssl_check");
    PANICS(request(ssl, NULL, -1, &err), "request_client_certificate");
    PANICS(disable(ssl, &err), "disable_session_reuse");
    len = sizeof buf;
    PANICS(chain(ssl, buf, &len, &err), "get_full_client_certificate_chain");
    len = sizeof buf;
    PANICS(verify(ssl, buf, &len, &err), "get_client_verify");
    len = sizeof buf;
    PANICS(session(ssl, &resumed, buf, &len, &err), "get_session_info");
    expect(valid("SUCCESS", 7) == 0, "is_valid_client_verify -> 0 (false) on a panic");
    unsetenv("RESTY_CLIENT_TLS_TEST_PANIC");

    expect(check(&err) == 0, "afterwards: openssl_check OK");
    expect(request(ssl, NULL, -1, &err) == 0 && disable(ssl, &err) == 0, "afterwards: request and disable OK");
    len = sizeof buf;
    expect(verify(ssl, buf, &len, &err) == 0 && len == 4 && memcmp(buf, "NONE", 4) == 0, "afterwards: verify NONE");
    expect(valid("SUCCESS", 7) == 1, "afterwards: is_valid_client_verify(\"SUCCESS\") is 1");
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    printf("%s\n", failures ? "FAILED" : "all checks passed");
    return failures != 0;
}
