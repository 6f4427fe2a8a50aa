/* test_safetensors.c — the .safetensors reader (engine/safetensors.h).
 *
 *   kit_files          every .safetensors of the reference kit opens; counts,
 *                      dtypes, metadata, a few shapes
 *   kit_fp16_variant   unet fp16 variant = round-to-nearest-even of the F32
 *                      weights, every tensor, and within the F16 bound
 *   kit_bf16_variant   text_encoder bf16 variant, the same for BF16
 *   kit_ldm_file       the single F16 LDM file: original key names, values
 *                      equal to the fp16 variant's under the diffusers name
 *   f16_all_values     all 65536 F16 values against a reference formula
 *                      (subnormals, inf, NaN payloads); BF16 = bits << 16
 *   read_ranges        partial reads; ranges outside the tensor refused
 *   minimal_files      {} and __metadata__-only headers, scalars, empty
 *                      tensors, other dtypes refused at read (I64 named)
 *   damaged_files      truncated, header length beyond the file, non-JSON,
 *                      overlaps, holes, trailing bytes, offsets past the end,
 *                      size vs shape, unknown dtype, bad shapes, duplicates,
 *                      bad metadata: each a code and a message naming the
 *                      file (and tensor), never a crash
 *   missing_tensor     lookup of an absent name: VTL_ENOENT naming it
 *   open_errors        missing file, a directory, an empty file
 *   mutations          bytes of a valid file flipped/truncated at random,
 *                      opened from memory and read entirely: no crash
 *
 * The kit is ../shared/refkit (tests run from the repo root), or the folder
 * named by VTL_REFKIT. Damaged files are written to /tmp and removed.
 */
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "task.h"
#include "vtl_error.h"

/* ---- helpers ------------------------------------------------------------- */

static const char *kit_dir(void) {
  const char *env = getenv("VTL_REFKIT");
  return env && *env ? env : "../shared/refkit";
}

static const char *kit(const char *rel) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/models/%s", kit_dir(), rel);
  return buf[k];
}

static vtl_st_file *open_ok(const char *path) {
  vtl_st_file *f = NULL;
  char msg[512];
  if (vtl_st_open(&f, path, msg, sizeof msg)) {
    fprintf(stderr, "open %s: %s\n", path, msg);
    return NULL;
  }
  return f;
}

static float *read_all(const vtl_st_file *f, const vtl_st_tensor *t) {
  float *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
  char msg[512];
  if (v && vtl_st_read_f32(f, t, 0, t->numel, v, msg, sizeof msg)) {
    fprintf(stderr, "read %s: %s\n", t->name, msg);
    free(v);
    return NULL;
  }
  return v;
}

static uint32_t bits_of(float x) {
  uint32_t b;
  memcpy(&b, &x, 4);
  return b;
}

/* Reference float32 -> binary16, round to nearest even (what torch's
 * .half() does), for finite inputs inside the F16 range. */
static uint16_t f32_to_f16_rne(float x) {
  uint32_t b = bits_of(x), sign = (b >> 16) & 0x8000u;
  float a = fabsf(x);
  if (a >= 65520.0f) return (uint16_t)(sign | 0x7c00u); /* overflow: inf */
  if (a < 0x1p-14f) {
    /* subnormal (or zero): multiples of 2^-24, rint rounds half to even */
    return (uint16_t)(sign | (uint32_t)rintf(a * 0x1p24f));
  }
  uint32_t e = ((b >> 23) & 0xffu) - 127u + 15u, m = b & 0x7fffffu;
  uint32_t h = (e << 10) | (m >> 13), rest = m & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* may carry */
  return (uint16_t)(sign | h);
}

static uint16_t f32_to_bf16_rne(float x) {
  uint32_t b = bits_of(x);
  return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

/* A unique scratch path under /tmp. */
static const char *tmp_path(const char *tag) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "/tmp/vtl_test_st_%ld_%s.safetensors",
           (long)getpid(), tag);
  return buf[k];
}

/* Writes len (8 bytes LE), header text, then data. */
static void write_raw(const char *path, uint64_t len, const char *header,
                      const void *data, size_t ndata) {
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  fwrite(&len, 8, 1, fp);
  fwrite(header, 1, strlen(header), fp);
  if (ndata) fwrite(data, 1, ndata, fp);
  fclose(fp);
}

