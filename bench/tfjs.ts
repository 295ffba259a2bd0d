// TensorFlow.js's WebGPU backend on the same Dawn GPU object vdm uses, as the comparison point.
import { loadDawn } from '../src/runtime/adapter.ts';
import { gpuWait } from '../src/runtime/wait.ts';

export type Tf = typeof import('@tensorflow/tfjs-core');
type TfTensor = import('@tensorflow/tfjs-core').Tensor;

interface WebGpuBackendInternals {
  device: GPUDevice;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export async function loadTfjs(): Promise<Tf> {
  // The backend looks for navigator.gpu, which Node 20 lacks: give it vdm's Dawn instance.
  (globalThis as { navigator?: unknown }).navigator = { gpu: loadDawn() };
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not initialise');
  // Keep a whole batch of iterations in one command buffer (one submit), like vdm's programs.
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 1 << 30);
  return tf;
}

/** Runs `op` n times and waits for the GPU once; returns elapsed ms. Intermediates are freed each time. */
export async function tfBatch(tf: Tf, op: () => TfTensor, n: number, software: boolean): Promise<number> {
  const backend = tf.backend() as unknown as WebGpuBackendInternals;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) tf.tidy(op).dispose();
  backend.endComputePassEncoder();
  backend.submitQueue();
  // Waited on as vdm waits (wait.ts), so the comparison is between kernels, not wait loops.
  await gpuWait(software, () => backend.device.queue.onSubmittedWorkDone());
  return performance.now() - t0;
}
