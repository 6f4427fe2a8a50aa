/* test_ops.c — the OpenCL runtime and every tensor op against its plain-C
 * reference (engine/ops.h), on random shapes with odd sizes, on both
 * backends where an op has two (ggml's test-backend-ops, STYLE.md 16).
 *
 * Tolerances, |got - ref| <= ATOL + RTOL * |ref| element by element (the
 * references accumulate in double; inputs are uniform in [-1, 1]):
 *
 *   op                         ATOL    RTOL   why
 *   gemm, linear, conv2d       1e-4    1e-4   float sums of up to ~600 terms
 *   conv2d as Winograd         3e-4    1e-4   transformed sums (see its test)
 *   group / layer norm         1e-4    1e-4   float statistics over <= 40k
 *   attention                  1e-4    1e-4   exp and float sums over keys
 *   activations, geglu         1e-5    1e-5   erf/exp within a few ulp
 *   timestep embedding         2e-4    0      sin/cos of arguments up to 1e3
 *   copies (upsample, concat)  0       0      exact
 *   add, mul, scale            0       0      one rounding, the same
 *
 * Both backends: gemm, linear, conv2d and attention run twice, forced with
 * vtl_cl_set_backend (the environment variable VTL_BACKEND=cl|host does the
 * same for whole programs). The other ops are OpenCL kernels on both.
 *
 * Speed: PoCL compiles a program in seconds, so one runtime per process
 * (rt()), four programs in all, and the binary cache in the build tree
 * (VTL_BINARY_DIR/kernel-cache) so that later test processes load them. The
 * CL backend's GEMM is CLBlast, which compiles its own kernels on first use.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "runtime.h"
#include "runtime_int.h"
#include "safetensors.h"
#include "engine_test.h"
#include "task.h"
#include "vtl_error.h"

/* ---- fixtures ---------------------------------------------------------- */

static int irand(int lo, int hi) { /* [lo, hi] */
  return lo + (int)(((frand() + 1.0f) * 0.5f) * (hi - lo + 1)) % (hi - lo + 1);
}

static float *host_rand(size_t n) {
  float *p = malloc(n * sizeof *p + 1);
  if (!p) abort();
  for (size_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

/* A device tensor holding host data. */
static void dev(vtl_tensor *t, int ndim, const int64_t *shape,
                const float *data) {
  CHECK(vtl_tensor_alloc(rt(), t, ndim, shape));
  if (data) CHECK(vtl_tensor_write(rt(), t, data));
}

/* A weight tensor as the loaders store it: f16 when half (hw rounded to
 * f16 in place, so that the reference computes on the stored values). */
static void dev_weight(vtl_tensor *t, int ndim, const int64_t *shape,
                       float *hw, int half) {
  if (!half) {
    dev(t, ndim, shape, hw);
    return;
  }
  CHECK(vtl_tensor_alloc_as(rt(), t, VTL_F16, ndim, shape));
  size_t n = vtl_tensor_numel(t);
  uint16_t *h = malloc(n * sizeof *h + 1);
  if (!h) abort();
  for (size_t i = 0; i < n; i++) {
    h[i] = vtl_f32_to_f16(hw[i]);
    hw[i] = vtl_f16_to_f32(h[i]);
  }
  CHECK(vtl_tensor_write(rt(), t, h));
  free(h);
}

static float *fetch(vtl_tensor *t) {
  float *p = malloc(vtl_tensor_numel(t) * sizeof *p);
  if (!p) abort();
  CHECK(vtl_tensor_read(rt(), t, p));
  return p;
}

/* 0 when every element is within tolerance; otherwise prints the worst. */
static int close_enough(const char *what, const float *got, const float *ref,
                        size_t n, double atol, double rtol) {
  size_t worst = 0, bad = 0;
  double worst_excess = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - ref[i]), lim = atol + rtol * fabs(ref[i]);
    if (!(d <= lim)) { /* NaN fails too */
      bad++;
      if (!(d - lim <= worst_excess)) {
        worst_excess = d - lim;
        worst = i;
      }
    }
  }
  if (bad == 0) return 0;
  fprintf(stderr, "%s: %zu of %zu elements off; worst [%zu]: %.9g vs %.9g "
          "(atol %g rtol %g)\n", what, bad, n, worst, got[worst], ref[worst],
          atol, rtol);
  return 1;
}

static const vtl_backend backends[] = {VTL_BACKEND_HOST, VTL_BACKEND_CL};
static const char *bname(vtl_backend b) {
  return b == VTL_BACKEND_HOST ? "host" : "cl";
}

/* ---- runtime ------------------------------------------------------------ */

TEST_IMPL(runtime_devices) {
  FILE *f = tmpfile();
  ASSERT_NOT_NULL(f);
  ASSERT_GE(vtl_cl_list(f), 1);
  fclose(f);

  vtl_cl_options o;
  vtl_cl_options_init(&o);
  o.device = "no-such-device-anywhere";
  vtl_cl *cl = NULL;
  char msg[1024];
  ASSERT_EQ(vtl_cl_init(&cl, &o, msg, sizeof msg), VTL_ENOENT);
  ASSERT_NULL(cl);
  ASSERT_CONTAINS(msg, "no OpenCL device matches \"no-such-device-anywhere\"");
  ASSERT_CONTAINS(msg, "0:0"); /* it lists what there is */
  o.device = "7:7";
  ASSERT_EQ(vtl_cl_init(&cl, &o, msg, sizeof msg), VTL_ENOENT);

  o.device = "0:0";
  o.cache_dir = "";
  o.backend = VTL_BACKEND_CL;
  ASSERT_OK(vtl_cl_init(&cl, &o, msg, sizeof msg));
  ASSERT_EQ(vtl_cl_backend(cl), VTL_BACKEND_CL);
  /* AUTO: the device type decides (PoCL is the host CPU: HOST) */
  vtl_cl_set_backend(cl, VTL_BACKEND_AUTO);
  ASSERT_EQ(vtl_cl_backend(cl),
            vtl_cl_is_host_cpu(cl) ? VTL_BACKEND_HOST : VTL_BACKEND_CL);
  ASSERT(strlen(vtl_cl_device_name(cl)) > 3);
  vtl_cl_close(cl);

  setenv("VTL_BACKEND", "cl", 1);
  o.backend = VTL_BACKEND_AUTO;
  ASSERT_OK(vtl_cl_init(&cl, &o, msg, sizeof msg));
  ASSERT_EQ(vtl_cl_backend(cl), VTL_BACKEND_CL);
  vtl_cl_close(cl);
  unsetenv("VTL_BACKEND");
  return 0;
}

TEST_IMPL(runtime_build_error) {
  /* a bad kernel comes back as VTL_EPARSE with the build log, never abort */
  cl_program p = NULL;
  int rc = vtl_cl_build(rt(), "broken",
                        "__kernel void f(__global float *x) { x[0] = y; }", "",
                        &p);
  ASSERT_EQ(rc, VTL_EPARSE);
  ASSERT_NULL(p);
  ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "building broken.cl");
  ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "CL_BUILD_PROGRAM_FAILURE");
  ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "undeclared identifier 'y'");
  return 0;
}

