// TinyVideoDiT: 012-attention, entry point main
// bindings (group 0):
//   @binding(0) q (read)
//   @binding(1) k (read)
//   @binding(2) v (read)
//   @binding(3) o (read_write)
// needs: subgroups

enable subgroups;
@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4f>;
const NQ = 256u; const NK = 256u; const DH4 = 4u; const R = 4u; const WG = 64u;
const TILES = 1u; const TOTAL = 32u;
fn load_q(base: u32, i: u32) -> vec4f { return q[(base >> 2u) + i]; }
fn load_k(base: u32, i: u32) -> vec4f { return k[(base >> 2u) + i]; }
fn load_v(base: u32, i: u32) -> vec4f { return v[(base >> 2u) + i]; }
fn store_o(base: u32, i: u32, x: vec4f) { o[(base >> 2u) + i] = x; }
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32) {
let wg = wid.x + (wid.y + wid.z * 1u) * 32u;
if (wg >= TOTAL) { return; }
let tile = wg % TILES;
var grem = wg / TILES;
let win2 = 0u;
let win1 = 0u;
let win0 = 0u;
let head = grem % 4u; grem = grem / 4u;
let b0 = grem;
let qb = 0u + head * 16u + b0 * 49152u; let kb = 64u + head * 16u + b0 * 49152u; let vb = 128u + head * 16u + b0 * 49152u; let ob = 0u + head * 16u + b0 * 16384u;
var m0 = -3.0e38; var l0 = 0.0; var qoff0 = qb; var ooff0 = ob;
let valid0 = tile * 256u + 0u * WG + lid < NQ;
var q0_rem = min(tile * 256u + 0u * WG + lid, NQ - 1u);
let q0_p2 = q0_rem % 8u; q0_rem = q0_rem / 8u;
let q0_p1 = q0_rem % 8u; q0_rem = q0_rem / 8u;
let q0_p0 = q0_rem;
let q0_c0 = q0_p0;
let q0_g0 = q0_c0;
let q0_c1 = q0_p1;
let q0_g1 = q0_c1;
let q0_c2 = q0_p2;
let q0_g2 = q0_c2;
qoff0 += q0_g0 * 12288u + q0_g1 * 1536u + q0_g2 * 192u;
ooff0 += q0_g0 * 4096u + q0_g1 * 512u + q0_g2 * 64u;
var q0_0 = vec4f(0.0); var a0_0 = vec4f(0.0); var q0_1 = vec4f(0.0); var a0_1 = vec4f(0.0); var q0_2 = vec4f(0.0); var a0_2 = vec4f(0.0); var q0_3 = vec4f(0.0); var a0_3 = vec4f(0.0);
for (var d = 0u; d < DH4; d++) { let x = load_q(qoff0, d) * 0.250000000; q0_0 = select(q0_0, x, d == 0u); q0_1 = select(q0_1, x, d == 1u); q0_2 = select(q0_2, x, d == 2u); q0_3 = select(q0_3, x, d == 3u); }
var m1 = -3.0e38; var l1 = 0.0; var qoff1 = qb; var ooff1 = ob;
let valid1 = tile * 256u + 1u * WG + lid < NQ;
var q1_rem = min(tile * 256u + 1u * WG + lid, NQ - 1u);
let q1_p2 = q1_rem % 8u; q1_rem = q1_rem / 8u;
let q1_p1 = q1_rem % 8u; q1_rem = q1_rem / 8u;
let q1_p0 = q1_rem;
let q1_c0 = q1_p0;
let q1_g0 = q1_c0;
let q1_c1 = q1_p1;
let q1_g1 = q1_c1;
let q1_c2 = q1_p2;
let q1_g2 = q1_c2;
qoff1 += q1_g0 * 12288u + q1_g1 * 1536u + q1_g2 * 192u;
ooff1 += q1_g0 * 4096u + q1_g1 * 512u + q1_g2 * 64u;
var q1_0 = vec4f(0.0); var a1_0 = vec4f(0.0); var q1_1 = vec4f(0.0); var a1_1 = vec4f(0.0); var q1_2 = vec4f(0.0); var a1_2 = vec4f(0.0); var q1_3 = vec4f(0.0); var a1_3 = vec4f(0.0);
for (var d = 0u; d < DH4; d++) { let x = load_q(qoff1, d) * 0.250000000; q1_0 = select(q1_0, x, d == 0u); q1_1 = select(q1_1, x, d == 1u); q1_2 = select(q1_2, x, d == 2u); q1_3 = select(q1_3, x, d == 3u); }
var m2 = -3.0e38; var l2 = 0.0; var qoff2 = qb; var ooff2 = ob;
let valid2 = tile * 256u + 2u * WG + lid < NQ;
var q2_rem = min(tile * 256u + 2u * WG + lid, NQ - 1u);
let q2_p2 = q2_rem % 8u; q2_rem = q2_rem / 8u;
let q2_p1 = q2_rem % 8u; q2_rem = q2_rem / 8u;
let q2_p0 = q2_rem;
let q2_c0 = q2_p0;
let q2_g0 = q2_c0;
let q2_c1 = q2_p1;
let q2_g1 = q2_c1;
let q2_c2 = q2_p2;
let q2_g2 = q2_c2;
qoff2 += q2_g0 * 12288u + q2_g1 * 1536u + q2_g2 * 192u;
ooff2 += q2_g0 * 4096u + q2_g1 * 512u + q2_g2 * 64u;
var q2_0 = vec4f(0.0); var a2_0 = vec4f(0.0); var q2_1 = vec4f(0.0); var a2_1 = vec4f(0.0); var q2_2 = vec4f(0.0); var a2_2 = vec4f(0.0); var q2_3 = vec4f(0.0); var a2_3 = vec4f(0.0);
for (var d = 0u; d < DH4; d++) { let x = load_q(qoff2, d) * 0.250000000; q2_0 = select(q2_0, x, d == 0u); q2_1 = select(q2_1, x, d == 1u); q2_2 = select(q2_2, x, d == 2u); q2_3 = select(q2_3, x, d == 3u); }
var m3 = -3.0e38; var l3 = 0.0; var qoff3 = qb; var ooff3 = ob;
let valid3 = tile * 256u + 3u * WG + lid < NQ;
var q3_rem = min(tile * 256u + 3u * WG + lid, NQ - 1u);
let q3_p2 = q3_rem % 8u; q3_rem = q3_rem / 8u;
let q3_p1 = q3_rem % 8u; q3_rem = q3_rem / 8u;
let q3_p0 = q3_rem;
let q3_c0 = q3_p0;
let q3_g0 = q3_c0;
let q3_c1 = q3_p1;
let q3_g1 = q3_c1;
let q3_c2 = q3_p2;
let q3_g2 = q3_c2;
qoff3 += q3_g0 * 12288u + q3_g1 * 1536u + q3_g2 * 192u;
ooff3 += q3_g0 * 4096u + q3_g1 * 512u + q3_g2 * 64u;
var q3_0 = vec4f(0.0); var a3_0 = vec4f(0.0); var q3_1 = vec4f(0.0); var a3_1 = vec4f(0.0); var q3_2 = vec4f(0.0); var a3_2 = vec4f(0.0); var q3_3 = vec4f(0.0); var a3_3 = vec4f(0.0);
for (var d = 0u; d < DH4; d++) { let x = load_q(qoff3, d) * 0.250000000; q3_0 = select(q3_0, x, d == 0u); q3_1 = select(q3_1, x, d == 1u); q3_2 = select(q3_2, x, d == 2u); q3_3 = select(q3_3, x, d == 3u); }
for (var j0 = 0u; j0 < NK; j0 += 1u) {
let e0 = min(lane + 0u, 3u); var koff0 = kb; var voff0 = vb;
var s0_rem = min(j0 + e0 / DH4, NK - 1u);
let s0_p2 = s0_rem % 8u; s0_rem = s0_rem / 8u;
let s0_p1 = s0_rem % 8u; s0_rem = s0_rem / 8u;
let s0_p0 = s0_rem;
let s0_c0 = s0_p0;
let s0_g0 = s0_c0;
let s0_c1 = s0_p1;
let s0_g1 = s0_c1;
let s0_c2 = s0_p2;
let s0_g2 = s0_c2;
koff0 += s0_g0 * 12288u + s0_g1 * 1536u + s0_g2 * 192u;
voff0 += s0_g0 * 12288u + s0_g1 * 1536u + s0_g2 * 192u;
let kl0 = load_k(koff0, e0 % DH4); let vl0 = load_v(voff0, e0 % DH4);
var x0_0 = 0.0; var x1_0 = 0.0; var x2_0 = 0.0; var x3_0 = 0.0;
{ let k = subgroupBroadcast(kl0, 0u); x0_0 += dot(q0_0, k); x1_0 += dot(q1_0, k); x2_0 += dot(q2_0, k); x3_0 += dot(q3_0, k); }
{ let k = subgroupBroadcast(kl0, 1u); x0_0 += dot(q0_1, k); x1_0 += dot(q1_1, k); x2_0 += dot(q2_1, k); x3_0 += dot(q3_1, k); }
{ let k = subgroupBroadcast(kl0, 2u); x0_0 += dot(q0_2, k); x1_0 += dot(q1_2, k); x2_0 += dot(q2_2, k); x3_0 += dot(q3_2, k); }
{ let k = subgroupBroadcast(kl0, 3u); x0_0 += dot(q0_3, k); x1_0 += dot(q1_3, k); x2_0 += dot(q2_3, k); x3_0 += dot(q3_3, k); }
let keep0_0 = true;
let mx0 = max(m0, select(-3.0e38, x0_0, keep0_0));
let c0 = exp(m0 - mx0); m0 = mx0;
let p0_0 = select(0.0, exp(x0_0 - mx0), keep0_0);
l0 = l0 * c0 + p0_0;
let keep1_0 = true;
let mx1 = max(m1, select(-3.0e38, x1_0, keep1_0));
let c1 = exp(m1 - mx1); m1 = mx1;
let p1_0 = select(0.0, exp(x1_0 - mx1), keep1_0);
l1 = l1 * c1 + p1_0;
let keep2_0 = true;
let mx2 = max(m2, select(-3.0e38, x2_0, keep2_0));
let c2 = exp(m2 - mx2); m2 = mx2;
let p2_0 = select(0.0, exp(x2_0 - mx2), keep2_0);
l2 = l2 * c2 + p2_0;
let keep3_0 = true;
let mx3 = max(m3, select(-3.0e38, x3_0, keep3_0));
let c3 = exp(m3 - mx3); m3 = mx3;
let p3_0 = select(0.0, exp(x3_0 - mx3), keep3_0);
l3 = l3 * c3 + p3_0;
{ let v0 = subgroupBroadcast(vl0, 0u); a0_0 = a0_0 * c0 + p0_0 * v0; a1_0 = a1_0 * c1 + p1_0 * v0; a2_0 = a2_0 * c2 + p2_0 * v0; a3_0 = a3_0 * c3 + p3_0 * v0; }
{ let v0 = subgroupBroadcast(vl0, 1u); a0_1 = a0_1 * c0 + p0_0 * v0; a1_1 = a1_1 * c1 + p1_0 * v0; a2_1 = a2_1 * c2 + p2_0 * v0; a3_1 = a3_1 * c3 + p3_0 * v0; }
{ let v0 = subgroupBroadcast(vl0, 2u); a0_2 = a0_2 * c0 + p0_0 * v0; a1_2 = a1_2 * c1 + p1_0 * v0; a2_2 = a2_2 * c2 + p2_0 * v0; a3_2 = a3_2 * c3 + p3_0 * v0; }
{ let v0 = subgroupBroadcast(vl0, 3u); a0_3 = a0_3 * c0 + p0_0 * v0; a1_3 = a1_3 * c1 + p1_0 * v0; a2_3 = a2_3 * c2 + p2_0 * v0; a3_3 = a3_3 * c3 + p3_0 * v0; }
}
if (valid0) { let inv = 1.0 / l0; for (var d = 0u; d < DH4; d++) { store_o(ooff0, d, select(select(select(a0_0, a0_1, d == 1u), a0_2, d == 2u), a0_3, d == 3u) * inv); } }
if (valid1) { let inv = 1.0 / l1; for (var d = 0u; d < DH4; d++) { store_o(ooff1, d, select(select(select(a1_0, a1_1, d == 1u), a1_2, d == 2u), a1_3, d == 3u) * inv); } }
if (valid2) { let inv = 1.0 / l2; for (var d = 0u; d < DH4; d++) { store_o(ooff2, d, select(select(select(a2_0, a2_1, d == 1u), a2_2, d == 2u), a2_3, d == 3u) * inv); } }
if (valid3) { let inv = 1.0 / l3; for (var d = 0u; d < DH4; d++) { store_o(ooff3, d, select(select(select(a3_0, a3_1, d == 1u), a3_2, d == 2u), a3_3, d == 3u) * inv); } }
}