// TinyVideoDiT: 018-elementwise, entry point main
// bindings (group 0):
//   @binding(0) x (read)
//   @binding(1) y (read_write)

@group(0) @binding(0) var<storage, read> b_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid;
  if (flat >= 49152u) { return; }
  var ir: u32 = flat;
  let i6 = ir % 2u; ir = ir / 2u;
  let i5 = ir % 8u; ir = ir / 8u;
  let i4 = ir % 2u; ir = ir / 2u;
  let i3 = ir % 8u; ir = ir / 8u;
  let i2 = ir % 2u; ir = ir / 2u;
  let i1 = ir % 12u; ir = ir / 12u;
  let i0 = ir;
  let v_x = b_x[i0 * 6144u + i1 * 64u + i2 * 3072u + i3 * 8u + i4 * 1536u + i5 + i6 * 768u];
  b_y[i0 * 6144u + i1 * 512u + i2 * 256u + i3 * 32u + i4 * 16u + i5 * 2u + i6] = v_x;
}
