/* Test stand-in for lua-nginx-module's ngx_http_lua_ffi_get_req_ssl_pointer.
 * The fake request `r` is a `void *[1]` holding the SSL* (NULL: plain HTTP).
 * ERR_ARG=0: the (r) signature of v0.10.23..0.10.28; ERR_ARG=1: (r, err) of
 * v0.10.29+, which reports why there is no SSL*. */
#include <stddef.h>

#if ERR_ARG
void *ngx_http_lua_ffi_get_req_ssl_pointer(void **r, const char **err)
{
    if (r == NULL || *r == NULL) {
        *err = "not ssl connection";
        return NULL;
    }
    return *r;
}
#else
void *ngx_http_lua_ffi_get_req_ssl_pointer(void **r)
{
    return r == NULL ? NULL : *r;
}
#endif
