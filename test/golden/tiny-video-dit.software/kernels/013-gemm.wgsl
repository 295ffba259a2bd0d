// TinyVideoDiT: 013-gemm, entry point main
// bindings (group 0):
//   @binding(0) a_buf (read)
//   @binding(1) b_buf (read)
//   @binding(2) bias_buf (read)
//   @binding(3) gate_buf (read)
//   @binding(4) residual_buf (read)
//   @binding(5) out_buf (read_write)
// needs: subgroups

enable subgroups;
@group(0) @binding(0) var<storage, read> a_buf: array<vec4f>;
@group(0) @binding(1) var<storage, read> b_buf: array<vec4f>;
@group(0) @binding(2) var<storage, read> bias_buf: array<vec4f>;
@group(0) @binding(3) var<storage, read> gate_buf: array<vec4f>;
@group(0) @binding(4) var<storage, read> residual_buf: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_buf: array<f32>;

fn ldA(row: u32, k: u32) -> vec4f { return a_buf[row / 4u + k / 4u]; }
fn ldB(base: u32, k: u32, n: u32) -> vec4f { return b_buf[(base + (k) * 64u) / 4u + min(n, 60u) / 4u]; }
fn ld_bias(base: u32, i: u32) -> vec4f { return bias_buf[base / 4u + min(i, 60u) / 4u]; }
fn ld_gate(base: u32, i: u32) -> vec4f { return gate_buf[base / 4u + min(i, 60u) / 4u]; }
fn ld_residual(base: u32, n: u32) -> vec4f {
  return vec4f(residual_buf[base + (min(n + 0u, 63u)) * 256u], residual_buf[base + (min(n + 1u, 63u)) * 256u], residual_buf[base + (min(n + 2u, 63u)) * 256u], residual_buf[base + (min(n + 3u, 63u)) * 256u]);
}
fn st_out(base: u32, n: u32, v: vec4f) {
  if (n + 0u < 64u) { out_buf[base + (n + 0u) * 256u] = v[0]; }
  if (n + 1u < 64u) { out_buf[base + (n + 1u) * 256u] = v[1]; }
  if (n + 2u < 64u) { out_buf[base + (n + 2u) * 256u] = v[2]; }
  if (n + 3u < 64u) { out_buf[base + (n + 3u) * 256u] = v[3]; }
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
  let biasBase = 0u;
  let gateBase = 128u + bi0 * 384u;
  let residualBase = 0u + bi0 * 16384u;
  let outBase = 0u + bi0 * 16384u;
  let ar0 = aBase + (min(m0 + 0u + lane, 255u)) * 64u;
  let ar1 = aBase + (min(m0 + 8u + lane, 255u)) * 64u;
  let ar2 = aBase + (min(m0 + 16u + lane, 255u)) * 64u;
  let ar3 = aBase + (min(m0 + 24u + lane, 255u)) * 64u;
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
  {
    for (var k = 0u; k < 64u; k += 4u) {
      let a0 = ldA(ar0, k);
      let a1 = ldA(ar1, k);
      let a2 = ldA(ar2, k);
      let a3 = ldA(ar3, k);
      let b0_0 = ldB(bBase, k + 0u, n0 + 0u);
      let b1_0 = ldB(bBase, k + 1u, n0 + 0u);
      let b2_0 = ldB(bBase, k + 2u, n0 + 0u);
      let b3_0 = ldB(bBase, k + 3u, n0 + 0u);
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
  let gate0 = ld_gate(gateBase, n0 + 0u);
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
    let rrow = residualBase + m0 + r;
    st_out(orow, n0 + 0u, (accs[r * 1u + 0u] + bias0) * gate0 + ld_residual(rrow, n0 + 0u));
  }
}
