#ifndef RATCHET_CSYSTEM_H
#define RATCHET_CSYSTEM_H

#include <spawn.h>

/* POSIX calls that Swift cannot reach on Linux: GNU extensions and variadic functions. */

/** pipe2(fds, O_CLOEXEC): a pipe whose ends are not inherited by other spawned children. */
int ratchet_pipe_cloexec(int fds[2]);

/** accept4(fd, NULL, NULL, SOCK_CLOEXEC): a connection no child spawned meanwhile inherits
    (a separate fcntl after accept leaves a window another thread's spawn can fall into). */
int ratchet_accept_cloexec(int fd);

/** posix_spawn_file_actions_addchdir_np: the child starts in `path`. */
int ratchet_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/** prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to this process. */
int ratchet_set_child_subreaper(void);

/** POSIX_SPAWN_SETSID (a GNU extension): the child starts a new session. */
short ratchet_spawn_setsid_flag(void);

struct sqlite3;

/** sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, on, NULL) (variadic): whether the
    last connection to close leaves the WAL as it is instead of checkpointing it (and
    fsyncing) on the way out. Returns SQLite's result code. */
int ratchet_sqlite_no_checkpoint_on_close(struct sqlite3 *db, int on);

/** openat2(dirfd, path, {flags, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS}):
    opens `path` beneath the folder `dirfd` only, refusing `..` out of it, absolute paths and
    every symbolic link on the way (Linux 5.6+). Returns the descriptor, or -1 with errno
    (ENOSYS on an older kernel, ELOOP for a symbolic link, EXDEV for an escape). */
int ratchet_open_beneath(int dirfd, const char *path, int flags, unsigned int mode);

/** O_PATH (a GNU extension Glibc's module map hides): open a folder only to resolve beneath it. */
int ratchet_o_path(void);

/** pidfd_open(pid, 0) (Linux 5.3+): a descriptor that becomes readable when `pid` exits. */
int ratchet_pidfd_open(int pid);

#endif
