// PyTorch through a Python interpreter that has it: reading and writing `.pt`/`.pth` state dicts
// (torch.load / torch.save), which vdm exchanges as safetensors. The interpreter is VDM_PYTHON when
// set, else the first of python3, /usr/bin/python3 and python that imports torch.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class TorchUnavailableError extends Error {
  override name = 'TorchUnavailableError';
}

export interface TorchPython {
  readonly python: string;
  readonly torchVersion: string;
}

let found: TorchPython | { readonly why: string } | undefined;

/** The interpreter with torch, or why there is none (each candidate tried, with its error). */
export function findTorchPython(): TorchPython | { readonly why: string } {
  if (found) return found;
  const env = process.env.VDM_PYTHON;
  const candidates = env ? [env] : ['python3', '/usr/bin/python3', 'python'];
  const tried: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return (found = { python, torchVersion: r.stdout.trim() });
    const err = r.error ? (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed' : r.error.message
      : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`);
    tried.push(`${python}: ${err}`);
  }
  const hint = env ? '' : '; set VDM_PYTHON to an interpreter with torch, or install it (Debian/Ubuntu: apt-get install python3-torch)';
  return (found = { why: `no Python with torch and numpy (${tried.join('; ')})${hint}` });
}

/** Reads a safetensors file with numpy only (no safetensors package needed). */
export const PY_READ_SAFETENSORS = `
import json, struct, numpy as np, torch
def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    types = {'F32': np.float32, 'F64': np.float64, 'I64': np.int64, 'I32': np.int32}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, end = e['data_offsets']
        a = np.frombuffer(data[b:end], dtype=types[e['dtype']]).reshape(e['shape'])
        out[name] = torch.from_numpy(a.copy())
    return out
def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu()
        if a.is_floating_point():
            a, dtype = a.float().numpy(), 'F32'
        else:
            a, dtype = a.long().numpy(), 'I64'
        b = a.tobytes()
        header[name] = {'dtype': dtype, 'shape': list(a.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
`;

function runPython(script: string, args: string[]): string {
  const py = findTorchPython();
  if (!('python' in py)) throw new TorchUnavailableError(py.why);
  const r = spawnSync(py.python, ['-c', script, ...args], { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const last = (r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ');
    throw new TorchUnavailableError(`${py.python} failed: ${last}`);
  }
  return r.stdout;
}

/**
 * A `.pt`/`.pth` file's state dict as a safetensors file in a temporary folder (the caller
 * removes it): the tensors of the file, or of its "ema", "model" or "state_dict" entry (in that
 * order, as DiT's sampler picks), floats as F32. Returns the file and which entry was taken.
 */
export function ptToSafetensors(file: string): { file: string; entry: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-pt-'));
  const out = path.join(dir, 'state.safetensors');
  const script = `${PY_READ_SAFETENSORS}
import sys
ckpt = torch.load(sys.argv[1], map_location='cpu')
entry = ''
if not all(torch.is_tensor(v) for v in ckpt.values()):
    for key in ('ema', 'model', 'state_dict'):
        if key in ckpt and isinstance(ckpt[key], dict):
            ckpt, entry = ckpt[key], key
            break
write_safetensors(sys.argv[2], {k: v for k, v in ckpt.items() if torch.is_tensor(v)})
print(entry)
`;
  try {
    const entry = runPython(script, [file, out]).trim();
    return { file: out, entry, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Writes a safetensors file's tensors as a `.pt` state dict (torch.save of a dict of tensors). */
export function safetensorsToPt(file: string, out: string): void {
  runPython(`${PY_READ_SAFETENSORS}
import sys
torch.save(read_safetensors(sys.argv[1]), sys.argv[2])
`, [file, out]);
}
