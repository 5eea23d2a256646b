#ifndef CGITTLS_H
#define CGITTLS_H

/* How many times libgit2 asked mbedTLS to parse a CA bundle and was answered with an empty
   chain instead (see tls.c). Non-zero once libgit2 has started in this process. */
int ratchet_git_ca_parses_skipped(void);

#endif
