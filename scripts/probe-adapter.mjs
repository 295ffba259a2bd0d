// Exits 0 when the webgpu package can open an adapter, 1 otherwise. Used by install-gpu.sh.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
globalThis.__vdmGpu = gpu; // keep alive: dawn.node crashes when this is collected
const adapter = await gpu.requestAdapter();
if (!adapter) process.exit(1);
const info = adapter.info ?? {};
console.log(`${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.trim());
process.exit(0);
