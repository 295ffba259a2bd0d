// TinyVideoDiT: 012-attention, entry point main
// bindings (group 0):
//   @binding(0) q (read)
//   @binding(1) k (read)
//   @binding(2) v (read)
//   @binding(3) o (read_write)

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4f>;
const NQ = 256u; const NK = 256u; const DH4 = 4u; const R = 1u; const WG = 64u;
const TILES = 4u; const TOTAL = 128u;
fn load_q(base: u32, i: u32) -> vec4f { return q[(base >> 2u) + i]; }
fn load_k(base: u32, i: u32) -> vec4f { return k[(base >> 2u) + i]; }
fn load_v(base: u32, i: u32) -> vec4f { return v[(base >> 2u) + i]; }
fn store_o(base: u32, i: u32, x: vec4f) { o[(base >> 2u) + i] = x; }
var<workgroup> kt: array<vec4f, 128>;
var<workgroup> vt: array<vec4f, 128>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
let wg = wid.x + (wid.y + wid.z * 1u) * 128u;
if (wg >= TOTAL) { return; }
let tile = wg % TILES;
var grem = wg / TILES;
let win2 = 0u;
let win1 = 0u;
let win0 = 0u;
let head = grem % 4u; grem = grem / 4u;
let b0 = grem;
let qb = 0u + head * 16u + b0 * 49152u; let kb = 64u + head * 16u + b0 * 49152u; let vb = 128u + head * 16u + b0 * 49152u; let ob = 0u + head * 16u + b0 * 16384u;
var qv: array<vec4f, R * DH4>; var acc: array<vec4f, R * DH4>;
var m: array<f32, R>; var l: array<f32, R>; var ooff: array<u32, R>;
for (var r = 0u; r < R; r++) {
  var qoff = qb; var oo = ob;
var qrem = min(tile * 64u + r * WG + lid, NQ - 1u);
let qp2 = qrem % 8u; qrem = qrem / 8u;
let qp1 = qrem % 8u; qrem = qrem / 8u;
let qp0 = qrem;
let qc0 = qp0;
let qg0 = qc0;
let qc1 = qp1;
let qg1 = qc1;
let qc2 = qp2;
let qg2 = qc2;
qoff += qg0 * 12288u + qg1 * 1536u + qg2 * 192u;
oo += qg0 * 4096u + qg1 * 512u + qg2 * 64u;
  ooff[r] = oo; m[r] = -3.0e38; l[r] = 0.0;
  for (var d = 0u; d < DH4; d++) { qv[r * DH4 + d] = load_q(qoff, d) * 0.250000000; acc[r * DH4 + d] = vec4f(0.0); }
}
for (var j0 = 0u; j0 < NK; j0 += 32u) {
for (var e = lid; e < 32u * DH4; e += WG) {
  let jj = e / DH4; let d = e % DH4;
  var koff = kb; var voff = vb;
var krem = min(j0 + jj, NK - 1u);
let kp2 = krem % 8u; krem = krem / 8u;
let kp1 = krem % 8u; krem = krem / 8u;
let kp0 = krem;
let kc0 = kp0;
let kg0 = kc0;
let kc1 = kp1;
let kg1 = kc1;
let kc2 = kp2;
let kg2 = kc2;
koff += kg0 * 12288u + kg1 * 1536u + kg2 * 192u;
voff += kg0 * 12288u + kg1 * 1536u + kg2 * 192u;
  kt[e] = load_k(koff, d); vt[e] = load_v(voff, d);
}
  workgroupBarrier();
  for (var jj = 0u; jj < min(32u, NK - j0); jj++) {
var s: array<f32, R>; for (var r = 0u; r < R; r++) { s[r] = 0.0; }
for (var d = 0u; d < DH4; d++) { let kd = kt[jj * DH4 + d]; for (var r = 0u; r < R; r++) { s[r] += dot(qv[r * DH4 + d], kd); } }
var pr: array<f32, R>;
for (var r = 0u; r < R; r++) {
  let sr = s[r];
  let keep = true;
  if (keep && sr > m[r]) { let f = exp(m[r] - sr); l[r] *= f; for (var d = 0u; d < DH4; d++) { acc[r * DH4 + d] *= f; } m[r] = sr; }
  pr[r] = select(0.0, exp(sr - m[r]), keep); l[r] += pr[r];
}
for (var d = 0u; d < DH4; d++) { let vd = vt[jj * DH4 + d]; for (var r = 0u; r < R; r++) { acc[r * DH4 + d] += pr[r] * vd; } }
  }
  workgroupBarrier();
}
for (var r = 0u; r < R; r++) {
  if (tile * 64u + r * WG + lid < NQ) { let inv = 1.0 / l[r]; for (var d = 0u; d < DH4; d++) { store_o(ooff[r], d, acc[r * DH4 + d] * inv); } }
}
}