static int file_size(const char *dir, long *size, char *path, size_t len) {
  /* the one cache entry of "probe" in dir */
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls %s/probe-*.bin 2>/dev/null", dir);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  int ok = fgets(path, (int)len, p) != NULL;
  pclose(p);
  if (!ok) return -1;
  path[strcspn(path, "\n")] = 0;
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  *size = (long)st.st_size;
  return 0;
}

TEST_IMPL(runtime_binary_cache) {
  char dir[] = "/tmp/vtl-cache-XXXXXX";
  ASSERT_NOT_NULL(mkdtemp(dir));
  const char *src = "__kernel void probe(__global float *x) { x[0] = 1.0f; }";
  vtl_cl_options o;
  vtl_cl_options_init(&o);
  o.cache_dir = dir;
  o.profile = 0;
  int from_src, from_cache;
  char path[512];
  long size;
  for (int round = 0; round < 4; round++) {
    /* 0: built, written; 1: loaded; 2: after damage, rebuilt; 3: loaded */
    if (round == 2) { /* truncate the entry: must rebuild, not fail */
      ASSERT_OK(file_size(dir, &size, path, sizeof path));
      ASSERT_OK(truncate(path, size / 2));
    }
    if (round == 3) { /* and a flipped byte in a full-length entry */
      ASSERT_OK(file_size(dir, &size, path, sizeof path));
      FILE *f = fopen(path, "r+b");
      ASSERT_NOT_NULL(f);
      fseek(f, size - 1, SEEK_SET);
      int c = fgetc(f);
      fseek(f, size - 1, SEEK_SET);
      fputc(c ^ 0x5a, f);
      fclose(f);
    }
    vtl_cl *cl;
    char msg[256];
    ASSERT_OK(vtl_cl_init(&cl, &o, msg, sizeof msg));
    cl_program p;
    ASSERT_OK(vtl_cl_build(cl, "probe", src, "", &p));
    clReleaseProgram(p);
    vtl_cl_build_counts(cl, &from_src, &from_cache);
    vtl_cl_close(cl);
    ASSERT_EQ(from_src, round == 1 ? 0 : 1);
    ASSERT_EQ(from_cache, round == 1 ? 1 : 0);
  }
  /* the rebuilt entry is whole again */
  vtl_cl *cl;
  ASSERT_OK(vtl_cl_init(&cl, &o, NULL, 0));
  cl_program p;
  ASSERT_OK(vtl_cl_build(cl, "probe", src, "", &p));
  clReleaseProgram(p);
  vtl_cl_build_counts(cl, &from_src, &from_cache);
  vtl_cl_close(cl);
  ASSERT_EQ(from_cache, 1);
  ASSERT_OK(file_size(dir, &size, path, sizeof path));
  ASSERT_OK(unlink(path));
  ASSERT_OK(rmdir(dir));
  return 0;
}

TEST_IMPL(runtime_pool_and_views) {
  vtl_cl *cl = rt();
  size_t before = vtl_cl_bytes_in_use(cl);
  vtl_tensor a, b;
  ASSERT_OK(vtl_tensor_alloc(cl, &a, 2, VTL_SHAPE(3, 1000)));
  cl_mem first = a.buf;
  ASSERT_GT(vtl_cl_bytes_in_use(cl), before);
  vtl_tensor_release(cl, &a);
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  ASSERT_OK(vtl_tensor_alloc(cl, &b, 1, VTL_SHAPE(2900))); /* reuses it */
  ASSERT(b.buf == first);
  ASSERT_GE(vtl_cl_bytes_peak(cl), 3000 * sizeof(float));

  float data[2900];
  for (int i = 0; i < 2900; i++) data[i] = (float)i;
  ASSERT_OK(vtl_tensor_write(cl, &b, data));
  vtl_tensor v;
  ASSERT_OK(vtl_tensor_view(&v, &b, 100, 2, VTL_SHAPE(4, 5)));
  ASSERT_EQ(vtl_tensor_view(&v, &b, 2890, 2, VTL_SHAPE(4, 5)), VTL_ERANGE);
  ASSERT_OK(vtl_tensor_view(&v, &b, 100, 2, VTL_SHAPE(4, 5)));
  float got[20];
  ASSERT_OK(vtl_tensor_read(cl, &v, got));
  ASSERT_EQ(got[0], 100);
  ASSERT_EQ(got[19], 119);
  ASSERT_EQ(vtl_tensor_reshape(&v, 1, VTL_SHAPE(21)), VTL_EINVAL);
  ASSERT_OK(vtl_tensor_reshape(&v, 3, VTL_SHAPE(2, 2, 5)));
  /* an op through a view: scale the 20 elements in place */
  ASSERT_OP(cl, vtl_scale(cl, &v, &v, 2.0f));
  ASSERT_OK(vtl_tensor_read(cl, &b, data));
  ASSERT_EQ(data[99], 99);
  ASSERT_EQ(data[100], 200);
  ASSERT_EQ(data[119], 238);
  ASSERT_EQ(data[120], 120);
  vtl_tensor_release(cl, &v); /* a view: no-op */
  vtl_tensor_release(cl, &b);
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  ASSERT_EQ(vtl_tensor_alloc(cl, &a, 0, VTL_SHAPE(1)), VTL_EINVAL);
  return 0;
}

