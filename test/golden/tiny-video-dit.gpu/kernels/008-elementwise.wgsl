// TinyVideoDiT: 008-elementwise, entry point main
// bindings (group 0):
//   @binding(0) in0 (read)
//   @binding(1) in1 (read)
//   @binding(2) in2 (read)
//   @binding(3) out (read_write)

@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read> b_in1: array<f32>;
@group(0) @binding(2) var<storage, read> b_in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid;
  if (flat >= 131072u) { return; }
  var ir: u32 = flat;
  let i3 = ir % 64u; ir = ir / 64u;
  let i2 = ir % 4u; ir = ir / 4u;
  let i1 = ir % 64u; ir = ir / 64u;
  let i0 = ir;
  let v_in0 = b_in0[i0 * 16384u + i1 * 256u + i2 * 64u + i3];
  let v_in1 = b_in1[i1 + i3 * 64u];
  let v_in2 = b_in2[i1 + i2 * 64u];
  let t0 = v_in0 + v_in1;
  let t1 = t0 + v_in2;
  b_out[i0 * 16384u + i1 * 256u + i2 * 64u + i3] = t1;
}
