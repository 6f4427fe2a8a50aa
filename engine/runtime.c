/* runtime.c — device choice, programs and their binary cache, the buffer
 * pool, profiling, OpenCL errors as VTL_E* codes. Contracts: runtime.h. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime_int.h"
#include "vtl_error.h"

#define MAX_KERNELS 96
#define MAX_PROFILE 96
#define MAX_PENDING 256
#define MSG_LEN 8192

struct vtl_cl {
  cl_platform_id platform;
  cl_device_id device;
  cl_context ctx;
  cl_command_queue queue;         /* in-order; profiling when profile != 0 */
  char name[512];                 /* "platform / device" */
  char driver[128];               /* CL_DRIVER_VERSION */
  char platform_version[128];     /* CL_PLATFORM_VERSION */
  int is_cpu;                     /* CL_DEVICE_TYPE_CPU: the host CPU */
  vtl_backend backend;            /* never AUTO after init */
  int has_fp16;                   /* CL_DEVICE_EXTENSIONS has cl_khr_fp16 */
  vtl_weights_store weights;      /* never AUTO after init */
  size_t wgs;                     /* work-group size for 1-D kernels */
  char cache_dir[PATH_MAX];       /* "" : no binary cache */
  char options[256];              /* build options of every embedded program */
  cl_program prog[VTL_PROG_COUNT]; /* NULL until first use */
  struct {
    vtl__program_id prog;
    char name[48];
    cl_kernel k;
  } kernels[MAX_KERNELS];         /* created on first use, by name */
  int nkernels;
  struct {
    cl_mem mem;
    size_t bytes;
    int used;
    void *host;                   /* host_in_place: its CL_MEM_USE_HOST_PTR
                                     memory (ours to free), else NULL */
  } *pool;                        /* malloc'd; every buffer we created */
  int host_in_place;              /* CPU device that runs USE_HOST_PTR
                                     buffers in place (probe_in_place) */
  int npool, cappool;
  size_t bytes_in_use, bytes_peak; /* pool buffers handed out */
  int profile;                    /* 1: events recorded */
  struct {
    char name[48];
    double seconds;
    long calls;
  } prof[MAX_PROFILE];
  int nprof;
  cl_event pending[MAX_PENDING];  /* launched, not yet added to prof */
  int pending_prof[MAX_PENDING];  /* index into prof */
  int npending;
  int builds_source, builds_cache;
  char msg[MSG_LEN];              /* last error */
};

static int probe_in_place(vtl_cl *cl);

/* ---- errors -------------------------------------------------------- */

const char *vtl__cl_errname(cl_int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
    E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP)
    E(CL_IMAGE_FORMAT_MISMATCH) E(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE)
    E(CL_LINK_PROGRAM_FAILURE) E(CL_INVALID_VALUE)
    E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES)
    E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_BINARY)
    E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL)
    E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION)
    E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
    E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
    E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL_UNKNOWN_ERROR";
  }
}

static int vfail(char *msg, size_t len, int code, const char *fmt,
                 va_list ap) {
  if (msg && len) vsnprintf(msg, len, fmt, ap);
  return code;
}

int vtl__fail(vtl_cl *cl, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(cl->msg, sizeof cl->msg, code, fmt, ap);
  va_end(ap);
  return code;
}

static int cl_code(cl_int err) {
  switch (err) {
    case CL_SUCCESS: return 0;
    case CL_OUT_OF_HOST_MEMORY:
    case CL_OUT_OF_RESOURCES:
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return VTL_ENOMEM;
    case CL_DEVICE_NOT_FOUND:
    case -1001: return VTL_ENOENT;
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILE_PROGRAM_FAILURE:
    case CL_LINK_PROGRAM_FAILURE:
    case CL_INVALID_KERNEL_NAME: return VTL_EPARSE;
    case CL_COMPILER_NOT_AVAILABLE:
    case CL_LINKER_NOT_AVAILABLE:
    case CL_IMAGE_FORMAT_NOT_SUPPORTED: return VTL_EUNSUPPORTED;
    default:
      /* -30 .. -72: the CL_INVALID_* family: a bad call of ours */
      return (err <= -30 && err >= -72) ? VTL_EINVAL : VTL_EIO;
  }
}

int vtl__check(vtl_cl *cl, cl_int err, const char *what) {
  if (err == CL_SUCCESS) return 0;
  return vtl__fail(cl, cl_code(err), "%s: %s (%d)", what,
                   vtl__cl_errname(err), (int)err);
}

const char *vtl_cl_errmsg(const vtl_cl *cl) { return cl ? cl->msg : ""; }

/* ---- device choice ------------------------------------------------- */

void vtl_cl_options_init(vtl_cl_options *o) {
  memset(o, 0, sizeof *o);
  o->backend = VTL_BACKEND_AUTO;
  o->profile = -1;
}

typedef struct {
  cl_platform_id platform;
  cl_device_id device;
  int p, d;
  cl_device_type type;
  char name[512];
} devinfo;

