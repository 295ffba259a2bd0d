// TinyVideoDiT: 015-gemm, entry point main
// bindings (group 0):
//   @binding(0) a_buf (read)
//   @binding(1) b_buf (read)
//   @binding(2) bias_buf (read)
//   @binding(3) gate_buf (read)
//   @binding(4) residual_buf (read)
//   @binding(5) out_buf (read_write)

@group(0) @binding(0) var<storage, read> a_buf: array<f32>;
@group(0) @binding(1) var<storage, read> b_buf: array<f32>;
@group(0) @binding(2) var<storage, read> bias_buf: array<f32>;
@group(0) @binding(3) var<storage, read> gate_buf: array<f32>;
@group(0) @binding(4) var<storage, read> residual_buf: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_buf: array<f32>;

var<workgroup> tileA: array<f32, 1024>;
var<workgroup> tileB: array<f32, 1024>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  let t = lid.y * 16u + lid.x;
  var bRest = wg.z;
  let bi0 = bRest % 8u;
  bRest = bRest / 8u;
  let aBase = 0u + bi0 * 65536u;
  let bBase = 0u;
  let biasBase = 0u;
  let gateBase = 320u + bi0 * 384u;
  let residualBase = 0u + bi0 * 16384u;
  let outBase = 0u + bi0 * 16384u;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < 256u; k0 += 16u) {
    for (var e = t; e < 1024u; e += 256u) {
      let mm = e / 16u;
      let k = k0 + e % 16u;
      let m = min(m0 + mm, 255u);
      let kc = min(k, 255u);
      tileA[(e % 16u) * 64u + mm] = select(0.0, a_buf[aBase + m + (kc) * 256u], k < 256u);
    }
    for (var e = t; e < 1024u; e += 256u) {
      let k = k0 + e / 64u;
      let n = min(n0 + e % 64u, 63u);
      let kc = min(k, 255u);
      tileB[e] = select(0.0, b_buf[bBase + (kc) * 64u + n], k < 256u);
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
      if (m < 256u && n < 64u) { out_buf[outBase + m + (n) * 256u] = (acc[i][j] + bias_buf[biasBase + n]) * gate_buf[gateBase + n] + residual_buf[residualBase + m + (n) * 256u]; }
    }
  }
}
