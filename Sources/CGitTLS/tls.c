/* libgit2 built with mbedTLS (Debian's libgit2 1.5) parses the system's whole CA bundle in
   git_libgit2_init(): 3-7 ms of every Ratchet process that opens a repository (perf:
   mbedtls_ct_base64_dec_value under git_mbedtls_stream_global_init). Ratchet never speaks
   TLS through libgit2 (a service is cloned from a local path only; adr/0053), so this
   executable answers libgit2's two calls into mbedTLS's parser itself, with success and an
   empty chain. A TLS connection through libgit2 would then fail certificate verification:
   closed, never open. libgit2 and mbedTLS are linked statically (adr/0081) with
   `--wrap=mbedtls_x509_crt_parse_file` and `--wrap=mbedtls_x509_crt_parse_path`
   (Package.swift), so the linker binds libgit2's two calls to these `__wrap_` definitions
   and mbedTLS's own parser stays in place for nobody. */
#include <stdatomic.h>
#include "cgittls.h"

struct mbedtls_x509_crt;

static atomic_int skipped;

int __wrap_mbedtls_x509_crt_parse_file(struct mbedtls_x509_crt *chain, const char *path) {
    (void)chain; (void)path;
    atomic_fetch_add(&skipped, 1);
    return 0;
}

int __wrap_mbedtls_x509_crt_parse_path(struct mbedtls_x509_crt *chain, const char *path) {
    (void)chain; (void)path;
    atomic_fetch_add(&skipped, 1);
    return 0;
}

int ratchet_git_ca_parses_skipped(void) { return atomic_load(&skipped); }
