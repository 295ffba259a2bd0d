// TinyVideoDiT: 012-norm, entry point main
// bindings (group 0):
//   @binding(0) x (read)
//   @binding(1) y (read_write)

@group(0) @binding(0) var<storage, read> b_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_y: array<f32>;
var<workgroup> red: array<f32, 64>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s: u32 = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red is reused by the next call
  return total;
}

@compute @workgroup_size(64)
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
  for (var e: u32 = lid; e < 64u; e += 64u) {
    var cr: u32 = e;
    let c0 = cr;
    sum += b_x[base_x + c0 * 256u] - pivot;
  }
  let mean = workgroup_sum(sum, lid) / 64.0; // of x - pivot
  var sq = 0.0;
  for (var e: u32 = lid; e < 64u; e += 64u) {
    var cr: u32 = e;
    let c0 = cr;
    let d = ((b_x[base_x + c0 * 256u] - pivot) - mean);
    sq += d * d;
  }
  let rstd = inverseSqrt(workgroup_sum(sq, lid) / 64.0 + 9.999999974752427e-7);
  for (var e: u32 = lid; e < 64u; e += 64u) {
    var cr: u32 = e;
    let c0 = cr;
    var v = ((b_x[base_x + c0 * 256u] - pivot) - mean) * rstd;
    b_y[base_y + c0 * 256u] = v;
  }
}
