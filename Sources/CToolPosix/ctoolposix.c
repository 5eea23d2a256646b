#define _GNU_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ctoolposix.h"

int ratchet_tool_make_undumpable(void) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return -1;
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -1;
}

int ratchet_tool_close_from(int lowest) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned int)lowest, ~0U, 0) == 0) return 0;
#endif
    DIR *folder = opendir("/proc/self/fd");
    if (folder == NULL) return -1;
    int own = dirfd(folder);
    struct dirent *entry;
    while ((entry = readdir(folder)) != NULL) {
        int fd = atoi(entry->d_name);
        if (entry->d_name[0] != '.' && fd >= lowest && fd != own) close(fd);
    }
    closedir(folder);
    return 0;
}
