// TinyVideoDiT: 019-elementwise, entry point main
// bindings (group 0):
//   @binding(0) in0 (read)
//   @binding(1) out (read_write)

@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_out: array<f32>;
fn vdm_gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608 * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * u));
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid;
  if (flat >= 524288u) { return; }
  var ir: u32 = flat;
  let i0 = ir;
  let v_in0 = b_in0[i0];
  let t0 = vdm_gelu_tanh(v_in0);
  b_out[i0] = t0;
}
