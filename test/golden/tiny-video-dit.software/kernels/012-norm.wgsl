// TinyVideoDiT: 012-norm, entry point main
// bindings (group 0):
//   @binding(0) x (read)
//   @binding(1) y (read_write)
// needs: subgroups

enable subgroups;
@group(0) @binding(0) var<storage, read> b_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_y: array<f32>;


@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
  if (row >= 2048u) { return; }
  var or: u32 = row;
  let o1 = or % 256u; or = or / 256u;
  let o0 = or;
  let base_x = o0 * 16384u + o1;
  let base_y = o0 * 16384u + o1;
  let pivot = b_x[base_x];
  var sum = 0.0;
  for (var e: u32 = lid; e < 64u; e += 8u) {
    var cr: u32 = e;
    let c0 = cr;
    sum += b_x[base_x + c0 * 256u] - pivot;
  }
  let mean = subgroupAdd(sum) / 64.0; // of x - pivot
  var sq = 0.0;
  for (var e: u32 = lid; e < 64u; e += 8u) {
    var cr: u32 = e;
    let c0 = cr;
    let d = ((b_x[base_x + c0 * 256u] - pivot) - mean);
    sq += d * d;
  }
  let rstd = inverseSqrt(subgroupAdd(sq) / 64.0 + 9.999999974752427e-7);
  for (var e: u32 = lid; e < 64u; e += 8u) {
    var cr: u32 = e;
    let c0 = cr;
    var v = ((b_x[base_x + c0 * 256u] - pivot) - mean) * rstd;
    b_y[base_y + c0 * 256u] = v;
  }
}
