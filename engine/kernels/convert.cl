/* convert.cl — element type conversions (runtime.h "Weight storage").
 *
 * f16 -> f32 of stored weights before a GEMM (op_gemm.c vtl__widen).
 * vload_half is core OpenCL 1.2: no cl_khr_fp16 needed, so the same kernel
 * runs on PoCL and on GPUs. Offsets are in elements of each buffer's type.
 */

__kernel void half_to_float(__global float *y, ulong yo,
                            __global const half *x, ulong xo, int n) {
  y += yo;
  x += xo;
  for (int i = get_global_id(0); i < n; i += get_global_size(0))
    y[i] = vload_half(i, x);
}