TEST_IMPL(runtime_profile) {
  vtl_cl_options o;
  vtl_cl_options_init(&o);
  o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
  o.profile = 1;
  vtl_cl *cl;
  ASSERT_OK(vtl_cl_init(&cl, &o, NULL, 0));
  vtl_cl_set_backend(cl, VTL_BACKEND_HOST);
  vtl_tensor x, w, y;
  float *hx = host_rand(64), *hw = host_rand(64);
  ASSERT_OK(vtl_tensor_alloc(cl, &x, 2, VTL_SHAPE(8, 8)));
  ASSERT_OK(vtl_tensor_alloc(cl, &w, 2, VTL_SHAPE(8, 8)));
  ASSERT_OK(vtl_tensor_alloc(cl, &y, 2, VTL_SHAPE(8, 8)));
  ASSERT_OK(vtl_tensor_write(cl, &x, hx));
  ASSERT_OK(vtl_tensor_write(cl, &w, hw));
  ASSERT_OP(cl, vtl_linear(cl, &y, &x, &w, NULL, VTL_ACT_SILU));
  ASSERT_OP(cl, vtl_scale(cl, &y, &y, 0.5f));
  ASSERT_OP(cl, vtl_activation(cl, &y, &y, VTL_ACT_GELU));
  ASSERT_OK(vtl_cl_finish(cl));
  char buf[2048] = "";
  FILE *f = tmpfile();
  ASSERT_NOT_NULL(f);
  vtl_cl_profile_print(cl, f);
  rewind(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  ASSERT_CONTAINS(buf, "bias_gelu");
  ASSERT_CONTAINS(buf, "scale");
  ASSERT_CONTAINS(buf, "sgemm (openblas)");
  vtl_tensor_release(cl, &x);
  vtl_tensor_release(cl, &w);
  vtl_tensor_release(cl, &y);
  /* close prints the table to stderr once more; that is what users see */
  vtl_cl_close(cl);
  free(hx);
  free(hw);
  return 0;
}

/* ---- GEMM family (both backends) ---------------------------------------- */

TEST_IMPL(ops_gemm) {
  static const int cases[][5] = { /* M, N, K, trans_a, trans_b */
      {1, 1, 1, 0, 0},    {3, 7, 13, 0, 0},  {13, 7, 3, 1, 0},
      {17, 5, 33, 0, 1},  {9, 31, 10, 1, 1}, {64, 65, 127, 0, 0}};
  size_t nfixed = sizeof cases / sizeof cases[0];
  for (size_t b = 0; b < 2; b++) {
    vtl_cl_set_backend(rt(), backends[b]);
    for (size_t c = 0; c < nfixed + 4; c++) { /* then 4 random shapes */
      int M = c < nfixed ? cases[c][0] : irand(1, 70),
          N = c < nfixed ? cases[c][1] : irand(1, 70),
          K = c < nfixed ? cases[c][2] : irand(1, 70),
          ta = c < nfixed ? cases[c][3] : irand(0, 1),
          tb = c < nfixed ? cases[c][4] : irand(0, 1);
      float *ha = host_rand((size_t)M * K), *hb = host_rand((size_t)K * N),
            *hc = host_rand((size_t)M * N);
      vtl_tensor A, B, C;
      dev(&A, 2, ta ? VTL_SHAPE(K, M) : VTL_SHAPE(M, K), ha);
      dev(&B, 2, tb ? VTL_SHAPE(N, K) : VTL_SHAPE(K, N), hb);
      dev(&C, 2, VTL_SHAPE(M, N), hc);
      float alpha = 0.75f, beta = c % 2 ? 0.5f : 0.0f;
      ASSERT_OP(rt(), vtl_gemm(rt(), &C, &A, &B, ta, tb, alpha, beta));
      float *got = fetch(&C);
      vtl_gemm_ref(hc, ha, hb, M, N, K, ta, tb, alpha, beta);
      char what[96];
      snprintf(what, sizeof what, "gemm %s %dx%dx%d t%d%d", bname(backends[b]),
               M, N, K, ta, tb);
      ASSERT_OK(close_enough(what, got, hc, (size_t)M * N, 1e-4, 1e-4));
      free(got), free(ha), free(hb), free(hc);
      vtl_tensor_release(rt(), &A);
      vtl_tensor_release(rt(), &B);
      vtl_tensor_release(rt(), &C);
    }
    /* mismatched shapes are refused with a message */
    vtl_tensor A, B, C;
    dev(&A, 2, VTL_SHAPE(3, 4), NULL);
    dev(&B, 2, VTL_SHAPE(5, 6), NULL);
    dev(&C, 2, VTL_SHAPE(3, 6), NULL);
    ASSERT_EQ(vtl_gemm(rt(), &C, &A, &B, 0, 0, 1, 0), VTL_EINVAL);
    ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "gemm: op(a) [3, 4] x op(b) [5, 6]");
    vtl_tensor_release(rt(), &A);
    vtl_tensor_release(rt(), &B);
    vtl_tensor_release(rt(), &C);
  }
  vtl_cl_set_backend(rt(), VTL_BACKEND_AUTO);
  return 0;
}

TEST_IMPL(ops_linear) {
  static const int cases[][5] = { /* B, T, Ei, Eo, act */
      {1, 1, 5, 3, VTL_ACT_NONE},   {2, 7, 13, 6, VTL_ACT_GELU},
      {1, 77, 32, 40, VTL_ACT_QUICK_GELU}, {3, 5, 9, 17, VTL_ACT_SILU}};
  for (size_t b = 0; b < 2; b++) {
    vtl_cl_set_backend(rt(), backends[b]);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      int B = cases[c][0], T = cases[c][1], Ei = cases[c][2], Eo = cases[c][3];
      vtl_act act = (vtl_act)cases[c][4];
      int with_bias = c != 2, half = c % 2; /* f16 weights: cases 1, 3 */
      int has_r = c != 3; /* vtl_linear_res, with and without activation */
      size_t ny = (size_t)B * T * Eo;
      float *hx = host_rand((size_t)B * T * Ei), *hw = host_rand((size_t)Eo * Ei),
            *hb = host_rand((size_t)Eo), *hr = host_rand(ny),
            *ref = host_rand(ny);
      vtl_tensor x, w, bias, res, y;
      dev(&x, 3, VTL_SHAPE(B, T, Ei), hx);
      dev_weight(&w, 2, VTL_SHAPE(Eo, Ei), hw, half);
      dev(&bias, 1, VTL_SHAPE(Eo), hb);
      dev(&res, 3, VTL_SHAPE(B, T, Eo), hr);
      dev(&y, 3, VTL_SHAPE(B, T, Eo), NULL);
      if (has_r)
        ASSERT_OP(rt(), vtl_linear_res(rt(), &y, &x, &w,
                                       with_bias ? &bias : NULL, &res, act));
      else
        ASSERT_OP(rt(), vtl_linear(rt(), &y, &x, &w, with_bias ? &bias : NULL, act));
      float *got = fetch(&y);
      vtl_linear_ref(ref, hx, hw, with_bias ? hb : NULL, has_r ? hr : NULL,
                     B * T, Ei, Eo, act);
      char what[96];
      snprintf(what, sizeof what, "linear %s [%d,%d,%d]->%d act %d res %d w %s",
               bname(backends[b]), B, T, Ei, Eo, act, has_r,
               half ? "f16" : "f32");
      ASSERT_OK(close_enough(what, got, ref, ny, 1e-4, 1e-4));
      free(got), free(hx), free(hw), free(hb), free(hr), free(ref);
      vtl_tensor_release(rt(), &x);
      vtl_tensor_release(rt(), &w);
      vtl_tensor_release(rt(), &bias);
      vtl_tensor_release(rt(), &res);
      vtl_tensor_release(rt(), &y);
    }
  }
  vtl_cl_set_backend(rt(), VTL_BACKEND_AUTO);
  return 0;
}

