// winograd.cl — the three transforms of Winograd F(2x2, 3x3) convolution
// (Lavin & Gray 2015) for 3x3, stride 1, padding 1 (engine/op_winograd.c;
// the 16 products in between go through vtl__sgemm).
//
//   B^T = | 1  0 -1  0 |   G = | 1    0    0   |   A^T = | 1  1  1  0 |
//         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
//         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |       | 0    0    1   |
//
//   Y (2x2) = A^T [ (G g G^T) .* (B^T d B) ] A   per 4x4 input tile d
//
// Tiles: tile (ty, tx) of an image covers outputs (2ty .. 2ty+1, 2tx ..
// 2tx+1) and reads inputs (2ty-1 .. 2ty+2, 2tx-1 .. 2tx+2); inputs outside
// the image read as 0 (the padding), outputs outside it (odd H or W) are not
// written. TW = ceil(W/2) tiles a row. The host transforms NTY tile rows
// from TY0 on at a time (one chunk), T = NTY*TW tiles, t = r*TW + tx.
// Element k = 4i + j of a 4x4 transform is matrix k of U, V and M; V and M
// come with the distance between their matrices, plane (floats, >= C*T:
// the host pads it, op_winograd.c says why).
//
//   wino_weight  g [Co, Ci, 3, 3] -> U [16][Co, Ci].  2-D (Ci, Co).
//   wino_input   x [C, H, W] (one image) -> V [16][C, T].  3-D (TW, NTY, C).
//   wino_output  M [16][Co, T] -> y [Co, H, W] (one image), + b[co] when
//                has_b, + r (a residual laid out as y) when has_r, then
//                max(y, 0) when relu (other activations are a separate pass:
//                op_winograd.c). 3-D (TW, NTY, Co).
//   wino_input_rows, wino_output_rows  the same for the host backend (CPUs):
//                one work-item per (tile row, channel) looping over the
//                row's TW tiles, 2-D (NTY, C); contiguous streams per item,
//                and far fewer work-groups for PoCL to launch (conv.cl's
//                im2col_rows).
//
// All bounds-checked (the host rounds the ranges up to its work-group
// size), no division: the tile index is the range's dims 0 and 1, dim 0
// the contiguous run of V, M and y (elementwise.cl's header says why).

// rows of B^T d: the same combination on four row vectors, and on the
// four elements of one row vector (d B)
#define BT(d0, d1, d2, d3) (d0) - (d2), (d1) + (d2), (d2) - (d1), (d1) - (d3)
inline float4 bt4(float4 r) { return (float4)(BT(r.x, r.y, r.z, r.w)); }

__kernel void wino_weight(__global float *u, ulong uo, __global const float *g,
                          ulong go, int Co, int Ci) {
  int ci = get_global_id(0), co = get_global_id(1);
  if (ci >= Ci || co >= Co) return;
  __global const float *p = g + go + ((size_t)co * Ci + ci) * 9;
  float3 g0 = vload3(0, p), g1 = vload3(1, p), g2 = vload3(2, p);
  float3 r[4] = {g0, 0.5f * (g0 + g1 + g2), 0.5f * (g0 - g1 + g2), g2};
  size_t plane = (size_t)Co * Ci, at = uo + (size_t)co * Ci + ci;
  for (int i = 0; i < 4; i++) {
    float3 v = r[i];
    u[at + (4 * i + 0) * plane] = v.x;
    u[at + (4 * i + 1) * plane] = 0.5f * (v.x + v.y + v.z);
    u[at + (4 * i + 2) * plane] = 0.5f * (v.x - v.y + v.z);
    u[at + (4 * i + 3) * plane] = v.z;
  }
}

// V[4i + j] = row i of B^T (d B) at dst[(4i + j) * plane], from the rows
// of d B
inline void store_v(__global float *dst, size_t plane, float4 d0, float4 d1,
                    float4 d2, float4 d3) {
  float4 b[4] = {BT(d0, d1, d2, d3)};
  for (int i = 0; i < 4; i++) {
    dst[(4 * i + 0) * plane] = b[i].x;
    dst[(4 * i + 1) * plane] = b[i].y;
    dst[(4 * i + 2) * plane] = b[i].z;
    dst[(4 * i + 3) * plane] = b[i].w;
  }
}

// One input tile: V[k] at dst[k * plane] from the 4x4 window at (y0, x0)
// of the image src [H, W], zero outside it.
inline void input_tile(__global float *dst, size_t plane,
                       __global const float *src, int H, int W, int y0,
                       int x0) {
  float4 d[4];
  for (int i = 0; i < 4; i++) {
    int iy = y0 + i;
    float e[4];
    for (int j = 0; j < 4; j++) {
      int ix = x0 + j;
      e[j] = iy >= 0 && iy < H && ix >= 0 && ix < W
                 ? src[(size_t)iy * W + ix] : 0.0f;
    }
    d[i] = bt4((float4)(e[0], e[1], e[2], e[3])); // d B, row i
  }
  store_v(dst, plane, d[0], d[1], d[2], d[3]);
}

