import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { openDevice, openGpu } from '../../src/runtime/gpu.ts';
import { doctorReport, formatDoctor } from '../../src/runtime/doctor.ts';

gpuTest('with an adapter: identity, kind, features and key limits', async () => {
  const gpu = await openGpu();
  const r = await doctorReport();
  assert.ok(r.ok);
  assert.is(r.adapter!.description, gpu.info.description);
  assert.is(r.software, gpu.software);
  assert.equal([...r.features!, ...r.missing!].sort(), ['shader-f16', 'subgroups', 'timestamp-query']);
  assert.is(r.limits!.maxStorageBufferBindingSize, gpu.limits.maxStorageBufferBindingSize);
  const text = formatDoctor(r);
  assert.match(text, /WebGPU adapter found/);
  assert.match(text, new RegExp(`maxStorageBufferBindingSize\\s+${gpu.limits.maxStorageBufferBindingSize}`));
  assert.match(text, gpu.software ? /software \(CPU\)/ : /hardware GPU/);
});

test('without an adapter: the text says what to install and how', async () => {
  const r = await doctorReport(() => openDevice({ requestAdapter: async () => null }));
  assert.is(r.ok, false);
  const text = formatDoctor(r);
  assert.match(text, /no usable WebGPU adapter/);
  assert.match(text, /`sudo bash scripts\/install-gpu\.sh` \(as root\)/);
  assert.match(text, /Mesa >= 25 lavapipe from bookworm-backports/);
  assert.match(text, /Mesa 22/);
});

test('doctorCommand under VDM_ADAPTER=none exits 1 with the message and no stack trace', () => {
  const script = "import('./src/runtime/doctor.ts').then(async (m) => { process.exitCode = await m.doctorCommand(); })";
  let status = 0;
  let out = '';
  try {
    execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: new URL('../..', import.meta.url).pathname, env: { ...process.env, VDM_ADAPTER: 'none' }, encoding: 'utf8', stdio: 'pipe',
    });
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    status = err.status;
    out = err.stdout + err.stderr;
  }
  assert.is(status, 1);
  assert.match(out, /VDM_ADAPTER=none/);
  assert.match(out, /install-gpu\.sh/);
  assert.not.match(out, /\n\s+at /, 'no stack trace');
});

test.run();