TEST_IMPL(ops_conv2d) {
  /* N, Ci, H, W, Co, KH, KW, stride, pad_t, pad_l, OH, OW, act, bias */
  static const int cases[][14] = {
      {1, 3, 7, 13, 5, 3, 3, 1, 1, 1, 7, 13, VTL_ACT_NONE, 1},  /* SD 3x3 */
      {2, 6, 9, 11, 7, 3, 3, 2, 1, 1, 5, 6, VTL_ACT_SILU, 1},   /* stride 2 */
      {2, 10, 5, 7, 3, 1, 1, 1, 0, 0, 5, 7, VTL_ACT_RELU, 1},   /* 1x1 */
      {1, 5, 8, 10, 4, 3, 3, 2, 0, 0, 4, 5, VTL_ACT_NONE, 1},   /* VAE down */
      {1, 3, 8, 6, 2, 5, 3, 1, 2, 1, 8, 6, VTL_ACT_GELU, 0},    /* 5x3 */
      {1, 2, 4, 4, 3, 4, 4, 4, 0, 0, 1, 1, VTL_ACT_NONE, 1},    /* patchify */
      {2, 3, 7, 13, 5, 3, 3, 1, 1, 1, 7, 13, VTL_ACT_SILU, 1},  /* chunked */
  };
  size_t chunk = vtl__conv_col_chunk, wchunk = vtl__conv_wino_chunk,
         nfixed = sizeof cases / sizeof cases[0];
  /* each case as the rule picks, then forced to each path (VTL_CONV only
   * changes the 3x3 stride-1 pad-1 cases; ops.h) */
  static const char *const modes[] = {NULL, "im2col", "winograd"};
  for (size_t b = 0; b < 2 * 3; b++) {
    vtl_cl_set_backend(rt(), backends[b % 2]);
    if (modes[b / 2]) CHECK(setenv("VTL_CONV", modes[b / 2], 1));
    else CHECK(unsetenv("VTL_CONV"));
    for (size_t c = 0; c < nfixed + 4; c++) { /* then 4 random shapes */
      int r[14];
      if (c >= nfixed) { /* symmetric padding, as vtl_conv2d */
        r[0] = irand(1, 2), r[1] = irand(1, 9), r[2] = irand(1, 15),
        r[3] = irand(1, 15), r[4] = irand(1, 9), r[5] = r[6] = irand(0, 1) * 2 + 1,
        r[7] = irand(1, 2), r[8] = r[9] = irand(0, r[5] - 1);
        r[10] = (r[2] + 2 * r[8] - r[5]) / r[7] + 1;
        r[11] = (r[3] + 2 * r[9] - r[6]) / r[7] + 1;
        r[12] = irand(0, 4), r[13] = irand(0, 1);
        if (r[10] < 1 || r[11] < 1) continue;
      }
      const int *k = c < nfixed ? cases[c] : r;
      int N = k[0], Ci = k[1], H = k[2], W = k[3], Co = k[4], KH = k[5],
          KW = k[6], s = k[7], pt = k[8], pl = k[9], OH = k[10], OW = k[11];
      vtl_act act = (vtl_act)k[12];
      /* the last case: 27*10 floats of scratch = 10 of 91 pixels a chunk;
       * Winograd: 16*(3+5)*7 floats a tile row, one row a chunk */
      vtl__conv_col_chunk = c == 6 ? 270 : chunk;
      vtl__conv_wino_chunk = c == 6 ? 1000 : wchunk;
      size_t nx = (size_t)N * Ci * H * W, nw = (size_t)Co * Ci * KH * KW,
             ny = (size_t)N * Co * OH * OW;
      float *hx = host_rand(nx), *hw = host_rand(nw), *hb = host_rand(Co),
            *hr = host_rand(ny), *ref = malloc(ny * sizeof *ref);
      vtl_tensor x, w, bias, res, y;
      dev(&x, 4, VTL_SHAPE(N, Ci, H, W), hx);
      int half = c % 2 == 0; /* f16 weights: 3x3, 1x1 direct, chunked ... */
      dev_weight(&w, 4, VTL_SHAPE(Co, Ci, KH, KW), hw, half);
      dev(&bias, 1, VTL_SHAPE(Co), hb);
      dev(&res, 4, VTL_SHAPE(N, Co, OH, OW), hr);
      dev(&y, 4, VTL_SHAPE(N, Co, OH, OW), NULL);
      /* the random shapes: the public symmetric form, every other one with
       * a residual (vtl_conv2d_res) */
      int has_r = c >= nfixed && c % 2 == 1;
      if (c >= nfixed)
        ASSERT_OP(rt(), vtl_conv2d_res(rt(), &y, &x, &w, k[13] ? &bias : NULL,
                                       has_r ? &res : NULL, s, pt, act));
      else
        ASSERT_OP(rt(), vtl_conv2d_ex(rt(), &y, &x, &w, k[13] ? &bias : NULL, s, pt,
                                pl, act));
      float *got = fetch(&y);
      vtl_conv2d_ref(ref, hx, hw, k[13] ? hb : NULL, has_r ? hr : NULL, N, Ci,
                     H, W, Co, KH, KW, s, pt, pl, OH, OW, act);
      char what[96];
      snprintf(what, sizeof what, "conv2d %s %s case %zu w %s res %d",
               bname(backends[b % 2]), modes[b / 2] ? modes[b / 2] : "auto",
               c, half ? "f16" : "f32", has_r);
      ASSERT_OK(close_enough(what, got, ref, ny, 1e-4, 1e-4));
      free(got), free(hx), free(hw), free(hb), free(hr), free(ref);
      vtl_tensor_release(rt(), &x);
      vtl_tensor_release(rt(), &w);
      vtl_tensor_release(rt(), &bias);
      vtl_tensor_release(rt(), &res);
      vtl_tensor_release(rt(), &y);
    }
  }
  vtl__conv_col_chunk = chunk;
  vtl__conv_wino_chunk = wchunk;
  CHECK(unsetenv("VTL_CONV"));
  /* the symmetric form checks y's size */
  vtl_tensor x, w, y;
  dev(&x, 4, VTL_SHAPE(1, 3, 8, 8), NULL);
  dev(&w, 4, VTL_SHAPE(4, 3, 3, 3), NULL);
  dev(&y, 4, VTL_SHAPE(1, 4, 7, 8), NULL);
  ASSERT_EQ(vtl_conv2d(rt(), &y, &x, &w, NULL, 1, 1, VTL_ACT_NONE), VTL_EINVAL);
  ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "conv2d: y is 7x8, stride 1 pad 1 gives 8x8");
  vtl_tensor_release(rt(), &x);
  vtl_tensor_release(rt(), &w);
  vtl_tensor_release(rt(), &y);
  vtl_cl_set_backend(rt(), VTL_BACKEND_AUTO);
  return 0;
}

/* Winograd F(2x2, 3x3) (op_winograd.c), forced, against the direct
 * reference: random N (1-2), channels 1-70 (multiples of nothing), sides
 * 1-19 (odd ones: the half tiles), every activation, with and without bias
 * and residual (vtl_conv2d_res), f32 and f16 weights, scratch chunks of one
 * tile row or all, both backends.
 * Tolerance: Winograd sums, per output, Ci products |U V| <= 9 (|V| <= 4,
 * |U| <= 9/4 for |x|, |g| <= 1) in each of 9 transformed sums that the
 * output transform adds: with u = 2^-24, the worst case 81 Ci^2 u (2e-2 at
 * Ci = 70) is far too loose to test with, the random-walk estimate
 * 81 sqrt(Ci) u (4e-5 at Ci = 70) is what the errors follow. 3e-4 absolute
 * + 1e-4 relative is 7x that estimate; the largest error over these cases
 * is printed (1e-5 when measured). f16 weights: the reference computes on
 * the rounded values, as in ops_conv2d. */
