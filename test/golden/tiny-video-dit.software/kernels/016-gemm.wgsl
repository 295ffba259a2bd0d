// TinyVideoDiT: 016-gemm, entry point main
// bindings (group 0):
//   @binding(0) a_buf (read)
//   @binding(1) b_buf (read)
//   @binding(2) bias_buf (read)
//   @binding(3) out_buf (read_write)
// needs: subgroups

enable subgroups;
@group(0) @binding(0) var<storage, read> a_buf: array<vec4f>;
@group(0) @binding(1) var<storage, read> b_buf: array<vec4f>;
@group(0) @binding(2) var<storage, read> bias_buf: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out_buf: array<vec4f>;

fn ldA(row: u32, k: u32) -> vec4f { return a_buf[row / 4u + k / 4u]; }
fn ldB(base: u32, k: u32, n: u32) -> vec4f { return b_buf[(base + (k) * 128u) / 4u + min(n, 124u) / 4u]; }
fn ld_bias(base: u32, i: u32) -> vec4f { return bias_buf[base / 4u + min(i, 124u) / 4u]; }
fn st_out(base: u32, n: u32, v: vec4f) { if (n < 128u) { out_buf[base / 4u + n / 4u] = v; } }
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wg.x * 8u;
  let n0 = (wg.y * 8u + lane) * 4u;
  let aBase = 0u;
  let bBase = 0u;
  let biasBase = 0u;
  let outBase = 0u;
  let ar0 = aBase + (min(m0 + 0u + lane, 7u)) * 64u;
  var acc0_0 = vec4f(0.0);
  var acc1_0 = vec4f(0.0);
  var acc2_0 = vec4f(0.0);
  var acc3_0 = vec4f(0.0);
  var acc4_0 = vec4f(0.0);
  var acc5_0 = vec4f(0.0);
  var acc6_0 = vec4f(0.0);
  var acc7_0 = vec4f(0.0);
  {
    for (var k = 0u; k < 64u; k += 4u) {
      let a0 = ldA(ar0, k);
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
    }
  }
  let bias0 = ld_bias(biasBase, n0 + 0u);
  var accs: array<vec4f, 8>;
  accs[0] = acc0_0;
  accs[1] = acc1_0;
  accs[2] = acc2_0;
  accs[3] = acc3_0;
  accs[4] = acc4_0;
  accs[5] = acc5_0;
  accs[6] = acc6_0;
  accs[7] = acc7_0;
  for (var r = 0u; r < min(8u, 8u - m0); r++) {
    let orow = outBase + (m0 + r) * 128u;
    st_out(orow, n0 + 0u, accs[r * 1u + 0u] + bias0);
  }
}