/* Every device of every platform, in order; *n set. Caller frees. */
static int enumerate(devinfo **out, int *n, char *msg, size_t msglen) {
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  *out = NULL;
  *n = 0;
  if (err == -1001 || (err == CL_SUCCESS && np == 0)) {
    snprintf(msg, msglen, "no OpenCL platform (install an ICD: "
             "pocl-opencl-icd for CPUs, the vendor's for GPUs)");
    return VTL_ENOENT;
  }
  if (err != CL_SUCCESS) {
    snprintf(msg, msglen, "clGetPlatformIDs: %s (%d)", vtl__cl_errname(err),
             (int)err);
    return cl_code(err);
  }
  cl_platform_id *ps = calloc(np, sizeof *ps);
  if (!ps) return VTL_ENOMEM;
  clGetPlatformIDs(np, ps, NULL);
  devinfo *list = NULL;
  int count = 0;
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS
        || nd == 0)
      continue;
    cl_device_id *ds = calloc(nd, sizeof *ds);
    devinfo *grown = realloc(list, (count + nd) * sizeof *list);
    if (!ds || !grown) {
      free(ds);
      free(grown ? grown : list);
      free(ps);
      return VTL_ENOMEM;
    }
    list = grown;
    clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, nd, ds, NULL);
    char pname[200] = "", dname[200] = "";
    clGetPlatformInfo(ps[p], CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
    for (cl_uint d = 0; d < nd; d++) {
      devinfo *di = &list[count++];
      di->platform = ps[p];
      di->device = ds[d];
      di->p = (int)p;
      di->d = (int)d;
      clGetDeviceInfo(ds[d], CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
      dname[0] = 0;
      clGetDeviceInfo(ds[d], CL_DEVICE_NAME, sizeof dname - 1, dname, NULL);
      snprintf(di->name, sizeof di->name, "%s / %s", pname, dname);
    }
    free(ds);
  }
  free(ps);
  *out = list;
  *n = count;
  if (count == 0) {
    snprintf(msg, msglen, "OpenCL platforms found but no device");
    return VTL_ENOENT;
  }
  return 0;
}

int vtl_cl_list(FILE *f) {
  devinfo *list;
  int n;
  char msg[256];
  int rc = enumerate(&list, &n, msg, sizeof msg);
  if (rc < 0) {
    fprintf(f, "%s\n", msg);
    return rc;
  }
  for (int i = 0; i < n; i++) {
    cl_uint cu = 0;
    cl_ulong mem = 0;
    clGetDeviceInfo(list[i].device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu,
                    &cu, NULL);
    clGetDeviceInfo(list[i].device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem,
                    &mem, NULL);
    fprintf(f, "%d:%d  %s  (%s, %u CU, %llu MiB)\n", list[i].p, list[i].d,
            list[i].name,
            list[i].type & CL_DEVICE_TYPE_GPU ? "GPU"
            : list[i].type & CL_DEVICE_TYPE_CPU ? "CPU" : "other",
            cu, (unsigned long long)(mem >> 20));
  }
  free(list);
  return n;
}

static int icontains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n) return 1;
  }
  return n == 0;
}

/* Picks the device (runtime.h "Device choice"); -1 and msg when none. */
static int choose(const devinfo *list, int n, const char *spec, char *msg,
                  size_t msglen) {
  if (spec && *spec) {
    int p, d, used = 0;
    if (sscanf(spec, "%d:%d%n", &p, &d, &used) == 2 && spec[used] == 0) {
      for (int i = 0; i < n; i++)
        if (list[i].p == p && list[i].d == d) return i;
    } else {
      for (int i = 0; i < n; i++)
        if (icontains(list[i].name, spec)) return i;
    }
    int k = snprintf(msg, msglen, "no OpenCL device matches \"%s\"; there is",
                     spec);
    for (int i = 0; i < n && k > 0 && (size_t)k < msglen; i++)
      k += snprintf(msg + k, msglen - k, "%s %d:%d %s", i ? "," : "",
                    list[i].p, list[i].d, list[i].name);
    return -1;
  }
  for (int i = 0; i < n; i++)
    if (list[i].type & CL_DEVICE_TYPE_GPU) return i;
  return 0;
}

/* The backend from the device type: the one place this is decided. */
static vtl_backend backend_for(const vtl_cl *cl, vtl_backend asked) {
  if (asked != VTL_BACKEND_AUTO) return asked;
  const char *env = getenv("VTL_BACKEND");
  if (env && strcmp(env, "host") == 0) return VTL_BACKEND_HOST;
  if (env && strcmp(env, "cl") == 0) return VTL_BACKEND_CL;
  return cl->is_cpu ? VTL_BACKEND_HOST : VTL_BACKEND_CL;
}

/* How weights are stored, from the backend and the device: the one place
 * this is decided. f16 needs the CL backend (OpenBLAS multiplies f32 in
 * place) and a device that does f16 natively; forcing it works anywhere. */
static vtl_weights_store weights_for(const vtl_cl *cl, vtl_weights_store asked) {
  if (asked != VTL_WEIGHTS_AUTO) return asked;
  const char *env = getenv("VTL_WEIGHTS");
  if (env && strcmp(env, "f16") == 0) return VTL_WEIGHTS_F16;
  if (env && strcmp(env, "f32") == 0) return VTL_WEIGHTS_F32;
  return cl->backend == VTL_BACKEND_CL && cl->has_fp16 ? VTL_WEIGHTS_F16
                                                        : VTL_WEIGHTS_F32;
}

