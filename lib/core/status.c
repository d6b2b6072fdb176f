/* status.c -- version and status strings. */
#include "core.h"

#define TNI_STR2(x) #x
#define TNI_STR(x) TNI_STR2(x)

TN_API unsigned tn_version_number(void)
{
    return TN_VERSION_NUMBER;
}

TN_API const char *tn_version_string(void)
{
    return TNI_STR(TN_VERSION_MAJOR) "." TNI_STR(TN_VERSION_MINOR) "." TNI_STR(TN_VERSION_PATCH);
}

TN_API const char *tn_status_string(tn_status s)
{
    switch (s) {
    case TN_OK: return "ok";
    case TN_E_INVALID_ARG: return "invalid argument";
    case TN_E_SHAPE: return "shape mismatch";
    case TN_E_NOMEM: return "out of memory";
    case TN_E_STATE: return "call out of order";
    case TN_E_NUMERIC: return "non-finite value";
    case TN_E_IO: return "input/output error";
    case TN_E_FORMAT: return "bad file format";
    case TN_E_VERSION: return "unsupported file version";
    case TN_E_UNSUPPORTED: return "unsupported";
    case TN_E_MISUSE: return "library misuse";
    case TN_E_CANCELLED: return "cancelled";
    }
    return "unknown status";
}
