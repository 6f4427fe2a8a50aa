/* test_npy.c — engine/npy.c: the .npy reader and writer, including the
 * damaged files a kit may hold (each written to /tmp by the test). */
#include <stdbool.h>
#include <unistd.h>

#include "npy.h"
#include "task.h"
#include "vtl_error.h"

/* A per-process scratch path under /tmp. */
static const char *tmp_path(const char *tag) {
  static char buf[256];
  snprintf(buf, sizeof buf, "/tmp/vtl_test_npy_%ld_%s.npy", (long)getpid(), tag);
  return buf;
}

/* Writes magic + version + header (padded as numpy does unless raw) + data. */
static int write_npy(const char *path, int major, const char *header,
                     const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t hl = strlen(header), pre = major == 1 ? 10 : 12;
  size_t padded = hl + 1;
  while ((pre + padded) % 64) padded++;
  unsigned char p[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
  for (size_t k = 0; k < pre - 8; k++) p[8 + k] = (unsigned char)(padded >> (8 * k));
  fwrite(p, 1, pre, f);
  fwrite(header, 1, hl, f);
  for (size_t k = hl; k + 1 < padded; k++) fputc(' ', f);
  fputc('\n', f);
  if (len) fwrite(data, 1, len, f);
  return fclose(f);
}

/* Writes raw bytes. */
static int write_raw(const char *path, const void *bytes, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fwrite(bytes, 1, len, f);
  return fclose(f);
}

/* Loads path expecting failure code `code` and a message containing `needle`. */
static int expect_fail(const char *path, int code, const char *needle) {
  vtl_npy a;
  char msg[256] = "";
  int rc = vtl_npy_load(path, &a, msg, sizeof msg);
  unlink(path);
  if (rc != code) {
    fprintf(stderr, "%s: rc %d (%s) want %d; msg: %s\n", path, rc, vtl_err_name(rc),
            code, msg);
    return 1;
  }
  if (a.data != NULL || a.count != 0) {
    fprintf(stderr, "failed load left data behind\n");
    return 1;
  }
  if (!strstr(msg, needle) || !strstr(msg, path)) {
    fprintf(stderr, "message \"%s\" lacks \"%s\" or the path\n", msg, needle);
    return 1;
  }
  return 0;
}

TEST_IMPL(npy_roundtrip_f32) {
  const char *p = tmp_path("rt");
  float v[6] = {1.5f, -2, 3.25f, 0, 1e-30f, -7};
  int64_t shape[2] = {2, 3};
  ASSERT_OK(vtl_npy_save_f32(p, v, 2, shape));
  vtl_npy a;
  char msg[256];
  ASSERT_OK(vtl_npy_load(p, &a, msg, sizeof msg));
  unlink(p);
  ASSERT_EQ(a.dtype, VTL_NPY_F32);
  ASSERT_EQ(a.ndim, 2);
  ASSERT_EQ(a.shape[0], 2);
  ASSERT_EQ(a.shape[1], 3);
  ASSERT_EQ(a.count, 6);
  ASSERT(memcmp(a.data, v, sizeof v) == 0);
  vtl_npy_free(&a);
  ASSERT_NULL(a.data);
  return 0;
}

TEST_IMPL(npy_roundtrip_shapes) {
  /* 1-d (written "(3,)"), scalar "()" and an empty dimension */
  const char *p = tmp_path("shapes");
  float v[3] = {1, 2, 3};
  int64_t s1[1] = {3}, s0[1] = {0}, s3[3] = {2, 0, 5};
  vtl_npy a;
  char msg[256];
  ASSERT_OK(vtl_npy_save_f32(p, v, 1, s1));
  ASSERT_OK(vtl_npy_load(p, &a, msg, sizeof msg));
  ASSERT_EQ(a.ndim, 1);
  ASSERT_EQ(a.count, 3);
  vtl_npy_free(&a);
  ASSERT_OK(vtl_npy_save_f32(p, v, 0, s0));
  ASSERT_OK(vtl_npy_load(p, &a, msg, sizeof msg));
  ASSERT_EQ(a.ndim, 0);
  ASSERT_EQ(a.count, 1);
  ASSERT_EQ(((float *)a.data)[0], 1);
  vtl_npy_free(&a);
  ASSERT_OK(vtl_npy_save_f32(p, v, 3, s3));
  ASSERT_OK(vtl_npy_load(p, &a, msg, sizeof msg));
  ASSERT_EQ(a.ndim, 3);
  ASSERT_EQ(a.count, 0);
  vtl_npy_free(&a);
  unlink(p);
  return 0;
}

TEST_IMPL(npy_i64_and_v2) {
  const char *p = tmp_path("i64");
  int64_t v[4] = {999, -1, INT64_MAX, 0};
  vtl_npy a;
  char msg[256];
  ASSERT_OK(write_npy(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }",
                      v, sizeof v));
  ASSERT_OK(vtl_npy_load(p, &a, msg, sizeof msg));
  ASSERT_EQ(a.dtype, VTL_NPY_I64);
  ASSERT_EQ(a.count, 4);
  ASSERT_EQ(((int64_t *)a.data)[2], INT64_MAX);
  vtl_npy_free(&a);
  /* version 2.0 (4-byte header length), keys in another order, no
   * trailing comma, double quotes */
  ASSERT_OK(write_npy(p, 2, "{\"shape\": (2, 2), \"fortran_order\": False, \"descr\": \"<i8\"}",
                      v, sizeof v));
  ASSERT_OK(vtl_npy_load(p, &a, msg, sizeof msg));
  ASSERT_EQ(a.ndim, 2);
  ASSERT_EQ(((int64_t *)a.data)[0], 999);
  vtl_npy_free(&a);
  unlink(p);
  return 0;
}