static int device_has_fp16(cl_device_id dev) {
  size_t len = 0;
  if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &len) != CL_SUCCESS)
    return 0;
  char *ext = malloc(len + 1);
  if (!ext) return 0;
  int has = clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, len, ext, NULL) ==
            CL_SUCCESS;
  ext[has ? len : 0] = 0;
  has = strstr(ext, "cl_khr_fp16") != NULL;
  free(ext);
  return has;
}

static void default_cache_dir(char *out, size_t len) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (xdg && *xdg) snprintf(out, len, "%s/vtl", xdg);
  else if (home && *home) snprintf(out, len, "%s/.cache/vtl", home);
  else out[0] = 0;
}

int vtl_cl_init(vtl_cl **out, const vtl_cl_options *opts, char *msg,
                size_t msglen) {
  vtl_cl_options defaults;
  if (!opts) {
    vtl_cl_options_init(&defaults);
    opts = &defaults;
  }
  char scratch[256];
  if (!msg || !msglen) {
    msg = scratch;
    msglen = sizeof scratch;
  }
  msg[0] = 0;
  *out = NULL;
  devinfo *list;
  int n;
  int rc = enumerate(&list, &n, msg, msglen);
  if (rc < 0) return rc;
  const char *spec = opts->device ? opts->device : getenv("VTL_CL_DEVICE");
  int pick = choose(list, n, spec, msg, msglen);
  if (pick < 0) {
    free(list);
    return VTL_ENOENT;
  }
  vtl_cl *cl = calloc(1, sizeof *cl);
  if (!cl) {
    free(list);
    return VTL_ENOMEM;
  }
  cl->platform = list[pick].platform;
  cl->device = list[pick].device;
  cl->is_cpu = (list[pick].type & CL_DEVICE_TYPE_CPU) != 0;
  snprintf(cl->name, sizeof cl->name, "%s", list[pick].name);
  free(list);
  clGetDeviceInfo(cl->device, CL_DRIVER_VERSION, sizeof cl->driver - 1,
                  cl->driver, NULL);
  clGetPlatformInfo(cl->platform, CL_PLATFORM_VERSION,
                    sizeof cl->platform_version - 1, cl->platform_version,
                    NULL);
  cl->backend = backend_for(cl, opts->backend);
  cl->has_fp16 = device_has_fp16(cl->device);
  cl->weights = weights_for(cl, opts->weights);
  if (opts->profile >= 0) cl->profile = opts->profile;
  else {
    const char *p = getenv("VTL_CL_PROFILE");
    cl->profile = p && *p && strcmp(p, "0") != 0;
  }
  if (opts->cache_dir) snprintf(cl->cache_dir, sizeof cl->cache_dir, "%s",
                                opts->cache_dir);
  else default_cache_dir(cl->cache_dir, sizeof cl->cache_dir);

  size_t maxwg = 256;
  clGetDeviceInfo(cl->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg,
                  &maxwg, NULL);
  /* Per-device tunables (CLBlast's -D table, STYLE.md 15): a CPU work-group
   * runs on one thread, so smaller groups spread better over few cores. */
  cl->wgs = cl->is_cpu ? 64 : 256;
  if (cl->wgs > maxwg) cl->wgs = maxwg;
  snprintf(cl->options, sizeof cl->options, "-cl-std=CL1.2 -DWGS=%zu",
           cl->wgs);

  cl_int err;
  cl->ctx = clCreateContext(NULL, 1, &cl->device, NULL, NULL, &err);
  if (err != CL_SUCCESS) {
    snprintf(msg, msglen, "clCreateContext(%s): %s (%d)", cl->name,
             vtl__cl_errname(err), (int)err);
    free(cl);
    return cl_code(err);
  }
  cl->queue = clCreateCommandQueue(
      cl->ctx, cl->device, cl->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (err != CL_SUCCESS) {
    snprintf(msg, msglen, "clCreateCommandQueue(%s): %s (%d)", cl->name,
             vtl__cl_errname(err), (int)err);
    clReleaseContext(cl->ctx);
    free(cl);
    return cl_code(err);
  }
  const char *ip = getenv("VTL_HOST_IN_PLACE");
  cl->host_in_place = cl->is_cpu && !(ip && strcmp(ip, "0") == 0) &&
                      probe_in_place(cl);
  *out = cl;
  return 0;
}

const char *vtl_cl_device_name(const vtl_cl *cl) { return cl->name; }
int vtl_cl_is_host_cpu(const vtl_cl *cl) { return cl->is_cpu; }
vtl_backend vtl_cl_backend(const vtl_cl *cl) { return cl->backend; }
void vtl_cl_set_backend(vtl_cl *cl, vtl_backend b) {
  cl->backend = b == VTL_BACKEND_AUTO
                    ? (cl->is_cpu ? VTL_BACKEND_HOST : VTL_BACKEND_CL)
                    : b;
}
vtl_weights_store vtl_cl_weights(const vtl_cl *cl) { return cl->weights; }
const char *vtl_cl_weights_name(const vtl_cl *cl) {
  return cl->weights == VTL_WEIGHTS_F16 ? "f16" : "f32";
}
int vtl_cl_has_fp16(const vtl_cl *cl) { return cl->has_fp16; }
size_t vtl__wgs(const vtl_cl *cl) { return cl->wgs; }
void vtl_cl_build_counts(const vtl_cl *cl, int *src, int *cache) {
  if (src) *src = cl->builds_source;
  if (cache) *cache = cl->builds_cache;
}

/* ---- profiling ----------------------------------------------------- */

double vtl__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int prof_slot(vtl_cl *cl, const char *name) {
  for (int i = 0; i < cl->nprof; i++)
    if (strcmp(cl->prof[i].name, name) == 0) return i;
  if (cl->nprof == MAX_PROFILE) return MAX_PROFILE - 1; /* lumped */
  snprintf(cl->prof[cl->nprof].name, sizeof cl->prof[0].name, "%s", name);
  return cl->nprof++;
}

void vtl__profile_host(vtl_cl *cl, const char *name, double seconds) {
  if (!cl->profile) return;
  int i = prof_slot(cl, name);
  cl->prof[i].seconds += seconds;
  cl->prof[i].calls++;
}

static void flush_events(vtl_cl *cl) {
  if (cl->npending == 0) return;
  clWaitForEvents(cl->npending, cl->pending);
  for (int i = 0; i < cl->npending; i++) {
    cl_ulong t0 = 0, t1 = 0;
    if (clGetEventProfilingInfo(cl->pending[i], CL_PROFILING_COMMAND_START,
                                sizeof t0, &t0, NULL) == CL_SUCCESS &&
        clGetEventProfilingInfo(cl->pending[i], CL_PROFILING_COMMAND_END,
                                sizeof t1, &t1, NULL) == CL_SUCCESS) {
      cl->prof[cl->pending_prof[i]].seconds += (t1 - t0) * 1e-9;
    }
    cl->prof[cl->pending_prof[i]].calls++;
    clReleaseEvent(cl->pending[i]);
  }
  cl->npending = 0;
}

void vtl_cl_profile_print(vtl_cl *cl, FILE *out) {
  flush_events(cl);
  if (!cl->profile || cl->nprof == 0) return;
  double total = 0;
  for (int i = 0; i < cl->nprof; i++) total += cl->prof[i].seconds;
  fprintf(out, "vtl profile (%s, %s backend):\n", cl->name,
          cl->backend == VTL_BACKEND_HOST ? "host" : "cl");
  fprintf(out, "  %-28s %8s %12s %6s\n", "kernel", "calls", "ms", "%");
  for (int i = 0; i < cl->nprof; i++)
    fprintf(out, "  %-28s %8ld %12.3f %6.1f\n", cl->prof[i].name,
            cl->prof[i].calls, cl->prof[i].seconds * 1e3,
            total > 0 ? 100 * cl->prof[i].seconds / total : 0.0);
  fprintf(out, "  %-28s %8s %12.3f\n", "total", "", total * 1e3);
}

/* ---- launching ----------------------------------------------------- */

int vtl__args(vtl_cl *cl, cl_kernel k, const char *name, ...) {
  va_list ap;
  va_start(ap, name);
  cl_uint idx = 0;
  for (;;) {
    size_t size = va_arg(ap, size_t);
    if (size == 0) break;
    const void *p = va_arg(ap, const void *);
    cl_int err = clSetKernelArg(k, idx, size, p);
    if (err != CL_SUCCESS) {
      va_end(ap);
      char what[96];
      snprintf(what, sizeof what, "clSetKernelArg(%s, %u)", name, idx);
      return vtl__check(cl, err, what);
    }
    idx++;
  }
  va_end(ap);
  return 0;
}

int vtl__launch(vtl_cl *cl, cl_kernel k, const char *name, int dims,
                const size_t *gws, const size_t *lws) {
  size_t g[3];
  for (int i = 0; i < dims; i++) {
    g[i] = gws[i] ? gws[i] : 1;
    if (lws) g[i] = (g[i] + lws[i] - 1) / lws[i] * lws[i];
  }
  cl_event ev = NULL;
  cl_int err = clEnqueueNDRangeKernel(cl->queue, k, (cl_uint)dims, NULL, g,
                                      lws, 0, NULL,
                                      cl->profile ? &ev : NULL);
  if (err != CL_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "clEnqueueNDRangeKernel(%s)", name);
    return vtl__check(cl, err, what);
  }
  vtl__profile_event(cl, ev, name);
  return 0;
}

