/* runtime.h — the OpenCL runtime of the engine: one device, one context, one
 * in-order queue, the programs built from engine/kernels/<family>.cl, a buffer pool,
 * event profiling and the backend choice (ARCHITECTURE.md "Engine").
 *
 * A vtl_cl is a handle (STYLE.md 2): vtl_cl_init ... vtl_cl_close. It is used
 * from one thread at a time (cl_kernel arguments and the pool are not locked).
 * On PoCL, the thread that builds kernels gets LLVM's own alternate signal
 * stack; a thread that exits afterwards must put its previous one back
 * (sigaltstack), or AddressSanitizer aborts unmapping it (server/render_
 * thread.c does).
 *
 * Device choice, first match wins:
 *
 *   1. opts->device, else $VTL_CL_DEVICE: "P:D" (platform and device index, as
 *      vtl_cl_list prints them) or a case-insensitive substring of
 *      "platform name / device name" (e.g. "pocl", "nvidia", "rtx 4090");
 *   2. the first GPU of any platform;
 *   3. the first device of any platform.
 *
 * Backend (decided here and nowhere else, vtl_cl_backend): where the device is
 * the host CPU (CL_DEVICE_TYPE_CPU, e.g. PoCL) the GEMM-heavy ops (linear,
 * conv2d as im2col + GEMM, the two products of attention) run through
 * OpenBLAS cblas_sgemm on zero-copy mapped buffers (VTL_BACKEND_HOST); on any
 * other device everything runs as OpenCL kernels, GEMM through CLBlast
 * (VTL_BACKEND_CL). opts->backend or $VTL_BACKEND=cl|host overrides it (tests
 * force each); both backends meet the same tolerances (tests/test_ops.c).
 * On a CPU device that computes on CL_MEM_USE_HOST_PTR memory in place
 * (probed at init; PoCL does), every buffer is our own page-aligned memory
 * and the host backend reads it directly after a clFinish instead of
 * mapping (about 100 us saved per GEMM on PoCL); $VTL_HOST_IN_PLACE=0 turns
 * that off (mapping as on other CPU devices).
 *
 * Weight storage (decided here and nowhere else, vtl_cl_weights): the
 * large matrices of a model (conv and linear weights, the operands that go
 * through the GEMM) are stored as f16 where the backend is CL and the device
 * reports cl_khr_fp16 (GPUs), as f32 otherwise (PoCL on CPUs has no
 * cl_khr_fp16, and OpenBLAS on the host backend multiplies f32). Compute
 * stays f32: the GEMM widens an f16 operand into pooled f32 scratch first
 * (op_gemm.c). opts->weights or $VTL_WEIGHTS=f16|f32 overrides the choice;
 * forcing f16 works on any device, extension or not (storing halves and
 * reading them with vload_half is core OpenCL 1.2), which is how the tests
 * run the f16 path on PoCL.
 *
 * Programs: each engine/kernels/<family>.cl is one program, embedded in the
 * library at build time (engine/embed_kernels.cmake), built on first use and
 * kept for the life of the handle. Built binaries are cached on disk in
 * $XDG_CACHE_HOME/vtl, else ~/.cache/vtl (opts->cache_dir overrides; "" turns
 * the cache off), one file per program:
 *
 *   <family>-<key>.bin   key = FNV-1a 64 of device name, driver version,
 *                        platform version, source text and build options
 *
 *   OFFSET  SIZE  DESCRIPTION
 *   0       8     magic "VTLCLBN1"
 *   8       8     binary size S, little-endian
 *   16      8     FNV-1a 64 of the binary
 *   24      S     the program binary (clGetProgramInfo CL_PROGRAM_BINARIES)
 *
 * An entry that is short, fails its checksum or that the driver refuses is
 * rebuilt from source and rewritten (atomically: temp file + rename); a cache
 * that cannot be read or written is never an error.
 *
 * Errors: every call returns 0 or a negative VTL_E* code and leaves a message
 * in vtl_cl_errmsg() naming the OpenCL call and error (with the build log for
 * CL_BUILD_PROGRAM_FAILURE). OpenCL errors map to: out of memory/resources ->
 * VTL_ENOMEM, no device / no match -> VTL_ENOENT, build failure -> VTL_EPARSE,
 * invalid arguments -> VTL_EINVAL, anything else (lost device) -> VTL_EIO.
 *
 * Profiling: opts->profile, else $VTL_CL_PROFILE=1, creates the queue with
 * CL_QUEUE_PROFILING_ENABLE and sums device time per kernel name (host BLAS
 * calls by wall time); the totals are printed to stderr by vtl_cl_close and
 * on demand by vtl_cl_profile_print.
 */