/* A file with header h (its true length) and ndata bytes of 0x3f. */
static void write_file(const char *path, const char *h, size_t ndata) {
  uint8_t *d = malloc(ndata + 1);
  memset(d, 0x3f, ndata + 1);
  write_raw(path, strlen(h), h, d, ndata);
  free(d);
}

/* Opening must fail with code; msg must contain every needle given. */
static int expect_fail(const char *path, int code, const char *n1,
                       const char *n2) {
  vtl_st_file *f = (vtl_st_file *)1;
  char msg[512] = "";
  int rc = vtl_st_open(&f, path, msg, sizeof msg);
  if (getenv("VTL_TEST_VERBOSE")) fprintf(stderr, "  %s\n", msg);
  if (rc != code || f != NULL) {
    fprintf(stderr, "%s: rc %d (%s) want %d; msg: %s\n", path, rc,
            vtl_err_name(rc), code, msg);
    if (f) vtl_st_close(f);
    return 1;
  }
  if (!strstr(msg, path) || (n1 && !strstr(msg, n1)) ||
      (n2 && !strstr(msg, n2))) {
    fprintf(stderr, "message \"%s\" lacks the path or \"%s\" / \"%s\"\n", msg,
            n1 ? n1 : "", n2 ? n2 : "");
    return 1;
  }
  return 0;
}

/* ---- kit files ----------------------------------------------------------- */

TEST_IMPL(kit_files) {
  static const struct {
    const char *rel;
    size_t count;
    vtl_st_dtype dtype;
  } files[] = {
    {"tiny-sd/unet/diffusion_pytorch_model.safetensors", 304, VTL_ST_F32},
    {"tiny-sd/unet/diffusion_pytorch_model.fp16.safetensors", 304,
     VTL_ST_F16},
    {"tiny-sd/vae/diffusion_pytorch_model.safetensors", 244, VTL_ST_F32},
    {"tiny-sd/text_encoder/model.safetensors", 52, VTL_ST_F32},
    {"tiny-sd/text_encoder/model.bf16.safetensors", 52, VTL_ST_BF16},
    {"taesd/diffusion_pytorch_model.safetensors", 98, VTL_ST_F32},
    {"tiny-sd-ldm.safetensors", 600, VTL_ST_F16},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    vtl_st_file *f = open_ok(kit(files[i].rel));
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(vtl_st_count(f), files[i].count);
    ASSERT_STR_EQ(vtl_st_metadata(f, "format"), "pt");
    ASSERT_NULL(vtl_st_metadata(f, "nope"));
    uint64_t at = 0;
    for (size_t k = 0; k < vtl_st_count(f); k++) {
      const vtl_st_tensor *t = vtl_st_at(f, k);
      ASSERT_EQ(t->dtype, files[i].dtype);
      ASSERT_EQ(t->begin, at); /* sorted, tiled */
      at = t->end;
      ASSERT(vtl_st_find(f, t->name) == t);
      ASSERT_EQ(vtl_st_index(f, t), k);
      /* every tensor reads */
      float *v = read_all(f, t);
      ASSERT_NOT_NULL(v);
      for (size_t e = 0; e < t->numel; e++) ASSERT(isfinite(v[e]));
      free(v);
    }
    vtl_st_close(f);
  }
  vtl_st_file *f = open_ok(kit("tiny-sd/unet/diffusion_pytorch_model.safetensors"));
  ASSERT_NOT_NULL(f);
  const vtl_st_tensor *t = vtl_st_find(f, "conv_in.weight");
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(t->ndim, 4);
  ASSERT_EQ(t->shape[0], 32);
  ASSERT_EQ(t->shape[1], 4);
  ASSERT_EQ(t->shape[2], 3);
  ASSERT_EQ(t->shape[3], 3);
  ASSERT_EQ(t->numel, 32 * 4 * 9);
  ASSERT_STR_EQ(vtl_st_dtype_name(t->dtype), "F32");
  ASSERT_EQ(vtl_st_dtype_size(VTL_ST_BF16), 2);
  vtl_st_close(f);
  return 0;
}