TEST_IMPL(ops_conv2d_winograd) {
  size_t wchunk = vtl__conv_wino_chunk;
  CHECK(setenv("VTL_CONV", "winograd", 1));
  double worst = 0;
  for (int c = 0; c < 24; c++) {
    vtl_cl_set_backend(rt(), backends[c % 2]);
    int N = irand(1, 2), Ci = irand(1, 70), Co = irand(1, 70),
        H = irand(1, 19), W = irand(1, 19), half = c % 3 == 0,
        has_b = c % 4 != 1, has_r = c % 3 != 2;
    vtl_act act = (vtl_act)(c % 5);
    if (c < 2) N = 2, H = 9, W = 13; /* odd sides, two images, fixed */
    vtl__conv_wino_chunk = c % 4 == 2 ? 1 : wchunk; /* one tile row a chunk */
    size_t nx = (size_t)N * Ci * H * W, nw = (size_t)Co * Ci * 9,
           ny = (size_t)N * Co * H * W;
    float *hx = host_rand(nx), *hw = host_rand(nw), *hb = host_rand(Co),
          *hr = host_rand(ny), *ref = malloc(ny * sizeof *ref);
    vtl_tensor x, w, bias, res, y;
    dev(&x, 4, VTL_SHAPE(N, Ci, H, W), hx);
    dev_weight(&w, 4, VTL_SHAPE(Co, Ci, 3, 3), hw, half);
    dev(&bias, 1, VTL_SHAPE(Co), hb);
    dev(&res, 4, VTL_SHAPE(N, Co, H, W), hr);
    dev(&y, 4, VTL_SHAPE(N, Co, H, W), NULL);
    ASSERT_OP(rt(), vtl_conv2d_res(rt(), &y, &x, &w, has_b ? &bias : NULL,
                                   has_r ? &res : NULL, 1, 1, act));
    float *got = fetch(&y);
    vtl_conv2d_ref(ref, hx, hw, has_b ? hb : NULL, has_r ? hr : NULL, N, Ci,
                   H, W, Co, 3, 3, 1, 1, 1, H, W, act);
    for (size_t i = 0; i < ny; i++)
      if (fabs((double)got[i] - ref[i]) > worst)
        worst = fabs((double)got[i] - ref[i]);
    char what[128];
    snprintf(what, sizeof what, "winograd %s N %d Ci %d Co %d %dx%d act %d "
             "bias %d res %d w %s", bname(backends[c % 2]), N, Ci, Co, H, W,
             (int)act, has_b, has_r, half ? "f16" : "f32");
    ASSERT_OK(close_enough(what, got, ref, ny, 3e-4, 1e-4));
    free(got), free(hx), free(hw), free(hb), free(hr), free(ref);
    vtl_tensor_release(rt(), &x);
    vtl_tensor_release(rt(), &w);
    vtl_tensor_release(rt(), &bias);
    vtl_tensor_release(rt(), &res);
    vtl_tensor_release(rt(), &y);
  }
  fprintf(stderr, "winograd: largest |got - ref| %.3g\n", worst);
  vtl__conv_wino_chunk = wchunk;
  CHECK(unsetenv("VTL_CONV"));
  vtl_cl_set_backend(rt(), VTL_BACKEND_AUTO);
  return 0;
}

/* ---- f16 weights (runtime.h "Weight storage") --------------------------- */

TEST_IMPL(ops_gemm_f16) {
  /* either operand f16 (widened to f32 scratch), both backends, against
   * the reference on the rounded values: the f32 tolerance holds */
  for (size_t b = 0; b < 2; b++) {
    vtl_cl_set_backend(rt(), backends[b]);
    for (int which = 1; which <= 3; which++) { /* 1: a, 2: b, 3: both */
      int M = 9, N = 14, K = 23;
      float *ha = host_rand((size_t)M * K), *hb = host_rand((size_t)N * K),
            *ref = malloc((size_t)M * N * sizeof *ref);
      vtl_tensor A, B, C;
      dev_weight(&A, 2, VTL_SHAPE(M, K), ha, which & 1);
      dev_weight(&B, 2, VTL_SHAPE(N, K), hb, which & 2);
      dev(&C, 2, VTL_SHAPE(M, N), NULL);
      ASSERT_OP(rt(), vtl_gemm(rt(), &C, &A, &B, 0, 1, 0.5f, 0.0f));
      float *got = fetch(&C);
      vtl_gemm_ref(ref, ha, hb, M, N, K, 0, 1, 0.5f, 0.0f);
      char what[64];
      snprintf(what, sizeof what, "gemm %s f16 operands %d", bname(backends[b]),
               which);
      ASSERT_OK(close_enough(what, got, ref, (size_t)M * N, 1e-5, 1e-5));
      if (which & 1) /* an f16 output is refused: C [M, N] x B -> A [M, K] */
        ASSERT_EQ(vtl_gemm(rt(), &A, &C, &B, 0, 0, 1.0f, 0.0f), VTL_EINVAL);
      free(got), free(ha), free(hb), free(ref);
      vtl_tensor_release(rt(), &A);
      vtl_tensor_release(rt(), &B);
      vtl_tensor_release(rt(), &C);
    }
  }
  vtl_cl_set_backend(rt(), VTL_BACKEND_AUTO);
  return 0;
}

TEST_IMPL(f16_rounding) {
  /* every half survives f16 -> f32 -> f16 (NaNs stay NaNs) */
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = vtl_f16_to_f32((uint16_t)h);
    uint16_t back = vtl_f32_to_f16(f);
    if (f != f) ASSERT(vtl_f16_to_f32(back) != vtl_f16_to_f32(back));
    else ASSERT_EQ(back, h);
  }
  /* ties to even, overflow, underflow */
  ASSERT_EQ(vtl_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);         /* tie: even */
  ASSERT_EQ(vtl_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);     /* tie: up */
  ASSERT_EQ(vtl_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  ASSERT_EQ(vtl_f32_to_f16(65504.0f), 0x7bff);
  ASSERT_EQ(vtl_f32_to_f16(65520.0f), 0x7c00); /* rounds past the top */
  ASSERT_EQ(vtl_f32_to_f16(-1e10f), 0xfc00);
  ASSERT_EQ(vtl_f32_to_f16(0x1p-25f), 0x0000);  /* tie with 0: even */
  ASSERT_EQ(vtl_f32_to_f16(0x1.8p-25f), 0x0001);
  ASSERT_EQ(vtl_f32_to_f16(-0x1p-14f), 0x8400); /* least normal */
  return 0;
}

