import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { acquireAdapter, adapterModeFromEnv, isSoftwareAdapter, NoAdapterError } from '../../src/runtime/adapter.ts';
import { openDevice, openGpu } from '../../src/runtime/gpu.ts';

const noAdapters = { requestAdapter: async () => null };

function fakeAdapter(description: string, isFallbackAdapter = false) {
  return { info: { vendor: 'v', architecture: 'a', device: 'd', description, isFallbackAdapter } } as unknown as GPUAdapter;
}

test('no adapter: NoAdapterError says how to install one', async () => {
  let err: unknown;
  try { await openDevice(noAdapters); } catch (e) { err = e; }
  assert.instance(err, NoAdapterError);
  const message = (err as Error).message;
  assert.match(message, /no WebGPU adapter found/);
  assert.match(message, /bash scripts\/install-gpu\.sh/);
  assert.match(message, /Mesa >= 25/);
});

test('VDM_ADAPTER=none forces the no-adapter path even when an adapter exists', async () => {
  const real = { requestAdapter: async () => fakeAdapter('Some GPU') };
  let err: unknown;
  try { await acquireAdapter(real, adapterModeFromEnv({ VDM_ADAPTER: 'none' })); } catch (e) { err = e; }
  assert.instance(err, NoAdapterError);
  assert.match((err as Error).message, /VDM_ADAPTER=none/);
  assert.throws(() => adapterModeFromEnv({ VDM_ADAPTER: 'gpu0' }), /must be one of auto, hardware, software, none/);
});

test('hardware is preferred over a software adapter; software is the fallback', async () => {
  const soft = fakeAdapter('llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)');
  const hard = fakeAdapter('NVIDIA GeForce');
  // The software adapter answers the first request (as Dawn does on a machine with both).
  const both = { requestAdapter: async (o?: GPURequestAdapterOptions) => (o?.powerPreference === 'low-power' ? hard : soft) };
  assert.is((await acquireAdapter(both)).adapter, hard);
  assert.is((await acquireAdapter(both, 'software')).adapter, soft);
  const onlySoft = { requestAdapter: async () => soft };
  const chosen = await acquireAdapter(onlySoft);
  assert.is(chosen.adapter, soft);
  assert.is(chosen.software, true);
  let err: unknown;
  try { await acquireAdapter(onlySoft, 'hardware'); } catch (e) { err = e; }
  assert.instance(err, NoAdapterError);
});

test('software adapters are recognised from adapter.info', () => {
  assert.ok(isSoftwareAdapter({ description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }));
  assert.ok(isSoftwareAdapter({ vendor: 'google', description: 'SwiftShader Device' }));
  assert.ok(isSoftwareAdapter({ description: 'x', isFallbackAdapter: true }));
  assert.not.ok(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' }));
});

gpuTest('the real device carries the adapter limits and the wanted features it has', async () => {
  const gpu = await openGpu();
  assert.is(gpu.limits.maxStorageBufferBindingSize, gpu.adapter.limits.maxStorageBufferBindingSize);
  assert.is(gpu.limits.maxBufferSize, gpu.adapter.limits.maxBufferSize);
  for (const f of ['shader-f16', 'subgroups', 'timestamp-query']) {
    assert.is(gpu.features.has(f), gpu.adapter.features.has(f), f);
    assert.is(gpu.device.features.has(f), gpu.adapter.features.has(f), f);
  }
  assert.is(gpu.software, isSoftwareAdapter(gpu.info));
});

test.run();