/* Every tensor of lo is the RNE rounding of the same-named tensor of hi. */
static int check_rounded(const char *hi_path, const char *lo_path, int bf16) {
  vtl_st_file *hi = open_ok(hi_path), *lo = open_ok(lo_path);
  ASSERT_NOT_NULL(hi);
  ASSERT_NOT_NULL(lo);
  ASSERT_EQ(vtl_st_count(hi), vtl_st_count(lo));
  size_t checked = 0;
  for (size_t k = 0; k < vtl_st_count(hi); k++) {
    const vtl_st_tensor *a = vtl_st_at(hi, k);
    const vtl_st_tensor *b = vtl_st_find(lo, a->name);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(a->ndim, b->ndim);
    for (int d = 0; d < a->ndim; d++) ASSERT_EQ(a->shape[d], b->shape[d]);
    float *x = read_all(hi, a), *y = read_all(lo, b);
    ASSERT_NOT_NULL(x);
    ASSERT_NOT_NULL(y);
    const uint16_t *raw = vtl_st_data(lo, b);
    for (size_t e = 0; e < a->numel; e++) {
      uint16_t want = bf16 ? f32_to_bf16_rne(x[e]) : f32_to_f16_rne(x[e]);
      uint16_t got;
      memcpy(&got, raw + e, 2);
      if (got != want)
        TEST_FAIL_("%s[%zu]: stored 0x%04x, RNE of %.9g is 0x%04x", a->name,
                   e, got, (double)x[e], want);
      /* the rounding bound: half an ulp of the result's binade */
      double ax = fabs((double)x[e]);
      double bound = bf16 ? ax * 0x1p-8 : fmax(ax * 0x1p-11, 0x1p-25);
      if (!(fabs((double)y[e] - (double)x[e]) <= bound))
        TEST_FAIL_("%s[%zu]: |%.9g - %.9g| > %g", a->name, e, (double)y[e],
                   (double)x[e], bound);
      checked++;
    }
    free(x);
    free(y);
  }
  ASSERT_GT(checked, 1000);
  vtl_st_close(hi);
  vtl_st_close(lo);
  return 0;
}

TEST_IMPL(kit_fp16_variant) {
  return check_rounded(
      kit("tiny-sd/unet/diffusion_pytorch_model.safetensors"),
      kit("tiny-sd/unet/diffusion_pytorch_model.fp16.safetensors"), 0);
}

TEST_IMPL(kit_bf16_variant) {
  return check_rounded(kit("tiny-sd/text_encoder/model.safetensors"),
                       kit("tiny-sd/text_encoder/model.bf16.safetensors"), 1);
}

