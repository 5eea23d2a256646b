#ifndef RATCHET_CLIBGIT2_SHIM_H
#define RATCHET_CLIBGIT2_SHIM_H

#include <git2.h>
#include <git2/sys/repository.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/mempack.h>

/* git_libgit2_opts is variadic and Swift cannot call it: one inline wrapper per option used. */

/** Turns fsync of the object database and refs on (1) or off (0). */
static inline int ratchet_git_set_fsync_gitdir(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, enabled);
}

/** Turns strict object creation (checks that referenced objects exist) on or off. */
static inline int ratchet_git_set_strict_object_creation(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, enabled);
}

/** Turns hash verification of objects read from the odb on or off. */
static inline int ratchet_git_set_strict_hash_verification(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, enabled);
}

/** Makes libgit2 ignore the owner check on repositories (safe.directory). */
static inline int ratchet_git_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}

/** Sets the search path of a config level (GIT_CONFIG_LEVEL_*); NULL resets it. */
static inline int ratchet_git_set_search_path(int level, const char *path) {
    return git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, path);
}

#endif
