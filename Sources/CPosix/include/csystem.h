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

#endif