TEST_IMPL(kit_ldm_file) {
  vtl_st_file *ldm = open_ok(kit("tiny-sd-ldm.safetensors"));
  vtl_st_file *u16 =
      open_ok(kit("tiny-sd/unet/diffusion_pytorch_model.fp16.safetensors"));
  vtl_st_file *te = open_ok(kit("tiny-sd/text_encoder/model.safetensors"));
  ASSERT_NOT_NULL(ldm);
  ASSERT_NOT_NULL(u16);
  ASSERT_NOT_NULL(te);
  static const char *const pairs[][2] = {
    {"model.diffusion_model.input_blocks.0.0.weight", "conv_in.weight"},
    {"model.diffusion_model.time_embed.2.bias", "time_embedding.linear_2.bias"},
    {"model.diffusion_model.output_blocks.2.1.conv.weight",
     "up_blocks.0.upsamplers.0.conv.weight"},
    {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k."
     "weight",
     "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    const vtl_st_tensor *a = vtl_st_find(ldm, pairs[i][0]);
    const vtl_st_tensor *b = vtl_st_find(u16, pairs[i][1]);
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(a->numel, b->numel);
    float *x = read_all(ldm, a), *y = read_all(u16, b);
    ASSERT_NOT_NULL(x);
    ASSERT_NOT_NULL(y);
    for (size_t e = 0; e < a->numel; e++)
      ASSERT_EQ(bits_of(x[e]), bits_of(y[e]));
    free(x);
    free(y);
  }
  /* text encoder: F16 in the LDM file, F32 in the folder */
  const vtl_st_tensor *a = vtl_st_find(
      ldm, "cond_stage_model.transformer.text_model.final_layer_norm.weight");
  const vtl_st_tensor *b = vtl_st_find(te, "text_model.final_layer_norm.weight");
  ASSERT_NOT_NULL(a);
  ASSERT_NOT_NULL(b);
  float *x = read_all(ldm, a), *y = read_all(te, b);
  ASSERT_NOT_NULL(x);
  ASSERT_NOT_NULL(y);
  for (size_t e = 0; e < a->numel; e++)
    ASSERT_EQ(f32_to_f16_rne(y[e]),
              f32_to_f16_rne(x[e])); /* x is exactly an F16 value */
  for (size_t e = 0; e < a->numel; e++)
    ASSERT_EQ(bits_of(vtl_f16_to_f32(f32_to_f16_rne(y[e]))), bits_of(x[e]));
  free(x);
  free(y);
  /* the VAE mid attention is stored as 1x1 convs */
  a = vtl_st_find(ldm, "first_stage_model.encoder.mid.attn_1.q.weight");
  ASSERT_NOT_NULL(a);
  ASSERT_EQ(a->ndim, 4);
  ASSERT_EQ(a->shape[2], 1);
  vtl_st_close(ldm);
  vtl_st_close(u16);
  vtl_st_close(te);
  return 0;
}

/* ---- conversions --------------------------------------------------------- */

TEST_IMPL(f16_all_values) {
  for (uint32_t h = 0; h < 65536; h++) {
    float got = vtl_f16_to_f32((uint16_t)h);
    int sign = (h >> 15) & 1, exp = (h >> 10) & 31, man = h & 1023;
    if (exp == 31) {
      if (man == 0) {
        ASSERT(isinf(got));
        ASSERT_EQ(signbit(got) != 0, sign);
      } else {
        ASSERT(isnan(got));
        /* payload and quiet bit kept: bits = sign | 0x7f800000 | man<<13 */
        ASSERT_EQ(bits_of(got), ((uint32_t)sign << 31) | 0x7f800000u |
                                    ((uint32_t)man << 13));
      }
      continue;
    }
    double want = exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
    if (sign) want = -want;
    if ((double)got != want || (signbit(got) != 0) != sign)
      TEST_FAIL_("f16 0x%04x: %.17g want %.17g", h, (double)got, want);
    /* and back: our reference rounding is the inverse on F16 values */
    ASSERT_EQ(f32_to_f16_rne(got), h);
  }
  ASSERT_EQ(bits_of(vtl_f16_to_f32(0x0001)), bits_of(0x1p-24f)); /* min sub */
  ASSERT_EQ(bits_of(vtl_f16_to_f32(0x03ff)), bits_of(1023 * 0x1p-24f));
  ASSERT_EQ(bits_of(vtl_f16_to_f32(0x0400)), bits_of(0x1p-14f)); /* min norm */
  ASSERT_EQ(bits_of(vtl_f16_to_f32(0x7bff)), bits_of(65504.0f));
  ASSERT_EQ(bits_of(vtl_f16_to_f32(0x8000)), bits_of(-0.0f));
  /* BF16: the high half of the float32 bits, NaN included */
  ASSERT_EQ(bits_of(vtl_bf16_to_f32(0x3f80)), bits_of(1.0f));
  ASSERT_EQ(bits_of(vtl_bf16_to_f32(0xc049)), 0xc0490000u);
  ASSERT_EQ(bits_of(vtl_bf16_to_f32(0x0001)), 0x00010000u); /* subnormal */
  ASSERT_EQ(bits_of(vtl_bf16_to_f32(0x7fc1)), 0x7fc10000u);
  ASSERT(isinf(vtl_bf16_to_f32(0xff80)));
  return 0;
}

/* ---- small files written here -------------------------------------------- */

/* Two F32 tensors a = {1, 2}, b = {3, 4, 5} and an F16 / BF16 pair. */
static const char *write_small(void) {
  const char *p = tmp_path("small");
  const char *h =
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[3,1],\"data_offsets\":[8,20]},"
      "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[20,24]},"
      "\"z\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]},"
      "\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"}}    ";
  uint8_t d[28];
  float a[5] = {1, 2, 3, 4, 5};
  uint16_t hv[2] = {0x3c00, 0x0001}; /* 1.0, 2^-24 */
  uint16_t zv[2] = {0x4040, 0xbf80}; /* 3.0, -1.0 */
  memcpy(d, a, 20);
  memcpy(d + 20, hv, 4);
  memcpy(d + 24, zv, 4);
  write_raw(p, strlen(h), h, d, sizeof d);
  return p;
}