void vtl__profile_event(vtl_cl *cl, cl_event ev, const char *name) {
  if (!ev) return;
  if (!cl->profile) {
    clReleaseEvent(ev);
    return;
  }
  if (cl->npending == MAX_PENDING) flush_events(cl);
  cl->pending_prof[cl->npending] = prof_slot(cl, name);
  cl->pending[cl->npending++] = ev;
}

cl_command_queue vtl__queue(vtl_cl *cl) { return cl->queue; }
int vtl__profiling(const vtl_cl *cl) { return cl->profile; }

size_t vtl__gws(const vtl_cl *cl, size_t n) {
  size_t cap = cl->wgs * (cl->is_cpu ? 256 : 16384);
  size_t g = (n + cl->wgs - 1) / cl->wgs * cl->wgs;
  return g < cap ? (g ? g : cl->wgs) : cap;
}

int vtl_cl_finish(vtl_cl *cl) {
  return vtl__check(cl, clFinish(cl->queue), "clFinish");
}

/* ---- programs and the binary cache ---------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV0 0xcbf29ce484222325ULL

static void cache_path(const vtl_cl *cl, const char *name, const char *src,
                       const char *opts, char *out, size_t len) {
  uint64_t h = FNV0;
  h = fnv(h, cl->name, strlen(cl->name) + 1);
  h = fnv(h, cl->driver, strlen(cl->driver) + 1);
  h = fnv(h, cl->platform_version, strlen(cl->platform_version) + 1);
  h = fnv(h, src, strlen(src) + 1);
  h = fnv(h, opts, strlen(opts) + 1);
  snprintf(out, len, "%s/%s-%016llx.bin", cl->cache_dir, name,
           (unsigned long long)h);
}

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* The cached binary at path (malloc'd, *len), or NULL when absent or
 * damaged (runtime.h cache format). */
