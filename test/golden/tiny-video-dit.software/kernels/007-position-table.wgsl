// TinyVideoDiT: 007-position-table, entry point main
// bindings (group 0):
//   @binding(0) out (read_write)

@group(0) @binding(0) var<storage, read_write> b_out: array<f32>;
// 32 x 32 -> 64-bit product as vec2u(high, low)
fn mul_wide(x: u32, y: u32) -> vec2u {
  let xl = x & 0xffffu; let xh = x >> 16u; let yl = y & 0xffffu; let yh = y >> 16u;
  let ll = xl * yl; let lh = xl * yh; let hl = xh * yl;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return vec2u(xh * yh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u), (ll & 0xffffu) | (mid << 16u));
}
// product of two 64-bit fractions, truncated (error < 3 * 2^-64)
fn fx_mul(a: vec2u, b: vec2u) -> vec2u {
  let p = mul_wide(a.x, b.x);
  let lo1 = p.y + mul_wide(a.x, b.y).x;
  let lo2 = lo1 + mul_wide(a.y, b.x).x;
  return vec2u(p.x + select(0u, 1u, lo1 < p.y) + select(0u, 1u, lo2 < lo1), lo2);
}
// b^k by binary powering (b^0 = 1 - 2^-64)
fn fx_pow(b: vec2u, k: u32) -> vec2u {
  var r = vec2u(0xffffffffu, 0xffffffffu);
  var p = b;
  var e = k;
  while (e != 0u) {
    if ((e & 1u) == 1u) { r = fx_mul(r, p); }
    e = e >> 1u;
    if (e != 0u) { p = fx_mul(p, p); }
  }
  return r;
}
// (sin, cos) of 2 pi (w / 2^32 + extra) with 0 <= extra < 0.25; Taylor series on |x| <= pi/4
fn sincos_turns(w: u32, extra: f32) -> vec2f {
  let u = f32(w & 0x3fffffffu) * 2.3283064e-10 + extra;
  let q = round(4.0 * u);
  let x = 6.2831853 * (u - 0.25 * q);
  let x2 = x * x;
  let s = x * (1.0 + x2 * (-0.16666667 + x2 * (0.0083333333 + x2 * (-0.00019841270 + x2 * 2.7557319e-6))));
  let c = 1.0 + x2 * (-0.5 + x2 * (0.041666667 + x2 * (-0.0013888889 + x2 * (2.4801587e-5 - x2 * 2.7557319e-7))));
  switch (((w >> 30u) + u32(q)) & 3u) {
    case 0u: { return vec2f(s, c); }
    case 1u: { return vec2f(c, -s); }
    case 2u: { return vec2f(-s, -c); }
    default: { return vec2f(-c, s); }
  }
}
// (sin, cos) of pos * b^k radians (|pos| < 2^32): the whole part of |pos| times the frequency in
// turns is reduced modulo 1 exactly in integers; the fractional part adds less than 1/6 turn.
fn sinusoid(pos: f32, b: vec2u, k: u32) -> vec2f {
  let f = fx_mul(fx_pow(b, k), vec2u(683565275u, 2475755008u));
  let a = abs(pos);
  let whole = floor(a);
  let n = u32(whole);
  let w = n * f.x + mul_wide(n, f.y).x;
  let sc = sincos_turns(w, (a - whole) * (f32(f.x) * 2.3283064e-10));
  return vec2f(select(sc.x, -sc.x, pos < 0.0), sc.y);
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid;
  if (flat >= 256u) { return; }
  let c = flat % 64u;
  let m = flat / 64u;
  var gr: u32 = m;
  let g0 = gr;
  var pos = 0.0;
  var j = 0u;
  var nfreq = 1u;
  var fbase = vec2u(0u, 0u);
  if (c < 64u) { pos = f32(g0); j = c - 0u; nfreq = 32u; fbase = vec2u(3220771104u, 2330775552u); }
  let sc = sinusoid(pos, fbase, j % nfreq);
  let v = select(sc.y, sc.x, j < nfreq); // sin half, then cos half
  b_out[0u + m * 64u + c * 1u] = v;
}
