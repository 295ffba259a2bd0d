"""PyTorch side of the parity tests (test/interop/torch-parity.test.ts).

  torch_parity.py JOBS.json
      for each job {model, cls, state, inputs, outdir, ignore?, output?, seed?}: builds the exported
      module MODEL.py's class CLS in float64, loads the state dict STATE.safetensors (strict, less
      the names in ignore), draws the inputs the job describes ({name, kind, shape, classes?}; video
      values rounded to float32, as the files hold them), runs one forward pass and writes
      OUTDIR/inputs.safetensors and OUTDIR/outputs.safetensors (outputs by name, F32). Prints one
      JSON line per job: the torch version, seconds of the forward pass, the parameter count.
      With objective {noisy, timestep}: also training_loss and its terms at those inputs (x0 = the
      noisy input, t = the timestep, the first sample's set to 0) with drawn noise, into
      OUTDIR/objective.json and objective.safetensors (noise, t).
"""
import argparse
import importlib.util
import json
import struct
import sys
import time

import numpy as np
import torch


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    types = {'F32': np.float32, 'I64': np.int64, 'I32': np.int32}
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, end = e['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(data[b:end], dtype=types[e['dtype']]).reshape(e['shape']).copy())
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu()
        a, dtype = (a.float().numpy(), 'F32') if a.is_floating_point() else (a.long().numpy(), 'I64')
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


def run(a):
    torch.set_default_dtype(torch.float64)
    spec = importlib.util.spec_from_file_location('exported', a.model)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = getattr(mod, a.cls)().eval()
    state = {k: v.double() for k, v in read_safetensors(a.state).items() if k not in a.ignore}
    model.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(a.seed)
    inputs = {}
    for i in a.inputs:
        if i['kind'] == 'label':
            inputs[i['name']] = torch.randint(0, i['classes'], i['shape'], generator=g)
        elif i['kind'] == 'timestep':
            inputs[i['name']] = torch.randint(0, 1000, i['shape'], generator=g).double()
        else:
            inputs[i['name']] = torch.randn(i['shape'], generator=g).float().double()
    start = time.time()
    with torch.no_grad():
        out = model(**inputs)
    seconds = time.time() - start
    outs = out if isinstance(out, dict) else {a.output: out}
    write_safetensors(f'{a.outdir}/inputs.safetensors', inputs)
    write_safetensors(f'{a.outdir}/outputs.safetensors', outs)
    if a.objective:
        # the exported objective at the drawn inputs: x0 = the noisy input's values, t = the timestep's
        noisy, step = a.objective['noisy'], a.objective['timestep']
        x0 = inputs[noisy]
        noise = torch.randn(x0.shape, generator=g).float().double()
        t = inputs[step].long().clone()
        t[0] = 0  # the first sample at t = 0: the vlb's decoder term
        rest = {k: v for k, v in inputs.items() if k not in (noisy, step)}
        with torch.no_grad():
            loss, terms = mod.training_loss(model, x0, mod.noise_schedule(), t=t, noise=noise, return_terms=True, **rest)
        write_safetensors(f'{a.outdir}/objective.safetensors', {'noise': noise, 't': t})
        json.dump({'loss': float(loss), 'terms': {k: float(v) for k, v in terms.items()}}, open(f'{a.outdir}/objective.json', 'w'))
    print(json.dumps({'model': a.model, 'torch': torch.__version__, 'seconds': seconds, 'params': sum(p.numel() for p in model.parameters())}))


def main():
    for job in json.load(open(sys.argv[1])):
        run(argparse.Namespace(**{'ignore': [], 'output': 'out', 'seed': 0, 'objective': None, **job}))


if __name__ == '__main__':
    sys.exit(main())
