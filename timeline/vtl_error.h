/* vtl_error.h — the one table of error codes every vtl module returns.
 *
 * Every fallible call returns int: 0 on success or a negative VTL_E* code
 * (libuv's convention). The table below generates the enum, vtl_strerror()
 * and vtl_err_name(); the names are also the wire error codes of
 * proto/vtl.proto (Error.Code), so keep the two in the same order.
 */
#ifndef VTL_ERROR_H
#define VTL_ERROR_H

#define VTL_ERRNO_MAP(X)                                                     \
  X(INVAL,      "invalid argument")                                          \
  X(NOMEM,      "out of memory")                                             \
  X(NOENT,      "no such entity")                                            \
  X(EXIST,      "entity already exists")                                     \
  X(RANGE,      "value out of range")                                        \
  X(TYPE,       "wrong value type")                                          \
  X(TOOLONG,    "string too long")                                           \
  X(LIMIT,      "too many entities")                                         \
  X(REF,        "dangling reference")                                        \
  X(PARSE,      "malformed input")                                           \
  X(EXPR,       "expression failed")                                         \
  X(PERM,       "permission denied")                                         \
  X(IO,         "input/output error")                                        \
  X(UNSUPPORTED,"unsupported")

typedef enum {
  VTL_OK = 0,
#define X(name, msg) VTL_E##name,
  VTL__EFIRST = -1000,
  VTL_ERRNO_MAP(X)
#undef X
  VTL__ELAST
} vtl_errno;

/* Static strings; unknown codes give "unknown error". */
const char *vtl_strerror(int err);
const char *vtl_err_name(int err);

#endif /* VTL_ERROR_H */
