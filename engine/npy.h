/* npy.h — NumPy .npy arrays (format 1.0/2.0, C order, little-endian):
 * what reference kits store their tensors in. */
#ifndef VTL_NPY_H
#define VTL_NPY_H

#include <stddef.h>
#include <stdint.h>

#define VTL_NPY_MAX_DIMS 8

typedef enum { VTL_NPY_F32, VTL_NPY_I64 } vtl_npy_dtype;

typedef struct {
  vtl_npy_dtype dtype;
  int ndim;
  int64_t shape[VTL_NPY_MAX_DIMS];
  size_t count;  /* product of shape */
  void *data;    /* malloc'd: count floats or int64s */
} vtl_npy;

/* Loads path. Returns 0, or a VTL_E* code with a message naming the file
 * and the problem (bad magic, unsupported dtype "<f8", fortran order,
 * truncated data) in msg. */
int vtl_npy_load(const char *path, vtl_npy *out, char *msg, size_t msglen);
/* Writes a float32 array (for tools and debugging dumps). */
int vtl_npy_save_f32(const char *path, const float *data, int ndim,
                     const int64_t *shape);
void vtl_npy_free(vtl_npy *a);

#endif /* VTL_NPY_H */
