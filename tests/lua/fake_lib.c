/* Test stand-ins for libresty_client_tls.so, to check what `require "resty.client_tls"`
 * does with a library it must refuse (tests/lua/test_load.lua):
 *   -DREFUSE: resty_client_tls_openssl_check refuses, as the real one does in a process
 *             holding another OpenSSL copy;
 *   default:  no resty_client_tls_openssl_check at all (some other library by that name). */
#include <stddef.h>

#ifdef REFUSE
int resty_client_tls_openssl_check(const char **err)
{
    if (err != NULL)
        *err = "stand-in: refusing to mix OpenSSL copies (test)";
    return -1;
}
#else
int resty_client_tls_not_the_real_library(void)
{
    return 0;
}
#endif
