#include "vtl_error.h"

const char *vtl_strerror(int err) {
  switch (err) {
  case VTL_OK: return "ok";
#define X(name, msg) case VTL_E##name: return msg;
  VTL_ERRNO_MAP(X)
#undef X
  default: return "unknown error";
  }
}

const char *vtl_err_name(int err) {
  switch (err) {
  case VTL_OK: return "OK";
#define X(name, msg) case VTL_E##name: return "E" #name;
  VTL_ERRNO_MAP(X)
#undef X
  default: return "EUNKNOWN";
  }
}
