/* A process with its own OpenSSL copy (linked against the copies made by
 * openssl_mismatch.sh) that loads libresty_client_tls.so with dlopen, as LuaJIT's ffi.load
 * does, and hands it an SSL* made by its copy.
 *
 *   mismatch_host LIB MODE EXPECT
 *   MODE: plain (dlopen RTLD_NOW|RTLD_LOCAL) or deepbind (adds RTLD_DEEPBIND)
 *   EXPECT: same (the library must accept: it calls the process's copy) or
 *           mismatch (every function must refuse with a message naming both files)
 * Prints what it saw (also where its own X509_free reference points: in a non-PIE build
 * that takes the address, the program's PLT entry); exits 0 when it is what EXPECT says. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

typedef int (*check_fn)(const char **);
typedef int (*request_fn)(SSL *, const void *, int, const char **);
typedef int (*disable_fn)(SSL *, const char **);
typedef int (*getter_fn)(SSL *, char *, size_t *, const char **);
typedef int (*session_fn)(SSL *, int *, char *, size_t *, const char **);

static int failures;

/* Takes X509_free's address in code, as nginx does (sk_X509_pop_free(chain, X509_free)):
 * a non-PIE build then defines a PLT entry for it that the whole process binds to (so does
 * the dladdr((void *)SSL_new) below, for SSL_new). */
static void (*volatile keep_x509_free)(X509 *);

static void expect(int cond, const char *what) {
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    failures += !cond;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s LIB plain|deepbind same|mismatch\n", argv[0]);
        return 2;
    }
    int deep = strcmp(argv[2], "deepbind") == 0, want_mismatch = strcmp(argv[3], "mismatch") == 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL *ssl = SSL_new(ctx);
    Dl_info info;
    dladdr((void *)SSL_new, &info);
    printf("host: %s, SSL_new from %s\n", OpenSSL_version(OPENSSL_VERSION), info.dli_fname);
    keep_x509_free = X509_free;
    Dl_info x509_free;
    if (dladdr((void *)keep_x509_free, &x509_free))
        printf("host: X509_free from %s\n", x509_free.dli_fname);

    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | (deep ? RTLD_DEEPBIND : 0));
    if (!h) {
        printf("FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    check_fn check = (check_fn)dlsym(h, "resty_client_tls_openssl_check");
    request_fn request = (request_fn)dlsym(h, "resty_client_tls_request_client_certificate");
    disable_fn disable = (disable_fn)dlsym(h, "resty_client_tls_disable_session_reuse");
    getter_fn chain = (getter_fn)dlsym(h, "resty_client_tls_get_full_client_certificate_chain");
    getter_fn verify = (getter_fn)dlsym(h, "resty_client_tls_get_client_verify");
    session_fn session = (session_fn)dlsym(h, "resty_client_tls_get_session_info");

    const char *err = NULL;
    int rc = check(&err);
    printf("resty_client_tls_openssl_check: %d%s%s\n", rc, err ? ": " : "", err ? err : "");
    const char *msg = err;
    char buf[256];
    size_t len;
    int resumed;
    if (want_mismatch) {
        expect(rc == -1 && msg, "openssl_check refuses");
        expect(msg && strstr(msg, info.dli_fname), "the message names the process's libssl file");
        expect(msg && strstr(msg, "/libssl.so.3"), "the message names the library's libssl file");
        /* Every function refuses before touching the foreign SSL*. */
        err = NULL;
        expect(request(ssl, NULL, -1, &err) == -1 && err == msg, "request_client_certificate refuses");
        err = NULL;
        expect(disable(ssl, &err) == -1 && err == msg, "disable_session_reuse refuses");
        len = sizeof buf, err = NULL;
        expect(chain(ssl, buf, &len, &err) == -1 && err == msg, "get_full_client_certificate_chain refuses");
        len = sizeof buf, err = NULL;
        expect(verify(ssl, buf, &len, &err) == -1 && err == msg, "get_client_verify refuses");
        len = sizeof buf, err = NULL;
        expect(session(ssl, &resumed, buf, &len, &err) == -1 && err == msg, "get_session_info refuses");
    } else {
        expect(rc == 0, "openssl_check accepts: the library's OpenSSL calls bind to the process's copy");
        expect(request(ssl, NULL, -1, &err) == 0, "request_client_certificate works on the host's SSL*");
        expect(disable(ssl, &err) == 0, "disable_session_reuse works");
        len = sizeof buf;
        expect(verify(ssl, buf, &len, &err) == 0 && len == 4 && memcmp(buf, "NONE", 4) == 0,
               "get_client_verify says NONE");
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    printf("%s\n", failures ? "FAILED" : "all checks passed");
    return failures != 0;
}