TEST_IMPL(runtime_weights_choice) {
  /* the default here (PoCL, host backend, no cl_khr_fp16) is f32 */
  if (getenv("VTL_WEIGHTS")) return 0; /* someone forced it: not the default */
  vtl_cl *cl = rt();
  if (vtl_cl_backend(cl) == VTL_BACKEND_HOST || !vtl_cl_has_fp16(cl)) {
    ASSERT_EQ(vtl_cl_weights(cl), VTL_WEIGHTS_F32);
    ASSERT_STR_EQ(vtl_cl_weights_name(cl), "f32");
  } else {
    ASSERT_EQ(vtl_cl_weights(cl), VTL_WEIGHTS_F16);
  }
  /* forced by the options field, on any device */
  vtl_cl_options o;
  vtl_cl_options_init(&o);
  o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
  o.profile = 0;
  o.weights = VTL_WEIGHTS_F16;
  vtl_cl *forced;
  char msg[256];
  ASSERT_EQ(vtl_cl_init(&forced, &o, msg, sizeof msg), 0);
  ASSERT_EQ(vtl_cl_weights(forced), VTL_WEIGHTS_F16);
  ASSERT_STR_EQ(vtl_cl_weights_name(forced), "f16");
  vtl_cl_close(forced);
  /* and by the environment */
  setenv("VTL_WEIGHTS", "f16", 1);
  vtl_cl_options_init(&o);
  o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
  o.profile = 0;
  ASSERT_EQ(vtl_cl_init(&forced, &o, msg, sizeof msg), 0);
  unsetenv("VTL_WEIGHTS");
  ASSERT_EQ(vtl_cl_weights(forced), VTL_WEIGHTS_F16);
  vtl_cl_close(forced);
  return 0;
}

/* ---- attention (both backends) ------------------------------------------ */

TEST_IMPL(ops_attention) {
  static const int cases[][6] = { /* B, Tq, Tk, H, D, causal */
      {1, 1, 1, 1, 4, 0},    {2, 13, 13, 3, 8, 0},  /* self */
      {2, 37, 7, 2, 40, 0},                        /* cross, odd Tk */
      {1, 17, 17, 4, 5, 1},                        /* CLIP's causal mask */
      {1, 40, 40, 2, 6, 1},                        /* causal, chunked */
      {1, 5, 9, 1, 260, 0},                        /* D > fused MAXD */
  };
  size_t chunk = vtl__attention_score_chunk, nfixed = sizeof cases / sizeof cases[0];
  for (size_t b = 0; b < 2; b++) {
    vtl_cl_set_backend(rt(), backends[b]);
    for (size_t c = 0; c < nfixed + 3; c++) { /* then 3 random shapes */
      int r[6] = {irand(1, 2), irand(1, 40), irand(1, 40), irand(1, 4),
                  irand(1, 33), irand(0, 1)};
      if (r[5]) r[2] = r[1];
      const int *cs = c < nfixed ? cases[c] : r;
      int B = cs[0], Tq = cs[1], Tk = cs[2], H = cs[3], D = cs[4],
          causal = cs[5], C = H * D;
      /* case 4: 2 heads x 40 keys x 7 queries a chunk: 6 chunks */
      vtl__attention_score_chunk = c == 4 ? 2 * 40 * 7 : chunk;
      float *hq = host_rand((size_t)B * Tq * C), *hk = host_rand((size_t)B * Tk * C),
            *hv = host_rand((size_t)B * Tk * C),
            *ref = malloc((size_t)B * Tq * C * sizeof *ref);
      for (size_t i = 0; i < (size_t)B * Tq * C; i++) hq[i] *= 3; /* peakier */
      vtl_tensor q, k, v, o;
      dev(&q, 3, VTL_SHAPE(B, Tq, C), hq);
      dev(&k, 3, VTL_SHAPE(B, Tk, C), hk);
      dev(&v, 3, VTL_SHAPE(B, Tk, C), hv);
      dev(&o, 3, VTL_SHAPE(B, Tq, C), NULL);
      ASSERT_OP(rt(), vtl_attention(rt(), &o, &q, &k, &v, H, causal));
      float *got = fetch(&o);
      vtl_attention_ref(ref, hq, hk, hv, B, Tq, Tk, H, D, causal);
      char what[96];
      snprintf(what, sizeof what, "attention %s case %zu", bname(backends[b]), c);
      ASSERT_OK(close_enough(what, got, ref, (size_t)B * Tq * C, 1e-4, 1e-4));
      free(got), free(hq), free(hk), free(hv), free(ref);
      vtl_tensor_release(rt(), &q);
      vtl_tensor_release(rt(), &k);
      vtl_tensor_release(rt(), &v);
      vtl_tensor_release(rt(), &o);
    }
  }
  vtl__attention_score_chunk = chunk;
  vtl_tensor q, o;
  dev(&q, 3, VTL_SHAPE(1, 4, 10), NULL);
  dev(&o, 3, VTL_SHAPE(1, 4, 10), NULL);
  ASSERT_EQ(vtl_attention(rt(), &o, &q, &q, &q, 3, 0), VTL_EINVAL);
  ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "3 heads do not divide 10 channels");
  vtl_tensor_release(rt(), &q);
  vtl_tensor_release(rt(), &o);
  vtl_cl_set_backend(rt(), VTL_BACKEND_AUTO);
  return 0;
}

/* ---- normalisation ------------------------------------------------------- */

TEST_IMPL(ops_group_norm) {
  static const int cases[][6] = { /* N, C, H, W, G, silu */
      {1, 4, 1, 1, 2, 0},  {2, 12, 7, 5, 3, 1}, {1, 6, 3, 7, 6, 0},
      {2, 10, 13, 3, 1, 1}, {1, 64, 32, 20, 32, 1}};
  size_t nfixed = sizeof cases / sizeof cases[0];
  for (size_t c = 0; c < nfixed + 3; c++) { /* then 3 random shapes */
    int r[6] = {irand(1, 3), 0, irand(1, 17), irand(1, 17), irand(1, 8),
                irand(0, 1)};
    r[1] = r[4] * irand(1, 5); /* groups divide channels */
    const int *cs = c < nfixed ? cases[c] : r;
    int N = cs[0], C = cs[1], H = cs[2], W = cs[3], G = cs[4], silu = cs[5];
    size_t n = (size_t)N * C * H * W;
    float *hx = host_rand(n), *hg = host_rand(C), *hb = host_rand(C),
          *ref = malloc(n * sizeof *ref);
    if (c == 3) /* a large mean: the two-pass variance must hold */
      for (size_t i = 0; i < n; i++) hx[i] += 100.0f;
    vtl_tensor x, g, b, y;
    dev(&x, 4, VTL_SHAPE(N, C, H, W), hx);
    dev(&g, 1, VTL_SHAPE(C), hg);
    dev(&b, 1, VTL_SHAPE(C), hb);
    dev(&y, 4, VTL_SHAPE(N, C, H, W), NULL);
    ASSERT_OP(rt(), vtl_group_norm(rt(), &y, &x, &g, &b, G, 1e-5f, silu));
    float *got = fetch(&y);
    vtl_group_norm_ref(ref, hx, hg, hb, N, C, H * W, G, 1e-5f, silu);
    char what[64];
    snprintf(what, sizeof what, "group_norm case %zu", c);
    ASSERT_OK(close_enough(what, got, ref, n, 1e-4, 1e-4));
    /* in place gives the same */
    ASSERT_OP(rt(), vtl_group_norm(rt(), &x, &x, &g, &b, G, 1e-5f, silu));
    free(got);
    got = fetch(&x);
    ASSERT_OK(close_enough(what, got, ref, n, 1e-4, 1e-4));
    free(got), free(hx), free(hg), free(hb), free(ref);
    vtl_tensor_release(rt(), &x);
    vtl_tensor_release(rt(), &g);
    vtl_tensor_release(rt(), &b);
    vtl_tensor_release(rt(), &y);
  }
  vtl_tensor x, g;
  dev(&x, 4, VTL_SHAPE(1, 6, 2, 2), NULL);
  dev(&g, 1, VTL_SHAPE(6), NULL);
  ASSERT_EQ(vtl_group_norm(rt(), &x, &x, &g, &g, 4, 1e-5f, 0), VTL_EINVAL);
  ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "4 groups do not divide 6 channels");
  vtl_tensor_release(rt(), &x);
  vtl_tensor_release(rt(), &g);
  return 0;
}

