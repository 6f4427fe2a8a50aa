/* safetensors.h — read-only access to .safetensors weight files.
 *
 * A file is mapped (mmap) once, its header parsed and validated completely
 * at open (layout and rules: the header comment of safetensors.c), and its
 * tensors then read by name, converted to float32 into a caller's buffer.
 * The mapping stays until vtl_st_close; nothing is copied at open but the
 * names.
 *
 *   vtl_st_file *f;  char msg[256];
 *   if (vtl_st_open(&f, path, msg, sizeof msg)) die(msg);
 *   const vtl_st_tensor *t;
 *   if (vtl_st_lookup(f, "conv_in.weight", &t, msg, sizeof msg)) die(msg);
 *   float *w = malloc(t->numel * sizeof *w);
 *   if (vtl_st_read_f32(f, t, 0, t->numel, w, msg, sizeof msg)) die(msg);
 *   vtl_st_close(f);
 *
 * dtypes: F32, F16 and BF16 are read (F16 -> F32 exactly, subnormals, inf
 * and NaN included; BF16 -> F32 is bits << 16). The other dtypes of the
 * format (F64, I64, I32, I16, I8, U8, BOOL, ...) are validated like any
 * tensor, so a file that holds some (SD 1.x checkpoints carry an I64
 * `...embeddings.position_ids`) still opens, but reading one is refused with
 * VTL_EUNSUPPORTED naming the tensor and its dtype. A dtype string the
 * format does not define refuses the whole file (VTL_EPARSE).
 *
 * Errors: every fallible call returns 0 or a negative VTL_E* code and, when
 * msg is not NULL, writes "FILE: problem" naming the tensor where there is
 * one. Damaged files are refused, never read past (safetensors.c lists the
 * checks). One thing cannot be checked: a file truncated by someone else
 * after it was opened makes a read fault (SIGBUS), as with any mapping.
 *
 * Thread safety: after open, a file is read-only; any number of threads may
 * look up and read concurrently. Open and close are not concurrent with
 * anything on the same file.
 */
#ifndef VTL_SAFETENSORS_H
#define VTL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define VTL_ST_MAX_DIMS 8 /* more dimensions than this refuse the file */

typedef enum {
  VTL_ST_F32,  /* read */
  VTL_ST_F16,  /* read (IEEE binary16) */
  VTL_ST_BF16, /* read (bfloat16) */
  VTL_ST_F64,  /* validated, never read: VTL_EUNSUPPORTED */
  VTL_ST_I64,
  VTL_ST_I32,
  VTL_ST_I16,
  VTL_ST_I8,
  VTL_ST_U64,
  VTL_ST_U32,
  VTL_ST_U16,
  VTL_ST_U8,
  VTL_ST_BOOL,
  VTL_ST_F8_E4M3,
  VTL_ST_F8_E5M2,
  VTL_ST__NDTYPES
} vtl_st_dtype;

typedef struct {
  const char *name;     /* NUL-terminated; owned by the file */
  vtl_st_dtype dtype;
  int ndim;             /* 0..VTL_ST_MAX_DIMS (0: a scalar, one element) */
  int64_t shape[VTL_ST_MAX_DIMS]; /* outermost first; unused entries 0 */
  size_t numel;         /* product of shape */
  uint64_t begin, end;  /* byte range in the data region (after the header) */
} vtl_st_tensor;

typedef struct vtl_st_file vtl_st_file;

/* Maps path and validates it. Returns 0 with *out, or VTL_EIO (cannot open,
 * stat or map), VTL_EPARSE (damaged or not a safetensors file),
 * VTL_ENOMEM; *out is NULL then. */
int vtl_st_open(vtl_st_file **out, const char *path, char *msg,
                size_t msglen);
/* The same on bytes already in memory: data is borrowed and must outlive
 * the file (it is not copied). label names the bytes in messages. */
int vtl_st_open_memory(vtl_st_file **out, const void *data, size_t size,
                       const char *label, char *msg, size_t msglen);
/* Gives the mapping's resident pages back (madvise MADV_DONTNEED) once the
 * caller has copied what it needs: the mapping stays valid, and a later
 * read faults the pages in again from the file. Lowers peak RSS when a
 * model's weights have been uploaded. Borrowed memory: a no-op. */
void vtl_st_drop_pages(vtl_st_file *f);
/* Unmaps and frees. Every vtl_st_tensor pointer of f dies with it. NULL is
 * a no-op. */
void vtl_st_close(vtl_st_file *f);

const char *vtl_st_path(const vtl_st_file *f); /* path or label given */
size_t vtl_st_count(const vtl_st_file *f);     /* tensors, without __metadata__ */
/* Tensor i in the order of their data offsets (0 <= i < count), or NULL. */
const vtl_st_tensor *vtl_st_at(const vtl_st_file *f, size_t i);
/* The tensor named name, or NULL. */
const vtl_st_tensor *vtl_st_find(const vtl_st_file *f, const char *name);
/* Index (for vtl_st_at) of a tensor of this file. */
size_t vtl_st_index(const vtl_st_file *f, const vtl_st_tensor *t);
/* vtl_st_find with a message: VTL_ENOENT "FILE: no tensor named 'x'". */
int vtl_st_lookup(const vtl_st_file *f, const char *name,
                  const vtl_st_tensor **out, char *msg, size_t msglen);
/* The __metadata__ value of key, or NULL (also when there is none). */
const char *vtl_st_metadata(const vtl_st_file *f, const char *key);

/* Reads elements [first, first + count) of t (row-major, as stored),
 * converted to float32, into dst[count]. Returns 0, VTL_ERANGE (the range
 * is not inside the tensor) or VTL_EUNSUPPORTED (a dtype we do not read). */
int vtl_st_read_f32(const vtl_st_file *f, const vtl_st_tensor *t,
                    size_t first, size_t count, float *dst, char *msg,
                    size_t msglen);
/* The stored bytes of t (end - begin of them), unaligned, for callers that
 * keep F16 as it is. Valid until close. */
const void *vtl_st_data(const vtl_st_file *f, const vtl_st_tensor *t);

/* "F32", "BF16", ...; bytes per element (BOOL: 1). */
const char *vtl_st_dtype_name(vtl_st_dtype d);
size_t vtl_st_dtype_size(vtl_st_dtype d);

/* Exact conversions of one value. */
float vtl_f16_to_f32(uint16_t h);
float vtl_bf16_to_f32(uint16_t b);
/* float32 -> IEEE binary16, rounded to nearest even (subnormals, overflow to
 * inf, NaN kept a NaN). */
uint16_t vtl_f32_to_f16(float f);

#endif /* VTL_SAFETENSORS_H */
