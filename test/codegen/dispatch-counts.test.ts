// Upper bounds on the dispatches of a forward pass (vdm compile prints the count): fusion and
// one-kernel splits keep them down; a change that adds dispatches to these models fails here.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkSpec, lowerModel } from '../../src/pipeline.ts';

const specs = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs');

// spec -> dispatches per forward pass: they were 106 and 283 before splits were one kernel and
// broadcast operands were inlined, activations became GEMM epilogues and repeated nodes shared
// one value (67 and 172), and before gate multiplies and residual adds became GEMM epilogues and
// adaLN's layer norm and modulate GEMM prologues (fuse-gemm.ts)
const BOUNDS: Record<string, number> = { 'tiny-video-dit.vdm': 36, 'dit-s-2.vdm': 83 };

for (const [file, bound] of Object.entries(BOUNDS)) {
  test(`${file}: at most ${bound} dispatches per forward pass, fewer than without fusion`, () => {
    const r = checkSpec(path.join(specs, file));
    assert.ok(r.ok);
    for (const target of ['gpu', 'software'] as const) {
      const fused = lowerModel(r.model, { target }).lowered.steps.length;
      const unfused = lowerModel(r.model, { target, fuse: false }).lowered.steps.length;
      assert.ok(fused <= bound, `${file} (${target}): ${fused} dispatches, bound ${bound}`);
      assert.ok(fused < unfused, `${file} (${target}): fused ${fused}, unfused ${unfused}`);
    }
  });
}

test.run();