static unsigned char *cache_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char hdr[24];
  unsigned char *bin = NULL;
  if (fread(hdr, 1, 24, f) != 24 || memcmp(hdr, "VTLCLBN1", 8) != 0) goto bad;
  uint64_t n = get64(hdr + 8);
  if (n == 0 || n > ((uint64_t)1 << 30)) goto bad;
  bin = malloc(n);
  if (!bin || fread(bin, 1, n, f) != n || fgetc(f) != EOF) goto bad;
  if (fnv(FNV0, bin, n) != get64(hdr + 16)) goto bad;
  fclose(f);
  *len = n;
  return bin;
bad:
  free(bin);
  fclose(f);
  return NULL;
}

static void mkdirs(const char *dir) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0755);
      *p = '/';
    }
  mkdir(tmp, 0755);
}

/* Best effort: a cache we cannot write only costs the next start time. */
static void cache_write(const vtl_cl *cl, const char *path, cl_program p) {
  size_t n = 0;
  if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) !=
          CL_SUCCESS || n == 0)
    return;
  unsigned char *bin = malloc(n);
  if (!bin) return;
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) !=
      CL_SUCCESS) {
    free(bin);
    return;
  }
  mkdirs(cl->cache_dir);
  char tmp[PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (f) {
    unsigned char hdr[24];
    memcpy(hdr, "VTLCLBN1", 8);
    put64(hdr + 8, n);
    put64(hdr + 16, fnv(FNV0, bin, n));
    int ok = fwrite(hdr, 1, 24, f) == 24 && fwrite(bin, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
  }
  free(bin);
}

static int build_failed(vtl_cl *cl, cl_program p, const char *name,
                        cl_int err) {
  size_t n = 0;
  char *log = NULL;
  if (clGetProgramBuildInfo(p, cl->device, CL_PROGRAM_BUILD_LOG, 0, NULL,
                            &n) == CL_SUCCESS && n > 0 &&
      (log = malloc(n + 1)) != NULL) {
    clGetProgramBuildInfo(p, cl->device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
    log[n] = 0;
  }
  int rc = vtl__fail(cl, cl_code(err), "building %s.cl on %s: %s (%d)\n%s",
                     name, cl->name, vtl__cl_errname(err), (int)err,
                     log ? log : "(no build log)");
  free(log);
  return rc;
}

int vtl_cl_build(vtl_cl *cl, const char *name, const char *source,
                 const char *options, cl_program *out) {
  cl_int err;
  char path[PATH_MAX + 64] = "";
  *out = NULL;
  if (!options) options = "";
  if (cl->cache_dir[0]) {
    cache_path(cl, name, source, options, path, sizeof path);
    size_t len;
    unsigned char *bin = cache_read(path, &len);
    if (bin) {
      const unsigned char *bins[1] = {bin};
      cl_int status = CL_SUCCESS;
      cl_program p = clCreateProgramWithBinary(cl->ctx, 1, &cl->device, &len,
                                               bins, &status, &err);
      free(bin);
      if (err == CL_SUCCESS && status == CL_SUCCESS &&
          clBuildProgram(p, 1, &cl->device, options, NULL, NULL) ==
              CL_SUCCESS) {
        cl->builds_cache++;
        *out = p;
        return 0;
      }
      if (p) clReleaseProgram(p); /* refused: rebuild from source below */
    }
  }
  cl_program p = clCreateProgramWithSource(cl->ctx, 1, &source, NULL, &err);
  if (err != CL_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "clCreateProgramWithSource(%s)", name);
    return vtl__check(cl, err, what);
  }
  err = clBuildProgram(p, 1, &cl->device, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    int rc = build_failed(cl, p, name, err);
    clReleaseProgram(p);
    return rc;
  }
  cl->builds_source++;
  if (path[0]) cache_write(cl, path, p);
  *out = p;
  return 0;
}

static int program(vtl_cl *cl, vtl__program_id id, cl_program *out) {
  static const char *const files[] = {
#define X(i, file) file,
      VTL_PROGRAM_MAP(X)
#undef X
  };
  if (!cl->prog[id]) {
    const char *src = NULL;
    for (int i = 0; i < vtl__kernel_source_count; i++)
      if (strcmp(vtl__kernel_sources[i].name, files[id]) == 0)
        src = vtl__kernel_sources[i].src;
    if (!src)
      return vtl__fail(cl, VTL_ENOENT, "kernels/%s.cl was not embedded",
                       files[id]);
    int rc = vtl_cl_build(cl, files[id], src, cl->options, &cl->prog[id]);
    if (rc < 0) return rc;
  }
  *out = cl->prog[id];
  return 0;
}

int vtl__kernel(vtl_cl *cl, vtl__program_id prog, const char *name,
                cl_kernel *out) {
  for (int i = 0; i < cl->nkernels; i++)
    if (cl->kernels[i].prog == prog && strcmp(cl->kernels[i].name, name) == 0) {
      *out = cl->kernels[i].k;
      return 0;
    }
  if (cl->nkernels == MAX_KERNELS)
    return vtl__fail(cl, VTL_ELIMIT, "more than %d kernels", MAX_KERNELS);
  cl_program p = NULL;
  int rc = program(cl, prog, &p);
  if (rc < 0) return rc;
  cl_int err;
  cl_kernel k = clCreateKernel(p, name, &err);
  if (err != CL_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "clCreateKernel(%s)", name);
    return vtl__check(cl, err, what);
  }
  cl->kernels[cl->nkernels].prog = prog;
  snprintf(cl->kernels[cl->nkernels].name, sizeof cl->kernels[0].name, "%s",
           name);
  cl->kernels[cl->nkernels++].k = k;
  *out = k;
  return 0;
}