TEST_IMPL(npy_refuses_dtypes_and_layouts) {
  const char *p = tmp_path("dtype");
  double d[2] = {1, 2};
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                      d, sizeof d));
  ASSERT_OK(expect_fail(p, VTL_EUNSUPPORTED, "\"<f8\""));
  ASSERT_OK(write_npy(p, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                      d, 2));
  ASSERT_OK(expect_fail(p, VTL_EUNSUPPORTED, "|b1"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                      d, 8));
  ASSERT_OK(expect_fail(p, VTL_EUNSUPPORTED, ">f4"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1), }",
                      d, 8));
  ASSERT_OK(expect_fail(p, VTL_EUNSUPPORTED, "fortran"));
  ASSERT_OK(write_npy(p, 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                      d, 8));
  ASSERT_OK(expect_fail(p, VTL_EUNSUPPORTED, "version 3.0"));
  ASSERT_OK(write_npy(p, 1,
                      "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }",
                      d, 4));
  ASSERT_OK(expect_fail(p, VTL_EUNSUPPORTED, "dimensions"));
  return 0;
}

TEST_IMPL(npy_refuses_damaged_headers) {
  const char *p = tmp_path("hdr");
  float f[2] = {1, 2};
  ASSERT_OK(write_raw(p, "\x93NUMPX\x01\x00\x10\x00", 10));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "magic"));
  ASSERT_OK(write_raw(p, "\x93NUM", 4)); /* shorter than the preamble */
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "magic"));
  ASSERT_OK(write_raw(p, "", 0));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "magic"));
  /* v2 header length 0xffffffff: absurd, never allocated or read */
  ASSERT_OK(write_raw(p, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "header length"));
  /* v1 header length past the end of the file */
  ASSERT_OK(write_raw(p, "\x93NUMPY\x01\x00\x00\x10{'descr'", 18));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "header length"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'shape': (2,), }", f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "lacks"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                            "'shape': (2,), }", f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "repeated"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
                      f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "shape"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ",
                      f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "malformed"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x",
                      f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "garbage"));
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
                      f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "fortran_order"));
  return 0;
}

TEST_IMPL(npy_refuses_damaged_data) {
  const char *p = tmp_path("data");
  float f[6] = {1, 2, 3, 4, 5, 6};
  /* truncated: 6 floats promised, 5 present */
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                      f, 20));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "truncated"));
  /* trailing bytes */
  ASSERT_OK(write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }",
                      f, 24));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "bytes of data"));
  /* element count overflows size_t: 2^32 * 2^32 * 16 */
  ASSERT_OK(write_npy(p, 1,
                      "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (4294967296, 4294967296, 16), }",
                      f, 8));
  ASSERT_OK(expect_fail(p, VTL_ERANGE, "too large"));
  /* a dimension beyond int64 */
  ASSERT_OK(write_npy(p, 1,
                      "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (99999999999999999999,), }",
                      f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "shape"));
  /* huge but not overflowing: the size check refuses it before malloc */
  ASSERT_OK(write_npy(p, 1,
                      "{'descr': '<i8', 'fortran_order': False, "
                      "'shape': (1000000000000,), }",
                      f, 8));
  ASSERT_OK(expect_fail(p, VTL_EPARSE, "truncated"));
  return 0;
}

TEST_IMPL(npy_missing_file) {
  vtl_npy a;
  char msg[256];
  ASSERT_EQ(vtl_npy_load("/nonexistent/x.npy", &a, msg, sizeof msg), VTL_EIO);
  ASSERT(strstr(msg, "/nonexistent/x.npy") != NULL);
  ASSERT_NULL(a.data);
  /* msg may be NULL */
  ASSERT_EQ(vtl_npy_load("/nonexistent/x.npy", &a, NULL, 0), VTL_EIO);
  return 0;
}

TEST_IMPL(npy_reads_the_kit) {
  /* one file of the reference kit, when it is beside the repository */
  vtl_npy a;
  char msg[256];
  const char *p = VTL_SOURCE_DIR "/../shared/refkit/cases/sched_DDIM_leading/timesteps.npy";
  if (access(p, R_OK) != 0) {
    printf("# skipped: no kit at %s\n", p);
    return 0;
  }
  ASSERT_OK(vtl_npy_load(p, &a, msg, sizeof msg));
  ASSERT_EQ(a.dtype, VTL_NPY_I64);
  ASSERT_EQ(a.ndim, 1);
  ASSERT_EQ(a.shape[0], 10);
  ASSERT_EQ(((int64_t *)a.data)[0], 901);
  vtl_npy_free(&a);
  return 0;
}

TEST_LIST(TEST_ENTRY(npy_roundtrip_f32) TEST_ENTRY(npy_roundtrip_shapes)
              TEST_ENTRY(npy_i64_and_v2) TEST_ENTRY(npy_refuses_dtypes_and_layouts)
                  TEST_ENTRY(npy_refuses_damaged_headers)
                      TEST_ENTRY(npy_refuses_damaged_data) TEST_ENTRY(npy_missing_file)
                          TEST_ENTRY(npy_reads_the_kit))