TEST_IMPL(ops_layer_norm) {
  static const int cases[][2] = {{1, 1}, {7, 37}, {3, 768}, {77, 64}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int R = cases[c][0], E = cases[c][1];
    size_t n = (size_t)R * E;
    float *hx = host_rand(n), *hg = host_rand(E), *hb = host_rand(E),
          *ref = malloc(n * sizeof *ref);
    vtl_tensor x, g, b, y;
    dev(&x, 2, VTL_SHAPE(R, E), hx);
    dev(&g, 1, VTL_SHAPE(E), hg);
    dev(&b, 1, VTL_SHAPE(E), hb);
    dev(&y, 2, VTL_SHAPE(R, E), NULL);
    ASSERT_OP(rt(), vtl_layer_norm(rt(), &y, &x, &g, &b, 1e-5f));
    float *got = fetch(&y);
    vtl_layer_norm_ref(ref, hx, hg, hb, R, E, 1e-5f);
    char what[64];
    snprintf(what, sizeof what, "layer_norm %dx%d", R, E);
    ASSERT_OK(close_enough(what, got, ref, n, 1e-4, 1e-4));
    free(got), free(hx), free(hg), free(hb), free(ref);
    vtl_tensor_release(rt(), &x);
    vtl_tensor_release(rt(), &g);
    vtl_tensor_release(rt(), &b);
    vtl_tensor_release(rt(), &y);
  }
  return 0;
}

/* ---- elementwise ----------------------------------------------------------- */

TEST_IMPL(ops_activations) {
  size_t n = 3 * 7 * 13;
  float *hx = host_rand(n), *ref = malloc(n * sizeof *ref);
  for (size_t i = 0; i < n; i++) hx[i] *= 6; /* both tails */
  vtl_tensor x, y;
  dev(&x, 3, VTL_SHAPE(3, 7, 13), hx);
  dev(&y, 3, VTL_SHAPE(3, 7, 13), NULL);
  static const vtl_act acts[] = {VTL_ACT_GELU, VTL_ACT_QUICK_GELU, VTL_ACT_SILU,
                                 VTL_ACT_RELU};
  for (int a = 0; a < 4; a++) {
    ASSERT_OP(rt(), vtl_activation(rt(), &y, &x, acts[a]));
    float *got = fetch(&y);
    vtl_activation_ref(ref, hx, n, acts[a]);
    ASSERT_OK(close_enough("activation", got, ref, n, 1e-5, 1e-5));
    free(got);
  }
  ASSERT_OP(rt(), vtl_gelu(rt(), &x, &x)); /* in place */
  float *got = fetch(&x);
  vtl_activation_ref(ref, hx, n, VTL_ACT_GELU);
  ASSERT_OK(close_enough("gelu in place", got, ref, n, 1e-5, 1e-5));
  free(got), free(hx), free(ref);
  vtl_tensor_release(rt(), &x);
  vtl_tensor_release(rt(), &y);

  /* GEGLU: [2, 5, 2*11] -> [2, 5, 11] */
  hx = host_rand(2 * 5 * 22);
  ref = malloc(2 * 5 * 11 * sizeof *ref);
  dev(&x, 3, VTL_SHAPE(2, 5, 22), hx);
  dev(&y, 3, VTL_SHAPE(2, 5, 11), NULL);
  ASSERT_OP(rt(), vtl_geglu(rt(), &y, &x));
  got = fetch(&y);
  vtl_geglu_ref(ref, hx, 10, 11);
  ASSERT_OK(close_enough("geglu", got, ref, 110, 1e-5, 1e-5));
  ASSERT_EQ(vtl_geglu(rt(), &x, &x), VTL_EINVAL);
  free(got), free(hx), free(ref);
  vtl_tensor_release(rt(), &x);
  vtl_tensor_release(rt(), &y);
  return 0;
}

TEST_IMPL(ops_resize_concat) {
  int N = 2, C = 3, H = 7, W = 13;
  size_t n = (size_t)N * C * H * W;
  float *hx = host_rand(n), *ref = malloc(4 * n * sizeof *ref);
  vtl_tensor x, y;
  dev(&x, 4, VTL_SHAPE(N, C, H, W), hx);
  dev(&y, 4, VTL_SHAPE(N, C, 2 * H, 2 * W), NULL);
  ASSERT_OP(rt(), vtl_upsample2x(rt(), &y, &x));
  float *got = fetch(&y);
  vtl_upsample2x_ref(ref, hx, N * C, H, W);
  ASSERT_OK(close_enough("upsample2x", got, ref, 4 * n, 0, 0));
  free(got);
  ASSERT_EQ(vtl_upsample2x(rt(), &x, &y), VTL_EINVAL);
  vtl_tensor_release(rt(), &y);

  /* concat [2, 3, 7, 13] with [2, 5, 7, 13] */
  float *hb = host_rand((size_t)N * 5 * H * W);
  vtl_tensor b;
  dev(&b, 4, VTL_SHAPE(N, 5, H, W), hb);
  dev(&y, 4, VTL_SHAPE(N, 8, H, W), NULL);
  ASSERT_OP(rt(), vtl_concat_channels(rt(), &y, &x, &b));
  got = fetch(&y);
  float *cref = malloc((size_t)N * 8 * H * W * sizeof *cref);
  vtl_concat_ref(cref, hx, hb, N, C * H * W, 5 * H * W);
  ASSERT_OK(close_enough("concat", got, cref, (size_t)N * 8 * H * W, 0, 0));
  ASSERT_EQ(vtl_concat_channels(rt(), &y, &x, &x), VTL_EINVAL);
  free(got), free(hx), free(hb), free(ref), free(cref);
  vtl_tensor_release(rt(), &x);
  vtl_tensor_release(rt(), &b);
  vtl_tensor_release(rt(), &y);
  return 0;
}