/* ---- the buffer pool ------------------------------------------------ */

/* A device buffer of bytes (a multiple of 4096). host_in_place: over our
 * own page-aligned memory (CL_MEM_USE_HOST_PTR, *host set), which the host
 * backend then reads and writes directly; other CPU devices:
 * CL_MEM_ALLOC_HOST_PTR (zero-copy mapping); GPUs: device memory. */
static cl_mem create_buffer(vtl_cl *cl, size_t bytes, void **host,
                            cl_int *err) {
  cl_mem_flags flags = CL_MEM_READ_WRITE;
  *host = NULL;
  if (cl->host_in_place) {
    if (posix_memalign(host, 4096, bytes) != 0) {
      *host = NULL;
      *err = CL_OUT_OF_HOST_MEMORY;
      return NULL;
    }
    cl_mem m = clCreateBuffer(cl->ctx, flags | CL_MEM_USE_HOST_PTR, bytes,
                              *host, err);
    if (*err != CL_SUCCESS) {
      free(*host);
      *host = NULL;
    }
    return m;
  }
  if (cl->is_cpu) flags |= CL_MEM_ALLOC_HOST_PTR;
  return clCreateBuffer(cl->ctx, flags, bytes, NULL, err);
}

/* Whether this CPU device computes on CL_MEM_USE_HOST_PTR memory in place
 * (PoCL's CPU drivers do): a fill through the queue must show in our memory
 * and a map must return our pointer. Then the host backend skips
 * map/unmap (about 100 us per GEMM on PoCL, measured). */
static int probe_in_place(vtl_cl *cl) {
  enum { N = 1024 };
  float *host = NULL;
  if (posix_memalign((void **)&host, 4096, N * sizeof *host) != 0) return 0;
  for (int i = 0; i < N; i++) host[i] = 0.0f;
  cl_int err;
  cl_mem m = clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR,
                            N * sizeof *host, host, &err);
  int ok = 0;
  if (err == CL_SUCCESS) {
    float one = 1.0f;
    ok = clEnqueueFillBuffer(cl->queue, m, &one, sizeof one, 0,
                             N * sizeof *host, 0, NULL, NULL) == CL_SUCCESS &&
         clFinish(cl->queue) == CL_SUCCESS && host[0] == 1.0f &&
         host[N - 1] == 1.0f;
    if (ok) {
      void *p = clEnqueueMapBuffer(cl->queue, m, CL_TRUE, CL_MAP_READ, 0,
                                   N * sizeof *host, 0, NULL, NULL, &err);
      ok = err == CL_SUCCESS && p == (void *)host;
      if (err == CL_SUCCESS)
        clEnqueueUnmapMemObject(cl->queue, m, p, 0, NULL, NULL);
      clFinish(cl->queue);
    }
    clReleaseMemObject(m);
  }
  free(host);
  return ok;
}