#ifndef VTL_RUNTIME_H
#define VTL_RUNTIME_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  VTL_BACKEND_AUTO = 0, /* from the device type (the one place: runtime.c) */
  VTL_BACKEND_CL,       /* OpenCL kernels + CLBlast */
  VTL_BACKEND_HOST      /* OpenBLAS on mapped buffers for the GEMM-heavy ops */
} vtl_backend;

typedef enum {
  VTL_WEIGHTS_AUTO = 0, /* from backend and cl_khr_fp16 (runtime.c) */
  VTL_WEIGHTS_F32,
  VTL_WEIGHTS_F16       /* conv / linear weights as halves */
} vtl_weights_store;

typedef struct {
  const char *device;    /* "P:D" or name substring; NULL: $VTL_CL_DEVICE */
  vtl_backend backend;   /* AUTO: $VTL_BACKEND, else by device type */
  int profile;           /* 1 on, 0 off, -1: $VTL_CL_PROFILE */
  const char *cache_dir; /* NULL: XDG default; "": no binary cache */
  vtl_weights_store weights; /* AUTO: $VTL_WEIGHTS, else by device */
} vtl_cl_options;

/* Fills defaults (everything from the environment). */
void vtl_cl_options_init(vtl_cl_options *opts);

typedef struct vtl_cl vtl_cl;

/* One line per device: "P:D  platform / device  (CPU|GPU, N CU, M MiB)".
 * Returns the number of devices, or a negative VTL_E* code. */
int vtl_cl_list(FILE *out);

/* Opens the device chosen by opts (NULL: defaults). Returns 0 and *out, or a
 * VTL_E* code with the reason in msg (VTL_ENOENT: no platform or no device
 * matching the request; the message lists what there is). */
int vtl_cl_init(vtl_cl **out, const vtl_cl_options *opts, char *msg,
                size_t msglen);
/* Waits for the queue, prints the profile (if on), releases every program,
 * kernel and pooled buffer. Tensors must have been released. NULL is a no-op. */
void vtl_cl_close(vtl_cl *cl);

/* The message of the last failed call on this handle ("" if none). */
const char *vtl_cl_errmsg(const vtl_cl *cl);

/* The device as opened. */
const char *vtl_cl_device_name(const vtl_cl *cl); /* "platform / device" */
int vtl_cl_is_host_cpu(const vtl_cl *cl);          /* CL_DEVICE_TYPE_CPU */
vtl_backend vtl_cl_backend(const vtl_cl *cl);       /* never AUTO */
/* Forces a backend (tests, benchmarks); AUTO goes back to the device's. */
void vtl_cl_set_backend(vtl_cl *cl, vtl_backend b);
/* How the model loaders store conv / linear weights (never AUTO), and its
 * name ("f16" / "f32"). Fixed at init: loaded models keep what they got. */
vtl_weights_store vtl_cl_weights(const vtl_cl *cl);
const char *vtl_cl_weights_name(const vtl_cl *cl);
int vtl_cl_has_fp16(const vtl_cl *cl); /* the device reports cl_khr_fp16 */

/* Blocks until every queued command has finished (clFinish). */
int vtl_cl_finish(vtl_cl *cl);

/* Device bytes held by live tensors now and at most since init (the pool
 * may hold more: vtl_cl_trim gives the unused buffers back). */
size_t vtl_cl_bytes_in_use(const vtl_cl *cl);
size_t vtl_cl_bytes_peak(const vtl_cl *cl);
void vtl_cl_trim(vtl_cl *cl);

void vtl_cl_profile_print(vtl_cl *cl, FILE *out);

/* Builds an OpenCL C program from source (kernels are loaded this way; tests
 * use it to check that a bad source comes back as VTL_EPARSE with the build
 * log in vtl_cl_errmsg). The binary cache applies. *out is the caller's to
 * release (clReleaseProgram). */
int vtl_cl_build(vtl_cl *cl, const char *name, const char *source,
                 const char *options, cl_program *out);

/* How many program builds came from source / from the binary cache so far
 * (tests check the cache with them). */
void vtl_cl_build_counts(const vtl_cl *cl, int *from_source, int *from_cache);

#endif /* VTL_RUNTIME_H */
