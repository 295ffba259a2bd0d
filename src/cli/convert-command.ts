// `vdm convert IN -o OUT --spec SPEC [--map dit|latte|swin|diffusers|opensora|cogvideox|MAP.json] [--to torch|vdm]`: a PyTorch state dict
// (safetensors, or .pt/.pth through Python with torch) to a vdm checkpoint and back, by rule.
import type { Argv, CommandModule } from 'yargs';
import { ConvertError } from '../interop/convert.ts';
import { convertFile } from '../interop/convert-files.ts';
import { loadNameMap, NameMapError } from '../interop/name-maps.ts';
import { TorchUnavailableError } from '../interop/python.ts';
import { checkWritable, FileError } from '../runtime/files.ts';
import { SafetensorsError } from '../runtime/safetensors.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport } from './report.ts';

interface ConvertArgs {
  input: string;
  out?: string;
  spec?: string;
  map?: string;
  to?: string;
  ema?: boolean;
  dim?: string | string[];
  root?: string;
}

const DESCRIBE = 'convert parameters between a PyTorch state dict and a vdm checkpoint';

const EPILOGUE = `Linear weights are transposed ([out, in] in PyTorch, [in, out] in vdm), a
patch embedding is a strided Conv [out, C, k...], everything else is copied; the
rule follows the spec, never the shape, and a tensor already in the other layout
is refused.
Built-in maps: dit (facebookresearch/DiT models.py); latte (Vchitect/Latte
models/latte.py); swin (Video Swin Transformer as mmaction saves it: the
backbone under backbone.*, patch merging in its own order); diffusers
(to_q/to_k/to_v and to_out.0, a packed qkv split by rule; ff.net.0.proj and
ff.net.2; time_emb_proj, conv_shortcut; linear_1/linear_2; wherever they fit);
opensora (Open-Sora 1.2's STDiT3: spatial_blocks.N/temporal_blocks.N,
q_linear/kv_linear, scale_shift_table, a Conv3d patch embedding); cogvideox
(diffusers' CogVideoXTransformer3DModel: attn1.to_q/to_k/to_v joined into one
qkv, proj_out's outputs reordered from (c, p_h, p_w) to (p_h, p_w, c)).
A map of your own: {"rules": [{"vdm": "blocks.{n}.ada.{p*}", "torch":
"blocks.{n}.adaLN_modulation.1.{p*}"}], "ignore": [{"torch": "pos_embed", "why":
"..."}]}.
.pt/.pth files are read and written through Python with torch (VDM_PYTHON names
the interpreter).`;

const list = (names: readonly string[]) => `${names.slice(0, 6).join(', ')}${names.length > 6 ? `, ... (${names.length} in all)` : ''}`;

export function runConvert(argv: ConvertArgs): number {
  if (!argv.out) { process.stderr.write('vdm convert: name the file to write with -o FILE (.safetensors, or .pt/.pth)\n'); return 2; }
  if (!argv.spec) { process.stderr.write('vdm convert: name the model with --spec SPEC.vdm (it says which weights are Linear, which a patch embedding)\n'); return 2; }
  if (argv.to !== undefined && argv.to !== 'torch' && argv.to !== 'vdm') { process.stderr.write(`vdm convert: --to is torch or vdm, not ${argv.to}\n`); return 2; }
  const dims = dimsOrReport(argv.dim === undefined ? undefined : [argv.dim].flat());
  if (!dims) return 1;
  const model = checkedOrReport(argv.spec, { dims, root: argv.root, purpose: 'vdm convert' });
  if (!model) return 1;
  try {
    const map = loadNameMap(argv.map);
    checkWritable(argv.out, '-o');
    const r = convertFile(model.graph, { input: argv.input, output: argv.out, map, to: argv.to as 'torch' | 'vdm' | undefined, ema: argv.ema });
    const how: Record<string, string> = { transpose: 'transposed', 'patch-conv': 'as a patch conv', same: 'copied', split: 'split into parts', reordered: 'with features reordered' };
    const rules = Object.keys(how).filter((k) => r.rules[k]).map((k) => `${r.rules[k]} ${how[k]}`).join(', ');
    const from = r.entry ? ` (its '${r.entry}' entry)` : '';
    process.stdout.write(`wrote ${argv.out}: ${r.count} tensors, ${r.values.toLocaleString('en-US')} values of model ${model.graph.model} in ${r.to === 'vdm' ? 'vdm' : 'PyTorch'} layout`
      + `${map.rules.length ? `, names of map ${map.name}` : ''}${r.guessed ? ` (--to ${r.to}, guessed from ${argv.input}${from})` : from} in ${r.seconds.toFixed(2)} s\n  ${rules}\n`);
    if (r.emaNote) process.stdout.write('  the raw weights of a training checkpoint; --ema converts its EMA weights (what vdm sample uses)\n');
    if (r.ignored.length) process.stdout.write(`  ignored: ${r.ignored.map(([n, why]) => `${n} (${why})`).join('; ')}\n`);
    if (r.unmatched.length) process.stdout.write(`  not converted: ${r.unmatched.length} tensor${r.unmatched.length === 1 ? '' : 's'} no parameter of ${model.graph.model} takes: ${list(r.unmatched)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConvertError || err instanceof NameMapError || err instanceof TorchUnavailableError
      || err instanceof FileError || err instanceof SafetensorsError) {
      process.stderr.write(`vdm convert: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

export const convertCommand = (done: (code: number) => void): CommandModule<object, ConvertArgs> => ({
  command: 'convert <input>',
  describe: DESCRIBE,
  builder: (y: Argv) =>
    y.usage(`vdm convert IN -o OUT --spec SPEC [--map dit|latte|swin|diffusers|opensora|cogvideox|MAP.json] [--to torch|vdm]\n\n${DESCRIBE}`)
      .positional('input', { type: 'string', demandOption: true, describe: 'a state dict or checkpoint: .safetensors, or .pt/.pth' })
      .option('out', { alias: 'o', type: 'string', requiresArg: true, describe: 'the file to write: .safetensors, or .pt/.pth' })
      .option('spec', { type: 'string', requiresArg: true, describe: 'the .vdm model the parameters belong to' })
      .option('map', { type: 'string', requiresArg: true, describe: 'PyTorch-side names: a built-in map (dit, latte, swin, diffusers, opensora, cogvideox) or a JSON map [default: vdm\'s dotted names]' })
      .option('to', { type: 'string', requiresArg: true, choices: ['torch', 'vdm'], describe: 'the layout to write [default: torch for a file vdm wrote, else vdm]' })
      .option('ema', { type: 'boolean', describe: 'convert the EMA weights of a vdm train checkpoint (ema.*) instead of its raw weights' })
      .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
      .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' })
      .example('vdm convert DiT-S-2.pt -o dit.safetensors --spec specs/dit-s-2.vdm --map dit', 'an official DiT checkpoint to vdm')
      .example('vdm convert params.safetensors -o torch.safetensors --spec specs/dit-s-2.vdm --to torch', 'vdm parameters for the exported module')
      .epilogue(EPILOGUE) as unknown as Argv<ConvertArgs>,
  handler: (argv) => { done(runConvert(argv)); },
});