int vtl__buf_get(vtl_cl *cl, size_t bytes, cl_mem *out, size_t *got) {
  if (bytes == 0) bytes = 4;
  bytes = (bytes + 4095) & ~(size_t)4095;
  int best = -1;
  for (int i = 0; i < cl->npool; i++) /* best fit, at most 2x too big */
    if (!cl->pool[i].used && cl->pool[i].bytes >= bytes &&
        cl->pool[i].bytes <= 2 * bytes &&
        (best < 0 || cl->pool[i].bytes < cl->pool[best].bytes))
      best = i;
  if (best < 0) {
    if (cl->npool == cl->cappool) {
      int cap = cl->cappool ? 2 * cl->cappool : 32;
      void *grown = realloc(cl->pool, cap * sizeof *cl->pool);
      if (!grown) return vtl__fail(cl, VTL_ENOMEM, "buffer pool: out of memory");
      cl->pool = grown;
      cl->cappool = cap;
    }
    void *host = NULL;
    cl_int err;
    cl_mem m = create_buffer(cl, bytes, &host, &err);
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
        err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY) {
      vtl_cl_trim(cl); /* give idle buffers back, then try once more */
      m = create_buffer(cl, bytes, &host, &err);
    }
    if (err != CL_SUCCESS) {
      char what[96];
      snprintf(what, sizeof what, "clCreateBuffer(%zu bytes)", bytes);
      return vtl__check(cl, err, what);
    }
    best = cl->npool++;
    cl->pool[best].mem = m;
    cl->pool[best].bytes = bytes;
    cl->pool[best].host = host;
  }
  cl->pool[best].used = 1;
  cl->bytes_in_use += cl->pool[best].bytes;
  if (cl->bytes_in_use > cl->bytes_peak) cl->bytes_peak = cl->bytes_in_use;
  *out = cl->pool[best].mem;
  *got = cl->pool[best].bytes;
  return 0;
}

void vtl__buf_put(vtl_cl *cl, cl_mem m) {
  for (int i = 0; i < cl->npool; i++)
    if (cl->pool[i].mem == m && cl->pool[i].used) {
      cl->pool[i].used = 0;
      cl->bytes_in_use -= cl->pool[i].bytes;
      return;
    }
}

static void release_buffer(vtl_cl *cl, int i) {
  clReleaseMemObject(cl->pool[i].mem);
  free(cl->pool[i].host);
}

void vtl_cl_trim(vtl_cl *cl) {
  int j = 0;
  clFinish(cl->queue); /* no queued command may still use freed memory */
  for (int i = 0; i < cl->npool; i++) {
    if (cl->pool[i].used) cl->pool[j++] = cl->pool[i];
    else release_buffer(cl, i);
  }
  cl->npool = j;
}

size_t vtl_cl_bytes_in_use(const vtl_cl *cl) { return cl->bytes_in_use; }
size_t vtl_cl_bytes_peak(const vtl_cl *cl) { return cl->bytes_peak; }

/* ---- host mapping --------------------------------------------------- */

/* The in-place host memory of buffer mem, or NULL. */
static void *host_of(const vtl_cl *cl, cl_mem mem) {
  for (int i = 0; i < cl->npool; i++)
    if (cl->pool[i].mem == mem) return cl->pool[i].host;
  return NULL;
}

