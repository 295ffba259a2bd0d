// TinyVideoDiT: 014-gemm, entry point main
// bindings (group 0):
//   @binding(0) a_buf (read)
//   @binding(1) b_buf (read)
//   @binding(2) scale_buf (read)
//   @binding(3) shift_buf (read)
//   @binding(4) bias_buf (read)
//   @binding(5) out_buf (read_write)
// needs: subgroups

enable subgroups;
@group(0) @binding(0) var<storage, read> a_buf: array<f32>;
@group(0) @binding(1) var<storage, read> b_buf: array<vec4f>;
@group(0) @binding(2) var<storage, read> scale_buf: array<vec4f>;
@group(0) @binding(3) var<storage, read> shift_buf: array<vec4f>;
@group(0) @binding(4) var<storage, read> bias_buf: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> out_buf: array<f32>;
fn vdm_gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608 * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * u));
}
fn vdm_act(x: f32) -> f32 {
  let act0 = vdm_gelu_tanh(x);
  return act0;
}
fn vdm_act4(v: vec4f) -> vec4f { return vec4f(vdm_act(v.x), vdm_act(v.y), vdm_act(v.z), vdm_act(v.w)); }
fn ldA(row: u32, k: u32) -> vec4f {
  return vec4f(a_buf[row + (k + 0u) * 256u], a_buf[row + (k + 1u) * 256u], a_buf[row + (k + 2u) * 256u], a_buf[row + (k + 3u) * 256u]);
}
fn ldB(base: u32, k: u32, n: u32) -> vec4f { return b_buf[(base + (k) * 256u) / 4u + min(n, 252u) / 4u]; }
fn ld_scale(base: u32, i: u32) -> vec4f { return scale_buf[base / 4u + min(i, 60u) / 4u]; }
fn ld_shift(base: u32, i: u32) -> vec4f { return shift_buf[base / 4u + min(i, 60u) / 4u]; }
fn ld_bias(base: u32, i: u32) -> vec4f { return bias_buf[base / 4u + min(i, 252u) / 4u]; }
fn st_out(base: u32, n: u32, v: vec4f) {
  if (n + 0u < 256u) { out_buf[base + (n + 0u) * 256u] = v[0]; }
  if (n + 1u < 256u) { out_buf[base + (n + 1u) * 256u] = v[1]; }
  if (n + 2u < 256u) { out_buf[base + (n + 2u) * 256u] = v[2]; }
  if (n + 3u < 256u) { out_buf[base + (n + 3u) * 256u] = v[3]; }
}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  var bRest = wg.z;
  let bi0 = bRest % 8u;
  bRest = bRest / 8u;
  let m0 = wg.x * 32u;
  let n0 = (wg.y * 8u + lane) * 4u;
  let aBase = 0u + bi0 * 16384u;
  let bBase = 0u;
  let scaleBase = 256u + bi0 * 384u;
  let shiftBase = 192u + bi0 * 384u;
  let biasBase = 0u;
  let outBase = 0u + bi0 * 65536u;
  let ar0 = aBase + min(m0 + 0u + lane, 255u);
  let ar1 = aBase + min(m0 + 8u + lane, 255u);
  let ar2 = aBase + min(m0 + 16u + lane, 255u);
  let ar3 = aBase + min(m0 + 24u + lane, 255u);
  let x0 = ldA(ar0, 0u).x;
  var s1_0 = vec4f(0.0);
  var s2_0 = vec4f(0.0);
  let x1 = ldA(ar1, 0u).x;
  var s1_1 = vec4f(0.0);
  var s2_1 = vec4f(0.0);
  let x2 = ldA(ar2, 0u).x;
  var s1_2 = vec4f(0.0);
  var s2_2 = vec4f(0.0);
  let x3 = ldA(ar3, 0u).x;
  var s1_3 = vec4f(0.0);
  var s2_3 = vec4f(0.0);
  var c1_0 = vec4f(0.0);
  var c2_0 = vec4f(0.0);
  var acc0_0 = vec4f(0.0);
  var acc1_0 = vec4f(0.0);
  var acc2_0 = vec4f(0.0);
  var acc3_0 = vec4f(0.0);
  var acc4_0 = vec4f(0.0);
  var acc5_0 = vec4f(0.0);
  var acc6_0 = vec4f(0.0);
  var acc7_0 = vec4f(0.0);
  var acc8_0 = vec4f(0.0);
  var acc9_0 = vec4f(0.0);
  var acc10_0 = vec4f(0.0);
  var acc11_0 = vec4f(0.0);
  var acc12_0 = vec4f(0.0);
  var acc13_0 = vec4f(0.0);
  var acc14_0 = vec4f(0.0);
  var acc15_0 = vec4f(0.0);
  var acc16_0 = vec4f(0.0);
  var acc17_0 = vec4f(0.0);
  var acc18_0 = vec4f(0.0);
  var acc19_0 = vec4f(0.0);
  var acc20_0 = vec4f(0.0);
  var acc21_0 = vec4f(0.0);
  var acc22_0 = vec4f(0.0);
  var acc23_0 = vec4f(0.0);
  var acc24_0 = vec4f(0.0);
  var acc25_0 = vec4f(0.0);
  var acc26_0 = vec4f(0.0);
  var acc27_0 = vec4f(0.0);
  var acc28_0 = vec4f(0.0);
  var acc29_0 = vec4f(0.0);
  var acc30_0 = vec4f(0.0);
  var acc31_0 = vec4f(0.0);
  for (var k0 = 0u; k0 < 64u; k0 += 32u) {
    let gChunk = vec4f(1.0) + ld_scale(scaleBase, k0 + 4u * lane);
    let hChunk = ld_shift(shiftBase, k0 + 4u * lane);
    let steps = min(8u, (64u - k0 + 3u) / 4u);
    for (var s = 0u; s < steps; s++) {
      let k = k0 + 4u * s;
      let gk = subgroupShuffle(gChunk, s);
      let hk = subgroupShuffle(hChunk, s);
      let d0 = ldA(ar0, k) - vec4f(x0);
      s1_0 += d0;
      s2_0 = fma(d0, d0, s2_0);
      let a0 = d0 * gk;
      let d1 = ldA(ar1, k) - vec4f(x1);
      s1_1 += d1;
      s2_1 = fma(d1, d1, s2_1);
      let a1 = d1 * gk;
      let d2 = ldA(ar2, k) - vec4f(x2);
      s1_2 += d2;
      s2_2 = fma(d2, d2, s2_2);
      let a2 = d2 * gk;
      let d3 = ldA(ar3, k) - vec4f(x3);
      s1_3 += d3;
      s2_3 = fma(d3, d3, s2_3);
      let a3 = d3 * gk;
      let b0_0 = ldB(bBase, k + 0u, n0 + 0u);
      let b1_0 = ldB(bBase, k + 1u, n0 + 0u);
      let b2_0 = ldB(bBase, k + 2u, n0 + 0u);
      let b3_0 = ldB(bBase, k + 3u, n0 + 0u);
      c1_0 = fma(b0_0, vec4f(gk.x), fma(b1_0, vec4f(gk.y), fma(b2_0, vec4f(gk.z), fma(b3_0, vec4f(gk.w), c1_0))));
      c2_0 = fma(b0_0, vec4f(hk.x), fma(b1_0, vec4f(hk.y), fma(b2_0, vec4f(hk.z), fma(b3_0, vec4f(hk.w), c2_0))));
      { let a = subgroupBroadcast(a0, 0u);
        acc0_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc0_0))));
      }
      { let a = subgroupBroadcast(a0, 1u);
        acc1_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc1_0))));
      }
      { let a = subgroupBroadcast(a0, 2u);
        acc2_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc2_0))));
      }
      { let a = subgroupBroadcast(a0, 3u);
        acc3_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc3_0))));
      }
      { let a = subgroupBroadcast(a0, 4u);
        acc4_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc4_0))));
      }
      { let a = subgroupBroadcast(a0, 5u);
        acc5_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc5_0))));
      }
      { let a = subgroupBroadcast(a0, 6u);
        acc6_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc6_0))));
      }
      { let a = subgroupBroadcast(a0, 7u);
        acc7_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc7_0))));
      }
      { let a = subgroupBroadcast(a1, 0u);
        acc8_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc8_0))));
      }
      { let a = subgroupBroadcast(a1, 1u);
        acc9_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc9_0))));
      }
      { let a = subgroupBroadcast(a1, 2u);
        acc10_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc10_0))));
      }
      { let a = subgroupBroadcast(a1, 3u);
        acc11_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc11_0))));
      }
      { let a = subgroupBroadcast(a1, 4u);
        acc12_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc12_0))));
      }
      { let a = subgroupBroadcast(a1, 5u);
        acc13_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc13_0))));
      }
      { let a = subgroupBroadcast(a1, 6u);
        acc14_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc14_0))));
      }
      { let a = subgroupBroadcast(a1, 7u);
        acc15_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc15_0))));
      }
      { let a = subgroupBroadcast(a2, 0u);
        acc16_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc16_0))));
      }
      { let a = subgroupBroadcast(a2, 1u);
        acc17_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc17_0))));
      }
      { let a = subgroupBroadcast(a2, 2u);
        acc18_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc18_0))));
      }
      { let a = subgroupBroadcast(a2, 3u);
        acc19_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc19_0))));
      }
      { let a = subgroupBroadcast(a2, 4u);
        acc20_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc20_0))));
      }
      { let a = subgroupBroadcast(a2, 5u);
        acc21_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc21_0))));
      }
      { let a = subgroupBroadcast(a2, 6u);
        acc22_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc22_0))));
      }
      { let a = subgroupBroadcast(a2, 7u);
        acc23_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc23_0))));
      }
      { let a = subgroupBroadcast(a3, 0u);
        acc24_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc24_0))));
      }
      { let a = subgroupBroadcast(a3, 1u);
        acc25_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc25_0))));
      }
      { let a = subgroupBroadcast(a3, 2u);
        acc26_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc26_0))));
      }
      { let a = subgroupBroadcast(a3, 3u);
        acc27_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc27_0))));
      }
      { let a = subgroupBroadcast(a3, 4u);
        acc28_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc28_0))));
      }
      { let a = subgroupBroadcast(a3, 5u);
        acc29_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc29_0))));
      }
      { let a = subgroupBroadcast(a3, 6u);
        acc30_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc30_0))));
      }
      { let a = subgroupBroadcast(a3, 7u);
        acc31_0 = fma(vec4f(a.w), b3_0, fma(vec4f(a.z), b2_0, fma(vec4f(a.y), b1_0, fma(vec4f(a.x), b0_0, acc31_0))));
      }
    }
  }
  let bias0 = ld_bias(biasBase, n0 + 0u);
  let m1_0 = dot(s1_0, vec4f(1.0)) / 64.0;
  let rstd0 = inverseSqrt(max(dot(s2_0, vec4f(1.0)) / 64.0 - m1_0 * m1_0, 0.0) + 9.999999974752427e-7);
  let m1_1 = dot(s1_1, vec4f(1.0)) / 64.0;
  let rstd1 = inverseSqrt(max(dot(s2_1, vec4f(1.0)) / 64.0 - m1_1 * m1_1, 0.0) + 9.999999974752427e-7);
  let m1_2 = dot(s1_2, vec4f(1.0)) / 64.0;
  let rstd2 = inverseSqrt(max(dot(s2_2, vec4f(1.0)) / 64.0 - m1_2 * m1_2, 0.0) + 9.999999974752427e-7);
  let m1_3 = dot(s1_3, vec4f(1.0)) / 64.0;
  let rstd3 = inverseSqrt(max(dot(s2_3, vec4f(1.0)) / 64.0 - m1_3 * m1_3, 0.0) + 9.999999974752427e-7);
  var stats: array<vec2f, 32>;
  stats[0] = vec2f(subgroupBroadcast(m1_0, 0u), subgroupBroadcast(rstd0, 0u));
  stats[1] = vec2f(subgroupBroadcast(m1_0, 1u), subgroupBroadcast(rstd0, 1u));
  stats[2] = vec2f(subgroupBroadcast(m1_0, 2u), subgroupBroadcast(rstd0, 2u));
  stats[3] = vec2f(subgroupBroadcast(m1_0, 3u), subgroupBroadcast(rstd0, 3u));
  stats[4] = vec2f(subgroupBroadcast(m1_0, 4u), subgroupBroadcast(rstd0, 4u));
  stats[5] = vec2f(subgroupBroadcast(m1_0, 5u), subgroupBroadcast(rstd0, 5u));
  stats[6] = vec2f(subgroupBroadcast(m1_0, 6u), subgroupBroadcast(rstd0, 6u));
  stats[7] = vec2f(subgroupBroadcast(m1_0, 7u), subgroupBroadcast(rstd0, 7u));
  stats[8] = vec2f(subgroupBroadcast(m1_1, 0u), subgroupBroadcast(rstd1, 0u));
  stats[9] = vec2f(subgroupBroadcast(m1_1, 1u), subgroupBroadcast(rstd1, 1u));
  stats[10] = vec2f(subgroupBroadcast(m1_1, 2u), subgroupBroadcast(rstd1, 2u));
  stats[11] = vec2f(subgroupBroadcast(m1_1, 3u), subgroupBroadcast(rstd1, 3u));
  stats[12] = vec2f(subgroupBroadcast(m1_1, 4u), subgroupBroadcast(rstd1, 4u));
  stats[13] = vec2f(subgroupBroadcast(m1_1, 5u), subgroupBroadcast(rstd1, 5u));
  stats[14] = vec2f(subgroupBroadcast(m1_1, 6u), subgroupBroadcast(rstd1, 6u));
  stats[15] = vec2f(subgroupBroadcast(m1_1, 7u), subgroupBroadcast(rstd1, 7u));
  stats[16] = vec2f(subgroupBroadcast(m1_2, 0u), subgroupBroadcast(rstd2, 0u));
  stats[17] = vec2f(subgroupBroadcast(m1_2, 1u), subgroupBroadcast(rstd2, 1u));
  stats[18] = vec2f(subgroupBroadcast(m1_2, 2u), subgroupBroadcast(rstd2, 2u));
  stats[19] = vec2f(subgroupBroadcast(m1_2, 3u), subgroupBroadcast(rstd2, 3u));
  stats[20] = vec2f(subgroupBroadcast(m1_2, 4u), subgroupBroadcast(rstd2, 4u));
  stats[21] = vec2f(subgroupBroadcast(m1_2, 5u), subgroupBroadcast(rstd2, 5u));
  stats[22] = vec2f(subgroupBroadcast(m1_2, 6u), subgroupBroadcast(rstd2, 6u));
  stats[23] = vec2f(subgroupBroadcast(m1_2, 7u), subgroupBroadcast(rstd2, 7u));
  stats[24] = vec2f(subgroupBroadcast(m1_3, 0u), subgroupBroadcast(rstd3, 0u));
  stats[25] = vec2f(subgroupBroadcast(m1_3, 1u), subgroupBroadcast(rstd3, 1u));
  stats[26] = vec2f(subgroupBroadcast(m1_3, 2u), subgroupBroadcast(rstd3, 2u));
  stats[27] = vec2f(subgroupBroadcast(m1_3, 3u), subgroupBroadcast(rstd3, 3u));
  stats[28] = vec2f(subgroupBroadcast(m1_3, 4u), subgroupBroadcast(rstd3, 4u));
  stats[29] = vec2f(subgroupBroadcast(m1_3, 5u), subgroupBroadcast(rstd3, 5u));
  stats[30] = vec2f(subgroupBroadcast(m1_3, 6u), subgroupBroadcast(rstd3, 6u));
  stats[31] = vec2f(subgroupBroadcast(m1_3, 7u), subgroupBroadcast(rstd3, 7u));
  var accs: array<vec4f, 32>;
  accs[0] = acc0_0;
  accs[1] = acc1_0;
  accs[2] = acc2_0;
  accs[3] = acc3_0;
  accs[4] = acc4_0;
  accs[5] = acc5_0;
  accs[6] = acc6_0;
  accs[7] = acc7_0;
  accs[8] = acc8_0;
  accs[9] = acc9_0;
  accs[10] = acc10_0;
  accs[11] = acc11_0;
  accs[12] = acc12_0;
  accs[13] = acc13_0;
  accs[14] = acc14_0;
  accs[15] = acc15_0;
  accs[16] = acc16_0;
  accs[17] = acc17_0;
  accs[18] = acc18_0;
  accs[19] = acc19_0;
  accs[20] = acc20_0;
  accs[21] = acc21_0;
  accs[22] = acc22_0;
  accs[23] = acc23_0;
  accs[24] = acc24_0;
  accs[25] = acc25_0;
  accs[26] = acc26_0;
  accs[27] = acc27_0;
  accs[28] = acc28_0;
  accs[29] = acc29_0;
  accs[30] = acc30_0;
  accs[31] = acc31_0;
  for (var r = 0u; r < min(32u, 256u - m0); r++) {
    let orow = outBase + m0 + r;
    let st = stats[r];
    st_out(orow, n0 + 0u, vdm_act4((fma(vec4f(-st.x), c1_0, accs[r * 1u + 0u]) * st.y + c2_0) + bias0));
  }
}
