// `vdm export torch SPEC -o model.py [--map dit|latte|MAP.json]`: the model as a self-contained PyTorch
// nn.Module and its diffusion objective, for training beyond one machine (torch.distributed).
import fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { loadNameMap, NameMapError } from '../interop/name-maps.ts';
import { ExportError, exportTorch } from '../interop/torch-export.ts';
import { checkWritable, FileError } from '../runtime/files.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport } from './report.ts';

interface ExportArgs {
  format: string;
  spec: string;
  out?: string;
  map?: string;
  dim?: string | string[];
  root?: string;
}

const DESCRIBE = 'write a model as a PyTorch nn.Module (Python) with its diffusion objective';

export function runExport(argv: ExportArgs): number {
  if (argv.format !== 'torch') { process.stderr.write(`vdm export: the format is torch (vdm export torch SPEC -o model.py), not ${argv.format}\n`); return 2; }
  if (!argv.out) { process.stderr.write('vdm export: name the file to write with -o FILE.py\n'); return 2; }
  const dims = dimsOrReport(argv.dim === undefined ? undefined : [argv.dim].flat());
  if (!dims) return 1;
  const model = checkedOrReport(argv.spec, { dims, root: argv.root, purpose: 'vdm export' });
  if (!model) return 1;
  try {
    const start = performance.now();
    const map = loadNameMap(argv.map);
    checkWritable(argv.out, '-o');
    const command = ['vdm export torch', argv.spec, ...Object.entries(dims).map(([k, v]) => `--dim ${k}=${v}`), ...(argv.map ? [`--map ${argv.map}`] : [])].join(' ');
    const r = exportTorch(model.graph, { map, command });
    fs.writeFileSync(argv.out, r.source);
    const lines = r.source.split('\n').length;
    process.stdout.write(`wrote ${argv.out}: class ${r.className} (${r.classes} classes, ${lines} lines of Python) in ${((performance.now() - start) / 1000).toFixed(2)} s\n`);
    return 0;
  } catch (err) {
    if (err instanceof ExportError || err instanceof NameMapError || err instanceof FileError) {
      process.stderr.write(`vdm export: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

export const exportCommand = (done: (code: number) => void): CommandModule<object, ExportArgs> => ({
  command: 'export <format> <spec>',
  describe: DESCRIBE,
  builder: (y: Argv) =>
    y.usage(`vdm export torch SPEC -o model.py [--map dit|latte|MAP.json]\n\n${DESCRIBE}`)
      .positional('format', { type: 'string', demandOption: true, choices: ['torch'], describe: 'what to write' })
      .positional('spec', { type: 'string', demandOption: true, describe: 'a .vdm file with a model' })
      .option('out', { alias: 'o', type: 'string', requiresArg: true, describe: 'the Python file to write' })
      .option('map', { type: 'string', requiresArg: true, describe: 'parameter names: a built-in map that only renames (dit, latte) or a JSON map [default: vdm\'s dotted names]' })
      .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
      .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' })
      .example('vdm export torch specs/dit-s-2.vdm -o dit.py --map dit', 'DiT-S/2 with the official parameter names')
      .epilogue('See docs/scale-out.md: training the module with torch.distributed and converting its weights back.') as unknown as Argv<ExportArgs>,
  handler: (argv) => { done(runExport(argv)); },
});