// One output row of a tile at p (two columns, or one at an odd edge):
// o + the residual at r (has_r), then the ReLU (relu).
inline void output_row(__global float *p, __global const float *r, float2 o,
                       int two, int has_r, int relu) {
  if (has_r) o += two ? vload2(0, r) : (float2)(r[0], 0.0f);
  if (relu) o = fmax(o, 0.0f);
  if (two) vstore2(o, 0, p);
  else p[0] = o.x;
}

// One output tile: y's 2x2 (fewer at an odd edge) at (oy, ox) of the image
// dst [H, W] from M[k] at src[k * plane]; res: the residual image [H, W].
inline void output_tile(__global float *dst, __global const float *src,
                        size_t plane, float bias, __global const float *res,
                        int has_r, int relu, int H, int W, int oy, int ox) {
  float4 e[4];
  for (int i = 0; i < 4; i++)
    e[i] = (float4)(src[(4 * i + 0) * plane], src[(4 * i + 1) * plane],
                    src[(4 * i + 2) * plane], src[(4 * i + 3) * plane]);
  float4 a0 = e[0] + e[1] + e[2], a1 = e[1] - e[2] - e[3]; // A^T M
  float2 o0 = (float2)(a0.x + a0.y + a0.z, a0.y - a0.z - a0.w) + bias,
         o1 = (float2)(a1.x + a1.y + a1.z, a1.y - a1.z - a1.w) + bias;
  size_t at = (size_t)oy * W + ox;
  int two = ox + 1 < W; // odd W: the last tile has one column
  output_row(dst + at, res + at, o0, two, has_r, relu);
  if (oy + 1 >= H) return; // odd H: the last tile row has one row
  output_row(dst + at + W, res + at + W, o1, two, has_r, relu);
}

__kernel void wino_input(__global float *v, ulong vo, ulong plane,
                         __global const float *x, ulong xo, int C, int H,
                         int W, int TW, int TY0, int NTY) {
  int tx = get_global_id(0), r = get_global_id(1), c = get_global_id(2);
  if (tx >= TW || r >= NTY || c >= C) return;
  size_t T = (size_t)NTY * TW;
  input_tile(v + vo + (size_t)c * T + (size_t)r * TW + tx, plane,
             x + xo + (size_t)c * H * W, H, W, 2 * (TY0 + r) - 1, 2 * tx - 1);
}

// Tiles wholly inside the image (tx in [lo, hi) of a tile row whose four
// input rows exist) skip the bounds checks: branch-free loads of four rows.
__kernel void wino_input_rows(__global float *v, ulong vo, ulong plane,
                              __global const float *x, ulong xo, int C, int H,
                              int W, int TW, int TY0, int NTY) {
  int r = get_global_id(0), c = get_global_id(1);
  if (r >= NTY || c >= C) return;
  size_t T = (size_t)NTY * TW;
  __global float *dst = v + vo + (size_t)c * T + (size_t)r * TW;
  __global const float *src = x + xo + (size_t)c * H * W;
  int y0 = 2 * (TY0 + r) - 1, lo = TW, hi = TW;
  if (y0 >= 0 && y0 + 3 < H) lo = min(1, TW), hi = max(lo, (W - 1) / 2);
  for (int tx = 0; tx < lo; tx++)
    input_tile(dst + tx, plane, src, H, W, y0, 2 * tx - 1);
  for (int tx = lo; tx < hi; tx++) {
    __global const float *p = src + (size_t)y0 * W + 2 * tx - 1;
    store_v(dst + tx, plane, bt4(vload4(0, p)), bt4(vload4(0, p + W)),
            bt4(vload4(0, p + 2 * W)), bt4(vload4(0, p + 3 * W)));
  }
  for (int tx = hi; tx < TW; tx++)
    input_tile(dst + tx, plane, src, H, W, y0, 2 * tx - 1);
}

// The arguments of both output transforms: has_b = 0 or has_r = 0, b or
// res are read but unused.
#define OUTPUT_ARGS                                                          \
  __global float *y, ulong yo, __global const float *m, ulong mo,            \
      ulong plane, __global const float *b, ulong bo, int has_b,             \
      __global const float *res, ulong ro, int has_r, int relu, int Co,      \
      int H, int W, int TW, int TY0, int NTY

__kernel void wino_output(OUTPUT_ARGS) {
  int tx = get_global_id(0), r = get_global_id(1), co = get_global_id(2);
  if (tx >= TW || r >= NTY || co >= Co) return;
  size_t T = (size_t)NTY * TW, img = (size_t)co * H * W;
  output_tile(y + yo + img, m + mo + (size_t)co * T + (size_t)r * TW + tx,
              plane, has_b ? b[bo + co] : 0.0f, res + ro + img, has_r, relu,
              H, W, 2 * (TY0 + r), 2 * tx);
}

__kernel void wino_output_rows(OUTPUT_ARGS) {
  int r = get_global_id(0), co = get_global_id(1);
  if (r >= NTY || co >= Co) return;
  size_t T = (size_t)NTY * TW, img = (size_t)co * H * W;
  __global const float *src = m + mo + (size_t)co * T + (size_t)r * TW;
  float bias = has_b ? b[bo + co] : 0.0f;
  for (int tx = 0; tx < TW; tx++)
    output_tile(y + yo + img, src + tx, plane, bias, res + ro + img, has_r,
                relu, H, W, 2 * (TY0 + r), 2 * tx);
}
