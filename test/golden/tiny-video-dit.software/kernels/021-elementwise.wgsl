// TinyVideoDiT: 021-elementwise, entry point main
// bindings (group 0):
//   @binding(0) x0 (read)
//   @binding(1) out0 (read_write)
//   @binding(2) out1 (read_write)

@group(0) @binding(0) var<storage, read> b_x0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_out0: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_out1: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid;
  if (flat >= 512u) { return; }
  var ir: u32 = flat;
  let i1 = ir % 64u; ir = ir / 64u;
  let i0 = ir;
  let v_x0 = b_x0[i0 * 128u + i1];
  let v_x1 = b_x0[64u + i0 * 128u + i1];
  b_out0[i0 * 64u + i1] = v_x0;
  b_out1[i0 * 64u + i1] = v_x1;
}