int vtl__map(vtl_cl *cl, vtl__mapping *m, int n, const vtl_tensor *const *t,
             float **ptr) {
  m->n = 0;
  if (cl->host_in_place) /* the queue must be done with the memory */
    VTL__TRY(vtl__check(cl, clFinish(cl->queue), "clFinish"));
  for (int i = 0; i < n; i++) {
    if (!t[i]) {
      ptr[i] = NULL;
      continue;
    }
    if (t[i]->type != VTL_F32) {
      vtl__unmap(cl, m);
      return vtl__fail(cl, VTL_EINVAL, "vtl__map: '%s' is f16; the host "
                       "backend reads f32 only", t[i]->name);
    }
    float *host = cl->host_in_place ? host_of(cl, t[i]->buf) : NULL;
    if (host) {
      ptr[i] = host + t[i]->off;
      continue;
    }
    int j = 0;
    while (j < m->n && m->mem[j] != t[i]->buf) j++;
    if (j == m->n) {
      if (m->n == 8) {
        vtl__unmap(cl, m);
        return vtl__fail(cl, VTL_ELIMIT, "vtl__map: more than 8 buffers");
      }
      size_t bytes = 0;
      clGetMemObjectInfo(t[i]->buf, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
      cl_int err;
      void *p = clEnqueueMapBuffer(cl->queue, t[i]->buf, CL_TRUE,
                                   CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0,
                                   NULL, NULL, &err);
      if (err != CL_SUCCESS) {
        vtl__unmap(cl, m);
        return vtl__check(cl, err, "clEnqueueMapBuffer");
      }
      m->mem[j] = t[i]->buf;
      m->base[j] = p;
      m->n++;
    }
    ptr[i] = (float *)m->base[j] + t[i]->off;
  }
  return 0;
}

int vtl__unmap(vtl_cl *cl, vtl__mapping *m) {
  cl_int first = CL_SUCCESS;
  for (int j = 0; j < m->n; j++) {
    cl_int err = clEnqueueUnmapMemObject(cl->queue, m->mem[j], m->base[j], 0,
                                         NULL, NULL);
    if (first == CL_SUCCESS) first = err;
  }
  m->n = 0;
  return vtl__check(cl, first, "clEnqueueUnmapMemObject");
}

/* ---- tensors -------------------------------------------------------- */

size_t vtl_type_size(vtl_type type) { return type == VTL_F16 ? 2 : 4; }

size_t vtl_tensor_bytes(const vtl_tensor *t) {
  return vtl_tensor_numel(t) * vtl_type_size(t->type);
}

size_t vtl_tensor_numel(const vtl_tensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}

int vtl_tensor_set_shape(vtl_tensor *t, int ndim, const int64_t *shape) {
  if (ndim < 1 || ndim > VTL_MAX_DIMS) return VTL_EINVAL;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 1 || shape[i] > INT32_MAX) return VTL_EINVAL;
  t->ndim = ndim;
  for (int i = 0; i < VTL_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
  return 0;
}

int vtl_tensor_alloc(vtl_cl *cl, vtl_tensor *t, int ndim,
                     const int64_t *shape) {
  return vtl_tensor_alloc_as(cl, t, VTL_F32, ndim, shape);
}

int vtl_tensor_alloc_as(vtl_cl *cl, vtl_tensor *t, vtl_type type, int ndim,
                        const int64_t *shape) {
  memset(t, 0, sizeof *t);
  if (vtl_tensor_set_shape(t, ndim, shape) < 0)
    return vtl__fail(cl, VTL_EINVAL, "vtl_tensor_alloc: bad shape");
  t->type = type;
  size_t got;
  int rc = vtl__buf_get(cl, vtl_tensor_bytes(t), &t->buf, &got);
  if (rc < 0) return rc;
  t->buf_elems = got / vtl_type_size(type);
  t->owner = 1;
  return 0;
}

void vtl_tensor_release(vtl_cl *cl, vtl_tensor *t) {
  if (t->buf && t->owner) vtl__buf_put(cl, t->buf);
  memset(t, 0, sizeof *t);
}

int vtl_tensor_view(vtl_tensor *v, const vtl_tensor *base, size_t off,
                    int ndim, const int64_t *shape) {
  vtl_tensor r = *base;
  if (vtl_tensor_set_shape(&r, ndim, shape) < 0) return VTL_EINVAL;
  r.off = base->off + off;
  if (off + vtl_tensor_numel(&r) > vtl_tensor_numel(base)) return VTL_ERANGE;
  r.owner = 0;
  r.name[0] = 0;
  *v = r;
  return 0;
}

int vtl_tensor_view_as(vtl_tensor *v, const vtl_tensor *base, vtl_type type,
                       size_t byte_off, int ndim, const int64_t *shape) {
  size_t es = vtl_type_size(type), base_at = base->off * vtl_type_size(base->type);
  if ((base_at + byte_off) % es) return VTL_EINVAL;
  vtl_tensor r = *base;
  r.type = type;
  if (vtl_tensor_set_shape(&r, ndim, shape) < 0) return VTL_EINVAL;
  if (byte_off + vtl_tensor_bytes(&r) > vtl_tensor_bytes(base))
    return VTL_ERANGE;
  r.off = (base_at + byte_off) / es;
  r.buf_elems = base->buf_elems * vtl_type_size(base->type) / es;
  r.owner = 0;
  r.name[0] = 0;
  *v = r;
  return 0;
}

int vtl_tensor_reshape(vtl_tensor *t, int ndim, const int64_t *shape) {
  vtl_tensor r = *t;
  if (vtl_tensor_set_shape(&r, ndim, shape) < 0 ||
      vtl_tensor_numel(&r) != vtl_tensor_numel(t))
    return VTL_EINVAL;
  *t = r;
  return 0;
}

int vtl_tensor_write(vtl_cl *cl, const vtl_tensor *t, const void *src) {
  cl_int err = clEnqueueWriteBuffer(cl->queue, t->buf, CL_TRUE,
                                    t->off * vtl_type_size(t->type),
                                    vtl_tensor_bytes(t), src, 0, NULL, NULL);
  return vtl__check(cl, err, "clEnqueueWriteBuffer");
}

int vtl_tensor_read(vtl_cl *cl, const vtl_tensor *t, void *dst) {
  cl_int err = clEnqueueReadBuffer(cl->queue, t->buf, CL_TRUE,
                                   t->off * vtl_type_size(t->type),
                                   vtl_tensor_bytes(t), dst, 0, NULL, NULL);
  return vtl__check(cl, err, "clEnqueueReadBuffer");
}

/* ---- closing -------------------------------------------------------- */

void vtl_cl_close(vtl_cl *cl) {
  if (!cl) return;
  clFinish(cl->queue);
  if (cl->profile) vtl_cl_profile_print(cl, stderr);
  flush_events(cl);
  for (int i = 0; i < cl->nkernels; i++) clReleaseKernel(cl->kernels[i].k);
  for (int i = 0; i < VTL_PROG_COUNT; i++)
    if (cl->prog[i]) clReleaseProgram(cl->prog[i]);
  for (int i = 0; i < cl->npool; i++) release_buffer(cl, i);
  free(cl->pool);
  clReleaseCommandQueue(cl->queue);
  clReleaseContext(cl->ctx);
  free(cl);
}
