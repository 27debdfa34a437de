/* A process holding its own OpenSSL copy, linked in statically and exported (as an nginx
 * built --with-openssl=DIR exports its copy), that loads libresty_client_tls.so with dlopen
 * and hands it an SSL* made by that copy.
 *
 *   openssl_guard_host LIB MODE
 *   MODE plain:    dlopen(RTLD_NOW | RTLD_LOCAL). The library's OpenSSL calls bind to the
 *                  program's copy (interposition): one copy in use, every function must
 *                  accept and work on the program's SSL*.
 *   MODE deepbind: adds RTLD_DEEPBIND. The library's calls bind to its own libssl (the
 *                  shared one it depends on), the program uses its static copy: two
 *                  copies, every function must refuse with one message naming both.
 * Built by tests/openssl_guard.rs. Prints each check; exits 0 when all pass. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

typedef int (*check_fn)(const char **);
typedef int (*request_fn)(SSL *, const STACK_OF(X509) *, int, const char **);
typedef int (*disable_fn)(SSL *, const char **);
typedef int (*buffer_fn)(SSL *, char *, size_t *, const char **);
typedef int (*session_fn)(SSL *, int *, char *, size_t *, const char **);

static int failures;

static void expect(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
}

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        printf("FAIL dlsym %s: %s\n", name, dlerror());
        failures++;
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIB plain|deepbind\n", argv[0]);
        return 2;
    }
    int deep = strcmp(argv[2], "deepbind") == 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl) {
        printf("FAIL SSL_new in the program\n");
        return 1;
    }
    printf("program: %s\n", OpenSSL_version(OPENSSL_VERSION));

    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | (deep ? RTLD_DEEPBIND : 0));
    if (!lib) {
        printf("FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    /* POSIX dlsym returns function addresses as void *; ISO C has no cast for that. */
#define LOAD(var, name)                          \
    do {                                         \
        void *p_ = sym(lib, name);               \
        memcpy(&(var), &p_, sizeof(var));        \
    } while (0)
    check_fn check;
    request_fn request;
    disable_fn disable;
    buffer_fn chain, verify;
    session_fn session;
    LOAD(check, "resty_client_tls_openssl_check");
    LOAD(request, "resty_client_tls_request_client_certificate");
    LOAD(disable, "resty_client_tls_disable_session_reuse");
    LOAD(chain, "resty_client_tls_get_full_client_certificate_chain");
    LOAD(verify, "resty_client_tls_get_client_verify");
    LOAD(session, "resty_client_tls_get_session_info");
    if (failures)
        return 1;

    const char *err = NULL, *msg;
    int rc = check(&err);
    msg = err;
    printf("resty_client_tls_openssl_check: %d%s%s\n", rc, err ? ": " : "", err ? err : "");
    char buf[256];
    size_t len;
    int resumed = -1;
    if (deep) {
        expect(rc == -1 && msg != NULL, "openssl_check refuses");
        expect(msg && strstr(msg, "refusing to mix OpenSSL copies"), "the message says why");
        expect(msg && strstr(msg, "libssl.so"), "the message names the library's libssl file");
        expect(msg && strstr(msg, argv[0]), "the message names the program holding the other copy");
        /* Every function refuses, with that message, before touching the program's SSL*. */
        err = NULL;
        expect(request(ssl, NULL, -1, &err) == -1 && err == msg, "request_client_certificate refuses");
        err = NULL;
        expect(disable(ssl, &err) == -1 && err == msg, "disable_session_reuse refuses");
        len = sizeof buf, err = NULL;
        expect(chain(ssl, buf, &len, &err) == -1 && err == msg && len == sizeof buf,
               "get_full_client_certificate_chain refuses");
        len = sizeof buf, err = NULL;
        expect(verify(ssl, buf, &len, &err) == -1 && err == msg && len == sizeof buf,
               "get_client_verify refuses");
        len = sizeof buf, err = NULL;
        expect(session(ssl, &resumed, buf, &len, &err) == -1 && err == msg && resumed == -1,
               "get_session_info refuses");
        expect(SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE, "the program's SSL was not touched");
    } else {
        expect(rc == 0 && msg == NULL, "openssl_check accepts");
        expect(request(ssl, NULL, 4, &err) == 0, "request_client_certificate works on the program's SSL*");
        expect(SSL_get_verify_mode(ssl) == SSL_VERIFY_PEER && SSL_get_verify_depth(ssl) == 4,
               "and set the program's SSL (verify mode and depth)");
        expect(disable(ssl, &err) == 0, "disable_session_reuse works");
        len = sizeof buf;
        expect(verify(ssl, buf, &len, &err) == 0 && len == 4 && memcmp(buf, "NONE", 4) == 0,
               "get_client_verify says NONE");
        len = sizeof buf;
        expect(chain(ssl, buf, &len, &err) == -5, "get_full_client_certificate_chain declines");
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    printf("%s\n", failures ? "FAILED" : "all checks passed");
    return failures != 0;
}
