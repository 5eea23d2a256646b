#ifndef RATCHET_CZLIB_SHIM_H
#define RATCHET_CZLIB_SHIM_H
#include <zlib.h>
#endif