TEST_IMPL(ops_add_mul_scale) {
  int N = 2, C = 5, H = 3, W = 7;
  size_t n = (size_t)N * C * H * W;
  float *ha = host_rand(n), *hb = host_rand(n), *ref = malloc(n * sizeof *ref);
  vtl_tensor a, b, y;
  dev(&a, 4, VTL_SHAPE(N, C, H, W), ha);
  dev(&y, 4, VTL_SHAPE(N, C, H, W), NULL);
  /* b shapes: same, per channel, per (image, channel), per column */
  static const int64_t bshapes[][4] = {
      {2, 5, 3, 7}, {1, 5, 1, 1}, {2, 5, 1, 1}, {1, 1, 1, 7}};
  static const size_t inner[] = {1, 21, 21, 1};
  for (int s = 0; s < 4; s++) {
    size_t nb = (size_t)(bshapes[s][0] * bshapes[s][1] * bshapes[s][2] *
                         bshapes[s][3]);
    dev(&b, 4, bshapes[s], hb);
    ASSERT_OP(rt(), vtl_add(rt(), &y, &a, &b));
    float *got = fetch(&y);
    vtl_add_ref(ref, ha, hb, n, inner[s], nb);
    ASSERT_OK(close_enough("add", got, ref, n, 0, 0));
    free(got);
    ASSERT_OP(rt(), vtl_mul(rt(), &y, &a, &b));
    got = fetch(&y);
    vtl_mul_ref(ref, ha, hb, n, inner[s], nb);
    ASSERT_OK(close_enough("mul", got, ref, n, 0, 0));
    free(got);
    vtl_tensor_release(rt(), &b);
  }
  dev(&b, 4, VTL_SHAPE(2, 1, 3, 1), hb); /* not one run of dims */
  ASSERT_EQ(vtl_add(rt(), &y, &a, &b), VTL_EINVAL);
  ASSERT_CONTAINS(vtl_cl_errmsg(rt()), "does not broadcast");
  vtl_tensor_release(rt(), &b);
  ASSERT_OP(rt(), vtl_scale(rt(), &y, &a, -0.3f));
  float *got = fetch(&y);
  vtl_scale_ref(ref, ha, n, -0.3f);
  ASSERT_OK(close_enough("scale", got, ref, n, 0, 0));
  free(got), free(ha), free(hb), free(ref);
  vtl_tensor_release(rt(), &a);
  vtl_tensor_release(rt(), &y);
  return 0;
}

/* A resnet's time scale and shift, odd sizes, SiLU and none, in place. */
TEST_IMPL(ops_scale_shift_act) {
  int N = 2, C = 5, H = 3, W = 7;
  size_t n = (size_t)N * C * H * W;
  float *hx = host_rand(n), *ht = host_rand((size_t)N * 2 * C), *ref = malloc(n * sizeof *ref);
  vtl_tensor x, t, y;
  dev(&x, 4, VTL_SHAPE(N, C, H, W), hx);
  dev(&t, 2, VTL_SHAPE(N, 2 * C), ht);
  dev(&y, 4, VTL_SHAPE(N, C, H, W), NULL);
  static const vtl_act acts[] = {VTL_ACT_SILU, VTL_ACT_NONE};
  for (int a = 0; a < 2; a++) {
    ASSERT_OP(rt(), vtl_scale_shift_act(rt(), &y, &x, &t, acts[a]));
    float *got = fetch(&y);
    vtl_scale_shift_act_ref(ref, hx, ht, N, C, H * W, acts[a]);
    ASSERT_OK(close_enough("scale_shift_act", got, ref, n, 1e-6, 1e-6));
    free(got);
  }
  ASSERT_OP(rt(), vtl_scale_shift_act(rt(), &x, &x, &t, VTL_ACT_SILU));
  float *got = fetch(&x);
  vtl_scale_shift_act_ref(ref, hx, ht, N, C, H * W, VTL_ACT_SILU);
  ASSERT_OK(close_enough("scale_shift_act in place", got, ref, n, 1e-6, 1e-6));
  /* the reference itself: x = 0 gives act(shift), t = 0 gives act(x) */
  float one[4] = {2, 0, 0, 3}, out[2];
  vtl_scale_shift_act_ref(out, one, (float[]){0.5f, -1}, 1, 1, 2, VTL_ACT_NONE);
  ASSERT_NEAR(out[0], 2 * 1.5f - 1, 0);
  ASSERT_NEAR(out[1], -1, 0);
  ASSERT_EQ(vtl_scale_shift_act(rt(), &y, &x, &x, VTL_ACT_SILU), VTL_EINVAL);
  free(got), free(hx), free(ht), free(ref);
  vtl_tensor_release(rt(), &x);
  vtl_tensor_release(rt(), &t);
  vtl_tensor_release(rt(), &y);
  return 0;
}

TEST_IMPL(ops_timestep_embedding) {
  static const float ts[] = {0, 1, 999, 500.5f, 37};
  static const int cases[][3] = { /* dim, flip, shift */
      {320, 1, 0}, {7, 0, 1}, {2, 1, 0}, {33, 0, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int dim = cases[c][0], N = 5;
    vtl_tensor t, y;
    dev(&t, 1, VTL_SHAPE(N), ts);
    dev(&y, 2, VTL_SHAPE(N, dim), NULL);
    ASSERT_OP(rt(), vtl_timestep_embedding(rt(), &y, &t, cases[c][1],
                                     (float)cases[c][2]));
    float *got = fetch(&y), *ref = malloc((size_t)N * dim * sizeof *ref);
    vtl_timestep_embedding_ref(ref, ts, N, dim, cases[c][1], (float)cases[c][2]);
    ASSERT_OK(close_enough("timestep_embedding", got, ref, (size_t)N * dim,
                           2e-4, 0));
    if (dim == 320) { /* SD: t = 0 gives cos 1 then sin 0 */
      ASSERT_NEAR(got[0], 1.0, 1e-6);
      ASSERT_NEAR(got[160], 0.0, 1e-6);
    }
    free(got), free(ref);
    vtl_tensor_release(rt(), &t);
    vtl_tensor_release(rt(), &y);
  }
  return 0;
}

TEST_LIST(
  TEST_ENTRY(runtime_devices)
  TEST_ENTRY(runtime_build_error)
  TEST_ENTRY(runtime_binary_cache)
  TEST_ENTRY(runtime_pool_and_views)
  TEST_ENTRY(runtime_profile)
  TEST_ENTRY(ops_gemm)
  TEST_ENTRY(ops_linear)
  TEST_ENTRY(ops_conv2d)
  TEST_ENTRY(ops_conv2d_winograd)
  TEST_ENTRY(ops_gemm_f16)
  TEST_ENTRY(f16_rounding)
  TEST_ENTRY(runtime_weights_choice)
  TEST_ENTRY(ops_attention)
  TEST_ENTRY(ops_group_norm)
  TEST_ENTRY(ops_layer_norm)
  TEST_ENTRY(ops_activations)
  TEST_ENTRY(ops_resize_concat)
  TEST_ENTRY(ops_add_mul_scale)
  TEST_ENTRY(ops_scale_shift_act) TEST_ENTRY(ops_timestep_embedding)
)
