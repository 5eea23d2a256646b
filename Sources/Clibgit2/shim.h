#ifndef RATCHET_CLIBGIT2_SHIM_H
#define RATCHET_CLIBGIT2_SHIM_H

#include <git2.h>
#include <git2/sys/repository.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/mempack.h>
#include <stdlib.h>

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

/*
 * A disk backend (pack or loose) behind a gate that keeps object writes from scanning the disk.
 *
 * libgit2's git_odb_write first "freshens" the object (does it exist anywhere?), and on a
 * miss refreshes every backend — for packs, a readdir of objects/pack — before checking
 * again. Every new object therefore costs a directory scan. This wrapper forwards
 * everything to the backend it owns, except that a refresh that directly follows a
 * freshen miss does nothing: a write of a new object never needs one (at worst an object
 * that another process packed meanwhile is written once more, which git allows). With
 * `skip_freshen` (for loose objects) the freshen itself is a miss without a syscall, with
 * the same worst case. A refresh after a read, exists or header miss still reloads the
 * pack folder, so objects written by other processes stay visible. Writes are not
 * forwarded: the odb's in-memory backend takes them. Confined to one thread, like its
 * repository.
 */
typedef struct {
    git_odb_backend parent;
    git_odb_backend *inner;
    int skip_freshen;
    int after_freshen_miss;
} ratchet_gated_backend;

static int ratchet_gated_read(void **data, size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    g->after_freshen_miss = 0;
    return g->inner->read(data, len, type, g->inner, id);
}

static int ratchet_gated_read_prefix(git_oid *out, void **data, size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id, size_t n) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    g->after_freshen_miss = 0;
    return g->inner->read_prefix(out, data, len, type, g->inner, id, n);
}

static int ratchet_gated_read_header(size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    g->after_freshen_miss = 0;
    return g->inner->read_header(len, type, g->inner, id);
}

static int ratchet_gated_exists(git_odb_backend *b, const git_oid *id) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    g->after_freshen_miss = 0;
    return g->inner->exists(g->inner, id);
}

static int ratchet_gated_exists_prefix(git_oid *out, git_odb_backend *b, const git_oid *id, size_t n) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    g->after_freshen_miss = 0;
    return g->inner->exists_prefix(out, g->inner, id, n);
}

static int ratchet_gated_freshen(git_odb_backend *b, const git_oid *id) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    int rc = g->skip_freshen ? 1 : g->inner->freshen(g->inner, id);
    g->after_freshen_miss = rc != 0;
    return rc;
}

static int ratchet_gated_refresh(git_odb_backend *b) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    if (g->after_freshen_miss) return 0;
    return g->inner->refresh(g->inner);
}

static int ratchet_gated_foreach(git_odb_backend *b, git_odb_foreach_cb cb, void *payload) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    return g->inner->foreach(g->inner, cb, payload);
}

static void ratchet_gated_free(git_odb_backend *b) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)b;
    g->inner->free(g->inner);
    free(g);
}

/** Wraps the disk backend `inner`, taking ownership; NULL when out of memory (`inner` is then still the caller's). */
static inline git_odb_backend *ratchet_gated_backend_new(git_odb_backend *inner, int skip_freshen) {
    ratchet_gated_backend *g = (ratchet_gated_backend *)calloc(1, sizeof(ratchet_gated_backend));
    if (g == NULL) return NULL;
    g->parent.version = GIT_ODB_BACKEND_VERSION;
    g->inner = inner;
    g->skip_freshen = skip_freshen;
    if (inner->read) g->parent.read = ratchet_gated_read;
    if (inner->read_prefix) g->parent.read_prefix = ratchet_gated_read_prefix;
    if (inner->read_header) g->parent.read_header = ratchet_gated_read_header;
    if (inner->exists) g->parent.exists = ratchet_gated_exists;
    if (inner->exists_prefix) g->parent.exists_prefix = ratchet_gated_exists_prefix;
    if (inner->freshen || skip_freshen) g->parent.freshen = ratchet_gated_freshen;
    if (inner->refresh) g->parent.refresh = ratchet_gated_refresh;
    if (inner->foreach) g->parent.foreach = ratchet_gated_foreach;
    g->parent.free = ratchet_gated_free;
    return &g->parent;
}

#endif