TEST_IMPL(read_ranges) {
  const char *p = write_small();
  vtl_st_file *f = open_ok(p);
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(vtl_st_count(f), 4);
  ASSERT_STR_EQ(vtl_st_metadata(f, "note"), "x");
  const vtl_st_tensor *b;
  char msg[256];
  ASSERT_OK(vtl_st_lookup(f, "b", &b, msg, sizeof msg));
  float v[3] = {0};
  ASSERT_OK(vtl_st_read_f32(f, b, 1, 2, v, msg, sizeof msg));
  ASSERT_NEAR(v[0], 4, 0);
  ASSERT_NEAR(v[1], 5, 0);
  ASSERT_OK(vtl_st_read_f32(f, b, 3, 0, v, msg, sizeof msg));
  ASSERT_EQ(vtl_st_read_f32(f, b, 2, 2, v, msg, sizeof msg), VTL_ERANGE);
  ASSERT_CONTAINS(msg, "'b'");
  ASSERT_EQ(vtl_st_read_f32(f, b, 4, 0, v, msg, sizeof msg), VTL_ERANGE);
  ASSERT_EQ(vtl_st_read_f32(f, b, SIZE_MAX, 2, v, msg, sizeof msg),
            VTL_ERANGE);
  const vtl_st_tensor *h = vtl_st_find(f, "h"), *z = vtl_st_find(f, "z");
  ASSERT_OK(vtl_st_read_f32(f, h, 0, 2, v, msg, sizeof msg));
  ASSERT_NEAR(v[0], 1.0, 0);
  ASSERT_NEAR(v[1], 0x1p-24, 0);
  ASSERT_OK(vtl_st_read_f32(f, z, 1, 1, v, msg, sizeof msg));
  ASSERT_NEAR(v[0], -1.0, 0);
  vtl_st_close(f);
  unlink(p);
  return 0;
}

TEST_IMPL(minimal_files) {
  const char *p = tmp_path("min");
  vtl_st_file *f;
  /* no tensors */
  write_file(p, "{}      ", 0);
  ASSERT_NOT_NULL(f = open_ok(p));
  ASSERT_EQ(vtl_st_count(f), 0);
  ASSERT_NULL(vtl_st_find(f, ""));
  vtl_st_close(f);
  write_file(p, "{\"__metadata__\":{}}", 0);
  ASSERT_NOT_NULL(f = open_ok(p));
  ASSERT_EQ(vtl_st_count(f), 0);
  vtl_st_close(f);
  /* a scalar, an empty tensor, an I64 and a U8 tensor */
  write_file(p,
             "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
             "\"e\":{\"dtype\":\"F16\",\"shape\":[0,7],\"data_offsets\":[4,4]},"
             "\"embeddings.position_ids\":{\"dtype\":\"I64\",\"shape\":[1,2],"
             "\"data_offsets\":[4,20]},"
             "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[20,23],"
             "\"extra\":1}}",
             23);
  ASSERT_NOT_NULL(f = open_ok(p));
  ASSERT_EQ(vtl_st_count(f), 4);
  const vtl_st_tensor *s = vtl_st_find(f, "s"), *e = vtl_st_find(f, "e");
  ASSERT_EQ(s->ndim, 0);
  ASSERT_EQ(s->numel, 1);
  ASSERT_EQ(e->numel, 0);
  float v[4];
  char msg[256];
  ASSERT_OK(vtl_st_read_f32(f, s, 0, 1, v, msg, sizeof msg));
  ASSERT_OK(vtl_st_read_f32(f, e, 0, 0, v, msg, sizeof msg));
  const vtl_st_tensor *i64 = vtl_st_find(f, "embeddings.position_ids");
  ASSERT_EQ(i64->dtype, VTL_ST_I64);
  ASSERT_EQ(vtl_st_read_f32(f, i64, 0, 2, v, msg, sizeof msg),
            VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, p);
  ASSERT_CONTAINS(msg, "'embeddings.position_ids'");
  ASSERT_CONTAINS(msg, "I64");
  ASSERT_EQ(vtl_st_read_f32(f, vtl_st_find(f, "u"), 0, 3, v, msg, sizeof msg),
            VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "U8");
  vtl_st_close(f);
  /* F64 too */
  write_file(p, "{\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
             8);
  ASSERT_NOT_NULL(f = open_ok(p));
  ASSERT_EQ(vtl_st_read_f32(f, vtl_st_at(f, 0), 0, 1, v, msg, sizeof msg),
            VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "F64");
  vtl_st_close(f);
  unlink(p);
  return 0;
}

