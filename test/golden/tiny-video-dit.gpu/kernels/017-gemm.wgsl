// TinyVideoDiT: 017-gemm, entry point main
// bindings (group 0):
//   @binding(0) a_buf (read)
//   @binding(1) b_buf (read)
//   @binding(2) scale_buf (read)
//   @binding(3) shift_buf (read)
//   @binding(4) bias_buf (read)
//   @binding(5) out_buf (read_write)

@group(0) @binding(0) var<storage, read> a_buf: array<f32>;
@group(0) @binding(1) var<storage, read> b_buf: array<f32>;
@group(0) @binding(2) var<storage, read> scale_buf: array<f32>;
@group(0) @binding(3) var<storage, read> shift_buf: array<f32>;
@group(0) @binding(4) var<storage, read> bias_buf: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_buf: array<f32>;

var<workgroup> tileA: array<f32, 1024>;
var<workgroup> tileB: array<f32, 1024>;
var<workgroup> part1: array<f32, 256>;
var<workgroup> part2: array<f32, 256>;
var<workgroup> rowX: array<f32, 64>;
var<workgroup> rowRstd: array<f32, 64>;
var<workgroup> rowOff: array<f32, 64>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  let t = lid.y * 16u + lid.x;
  var bRest = wg.z;
  let bi0 = bRest % 8u;
  bRest = bRest / 8u;
  let aBase = 0u + bi0 * 16384u;
  let bBase = 0u;
  let scaleBase = 64u + bi0 * 128u;
  let shiftBase = 0u + bi0 * 128u;
  let biasBase = 0u;
  let outBase = 0u + bi0 * 6144u;
  for (var e = t; e < 256u; e += 256u) {
    let m = min(m0 + e / 4u, 255u);
    let x0 = a_buf[aBase + m + (0u) * 256u];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = e % 4u; k < 64u; k += 4u) { let d = a_buf[aBase + m + (k) * 256u] - x0; s1 += d; s2 += d * d; }
    part1[e] = s1;
    part2[e] = s2;
  }
  workgroupBarrier();
  for (var r = t; r < 64u; r += 256u) {
    var s1 = 0.0;
    var s2 = 0.0;
    for (var p = 0u; p < 4u; p++) { s1 += part1[r * 4u + p]; s2 += part2[r * 4u + p]; }
    let m1 = s1 / 64.0;
    let rstd = inverseSqrt(max(s2 / 64.0 - m1 * m1, 0.0) + 9.999999974752427e-7);
    rowX[r] = a_buf[aBase + min(m0 + r, 255u) + (0u) * 256u];
    rowRstd[r] = rstd;
    rowOff[r] = -m1 * rstd;
  }
  workgroupBarrier();
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < 64u; k0 += 16u) {
    for (var e = t; e < 1024u; e += 256u) {
      let mm = e / 16u;
      let k = k0 + e % 16u;
      let m = min(m0 + mm, 255u);
      let kc = min(k, 63u);
      tileA[(e % 16u) * 64u + mm] = select(0.0, fma(a_buf[aBase + m + (kc) * 256u] - rowX[mm], rowRstd[mm], rowOff[mm]) * (1.0 + scale_buf[scaleBase + kc]) + shift_buf[shiftBase + kc], k < 64u);
    }
    for (var e = t; e < 1024u; e += 256u) {
      let k = k0 + e / 64u;
      let n = min(n0 + e % 64u, 23u);
      let kc = min(k, 63u);
      tileB[e] = select(0.0, b_buf[bBase + (kc) * 24u + n], k < 64u);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var a: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = tileA[kk * 64u + lid.y + i * 16u]; }
      for (var j = 0u; j < 4u; j++) {
        let bv = tileB[kk * 64u + lid.x + j * 16u];
        for (var i = 0u; i < 4u; i++) { acc[i][j] = fma(a[i], bv, acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + i * 16u;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + j * 16u;
      if (m < 256u && n < 24u) { out_buf[outBase + m + (n) * 256u] = acc[i][j] + bias_buf[biasBase + n]; }
    }
  }
}
