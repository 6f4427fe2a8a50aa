/* tensor_io.c — case inputs into device tensors and device tensors checked
 * against case outputs (see refcheck.h). */
#include <stdlib.h>

#include "refcheck.h"
#include "vtl_error.h"

/* Reads input `name` as float32 [N, C, H, W] into a new device tensor. */
int rc_input_tensor4(rc_case *c, vtl_cl *cl, const char *name, int C,
                     vtl_tensor *t) {
  vtl_npy in = {0};
  int rc = rc_input(c, name, &in);
  if (rc) return rc;
  if (in.dtype != VTL_NPY_F32 || in.ndim != 4 || in.shape[1] != C ||
      in.shape[0] < 1 || in.shape[2] < 1 || in.shape[3] < 1) {
    vtl_npy_free(&in);
    return rc_case_error(c, VTL_EINVAL, "%s must be float32 [N, %d, H, W]",
                         name, C);
  }
  int64_t s[4] = {in.shape[0], in.shape[1], in.shape[2], in.shape[3]};
  rc = vtl_tensor_alloc(cl, t, 4, s);
  if (!rc) rc = vtl_tensor_write(cl, t, in.data);
  vtl_npy_free(&in);
  if (rc) return rc_case_error(c, rc, "%s: %s", name, vtl_cl_errmsg(cl));
  return 0;
}

/* Reads t back and compares it with outputs.<name>. */
int rc_check_tensor(rc_case *c, vtl_cl *cl, const char *name,
                    const vtl_tensor *t) {
  float *host = malloc(vtl_tensor_numel(t) * sizeof *host);
  if (!host) return rc_case_error(c, VTL_ENOMEM, "out of memory");
  int rc = vtl_tensor_read(cl, t, host);
  if (rc) rc_case_error(c, rc, "read %s: %s", name, vtl_cl_errmsg(cl));
  else rc_check_f32(c, name, host, t->ndim, t->shape);
  free(host);
  return rc;
}
