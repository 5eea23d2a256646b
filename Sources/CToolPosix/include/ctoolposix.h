#ifndef RATCHET_CTOOLPOSIX_H
#define RATCHET_CTOOLPOSIX_H

/* The few calls the thin client (Sources/ratchet-tool) makes that Swift cannot reach: variadic
   or without a glibc wrapper. Links no library (CPosix links SQLite), so that the thin client
   stays static and quick to start. */

/** prctl(PR_SET_DUMPABLE, 0), then checked with PR_GET_DUMPABLE: no other process of the same
    user can open this one's /proc/PID/fd (nor mem, environ) or ptrace it, unless it holds
    CAP_SYS_PTRACE. Returns 0 when the process is non-dumpable, -1 otherwise. */
int ratchet_tool_make_undumpable(void);

/** Closes every descriptor from `lowest` up (close_range on Linux 5.9+, else each entry of
    /proc/self/fd). Returns 0, or -1 when neither way worked. */
int ratchet_tool_close_from(int lowest);

#endif