TEST_IMPL(damaged_files) {
  const char *p = tmp_path("bad");
  const char *ok1 =
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  /* truncated: a real file cut in its data, in its header, before it */
  {
    FILE *in = fopen(kit("tiny-sd/vae/diffusion_pytorch_model.safetensors"),
                     "rb");
    ASSERT_NOT_NULL(in);
    static uint8_t buf[1 << 21];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    ASSERT_GT(n, 100000);
    size_t cuts[] = {n - 1, n / 2, 30000, 100, 9, 7, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
      FILE *out = fopen(p, "wb");
      fwrite(buf, 1, cuts[i], out);
      fclose(out);
      const char *why = cuts[i] < 8       ? "too short"
                        : cuts[i] < 26000 ? "exceeds the file"
                        : cuts[i] == n - 1 ? "outside the data region"
                                           : "outside the data region";
      if (expect_fail(p, VTL_EPARSE, why, NULL)) return 1;
    }
  }
  /* header length beyond the file, and absurd */
  write_raw(p, 1000000, ok1, "12345678", 8);
  if (expect_fail(p, VTL_EPARSE, "header length 1000000 exceeds", NULL))
    return 1;
  write_raw(p, UINT64_MAX, ok1, "12345678", 8);
  if (expect_fail(p, VTL_EPARSE, "exceeds", NULL)) return 1;
  /* not JSON, not an object, not starting with '{' */
  write_file(p, "{not json at all", 0);
  if (expect_fail(p, VTL_EPARSE, "not valid JSON", NULL)) return 1;
  write_file(p, "[1, 2, 3]", 0);
  if (expect_fail(p, VTL_EPARSE, "does not start with '{'", NULL)) return 1;
  write_file(p, "{\"w\": 5}", 0);
  if (expect_fail(p, VTL_EPARSE, "'w'", "not a JSON object")) return 1;
  write_file(p, "{\"w\": \"\\u0000\"}", 0);
  if (expect_fail(p, VTL_EPARSE, "JSON", NULL)) return 1;
  write_file(p, "{\"a\xff\": {}}", 0); /* invalid UTF-8 */
  if (expect_fail(p, VTL_EPARSE, "JSON", NULL)) return 1;
  /* duplicate keys */
  write_file(p,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "duplicate", NULL)) return 1;
  /* overlapping offsets */
  write_file(p,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12);
  if (expect_fail(p, VTL_EPARSE, "overlap", "'b'")) return 1;
  write_file(p,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "overlap", NULL)) return 1;
  /* a hole, trailing bytes */
  write_file(p,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
             16);
  if (expect_fail(p, VTL_EPARSE, "hole before 'b'", NULL)) return 1;
  write_file(p, ok1, 12);
  if (expect_fail(p, VTL_EPARSE, "4 bytes after the last tensor", NULL))
    return 1;
  /* offsets past the end, reversed, negative, malformed */
  write_file(p, ok1, 4);
  if (expect_fail(p, VTL_EPARSE, "'w'", "outside the data region")) return 1;
  write_file(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "not a range")) return 1;
  write_file(p,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "not a range")) return 1;
  write_file(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "data_offsets")) return 1;
  write_file(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "data_offsets")) return 1;
  write_file(p,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
             "\"data_offsets\":[0,99999999999999999999]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, NULL, NULL)) return 1; /* jansson: too big */
  /* size mismatch with the shape */
  write_file(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "needs 12")) return 1;
  write_file(p, "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "F16 needs 4")) return 1;
  /* dtypes */
  write_file(p, "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "unknown dtype 'Q4'")) return 1;
  write_file(p, "{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "unknown dtype 'f32'", NULL)) return 1;
  write_file(p, "{\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "dtype")) return 1;
  /* shapes */
  write_file(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "shape entry 0")) return 1;
  write_file(p,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "shape entry 0")) return 1;
  write_file(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "shape")) return 1;
  write_file(p,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
             "\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "overflows")) return 1;
  write_file(p,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
             "\"data_offsets\":[0,8]}}",
             8);
  if (expect_fail(p, VTL_EPARSE, "'w'", "9 dimensions")) return 1;
  /* metadata */
  write_file(p, "{\"__metadata__\":{\"format\":1}}", 0);
  if (expect_fail(p, VTL_EPARSE, "__metadata__", "'format'")) return 1;
  write_file(p, "{\"__metadata__\":[]}", 0);
  if (expect_fail(p, VTL_EPARSE, "__metadata__", NULL)) return 1;
  /* header too short to be JSON */
  write_raw(p, 0, "", NULL, 0);
  if (expect_fail(p, VTL_EPARSE, "'{'", NULL)) return 1;
  unlink(p);
  return 0;
}

TEST_IMPL(missing_tensor) {
  const char *p = write_small();
  vtl_st_file *f = open_ok(p);
  ASSERT_NOT_NULL(f);
  const vtl_st_tensor *t = (const vtl_st_tensor *)1;
  char msg[256];
  ASSERT_EQ(vtl_st_lookup(f, "conv_in.weight", &t, msg, sizeof msg),
            VTL_ENOENT);
  ASSERT_NULL(t);
  ASSERT_CONTAINS(msg, p);
  ASSERT_CONTAINS(msg, "'conv_in.weight'");
  ASSERT_NULL(vtl_st_find(f, "A"));
  ASSERT_NULL(vtl_st_find(f, "__metadata__"));
  ASSERT_NULL(vtl_st_at(f, 4));
  vtl_st_close(f);
  unlink(p);
  return 0;
}

TEST_IMPL(open_errors) {
  vtl_st_file *f = (vtl_st_file *)1;
  char msg[256];
  ASSERT_EQ(vtl_st_open(&f, "/nonexistent/x.safetensors", msg, sizeof msg),
            VTL_ENOENT);
  ASSERT_NULL(f);
  ASSERT_CONTAINS(msg, "/nonexistent/x.safetensors");
  ASSERT_EQ(vtl_st_open(&f, "/tmp", msg, sizeof msg), VTL_EIO);
  ASSERT_CONTAINS(msg, "not a regular file");
  const char *p = tmp_path("empty");
  write_raw(p, 0, "", NULL, 0);
  ASSERT_OK(truncate(p, 0));
  if (expect_fail(p, VTL_EPARSE, "too short", NULL)) return 1;
  unlink(p);
  ASSERT_EQ(vtl_st_open_memory(&f, NULL, 0, "mem", msg, sizeof msg),
            VTL_EPARSE);
  ASSERT_CONTAINS(msg, "mem: ");
  vtl_st_close(NULL);
  return 0;
}

/* ---- random damage ------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

TEST_IMPL(mutations) {
  const char *p = write_small();
  FILE *in = fopen(p, "rb");
  ASSERT_NOT_NULL(in);
  uint8_t orig[512], buf[512];
  size_t n = fread(orig, 1, sizeof orig, in);
  fclose(in);
  unlink(p);
  int opened = 0;
  for (int it = 0; it < 20000; it++) {
    memcpy(buf, orig, n);
    size_t len = n;
    int edits = 1 + (int)(next() % 4);
    for (int e = 0; e < edits; e++) {
      switch (next() % 4) {
      case 0: buf[next() % len] ^= (uint8_t)(1u << (next() % 8)); break;
      case 1: buf[next() % len] = (uint8_t)"0123456789[]{},:\"-eE."[next() % 21];
        break;
      case 2: len = next() % (len + 1); break;
      default: buf[next() % 8] = (uint8_t)next(); break;
      }
      if (len == 0) break;
    }
    /* exact-size heap copy so ASan sees any read past the end */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    vtl_st_file *f;
    char msg[256];
    if (vtl_st_open_memory(&f, copy, len, "mutant", msg, sizeof msg) == 0) {
      opened++;
      for (size_t i = 0; i < vtl_st_count(f); i++) {
        const vtl_st_tensor *t = vtl_st_at(f, i);
        float *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
        int rc = vtl_st_read_f32(f, t, 0, t->numel, v, msg, sizeof msg);
        ASSERT(rc == 0 || rc == VTL_EUNSUPPORTED);
        free(v);
      }
      vtl_st_close(f);
    } else {
      ASSERT(strncmp(msg, "mutant: ", 8) == 0);
    }
    free(copy);
  }
  ASSERT_GT(opened, 10); /* some mutants stay valid (data bytes) */
  return 0;
}

TEST_LIST(TEST_ENTRY(kit_files) TEST_ENTRY(kit_fp16_variant)
              TEST_ENTRY(kit_bf16_variant) TEST_ENTRY(kit_ldm_file)
                  TEST_ENTRY(f16_all_values) TEST_ENTRY(read_ranges)
                      TEST_ENTRY(minimal_files) TEST_ENTRY(damaged_files)
                          TEST_ENTRY(missing_tensor) TEST_ENTRY(open_errors)
                              TEST_ENTRY(mutations))
