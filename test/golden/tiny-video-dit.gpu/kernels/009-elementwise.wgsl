// TinyVideoDiT: 009-elementwise, entry point main
// bindings (group 0):
//   @binding(0) in0 (read)
//   @binding(1) out (read_write)

@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_out: array<f32>;
fn vdm_sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid;
  if (flat >= 512u) { return; }
  var ir: u32 = flat;
  let i0 = ir;
  let v_in0 = b_in0[i0];
  let t0 = v_in0 * vdm_sigmoid(v_in0);
  b_out[i0] = t0;
}
