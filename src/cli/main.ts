// The vdm command line. Usage problems print a short usage message (exit 2); bad specs print
// diagnostics (exit 1); nothing prints a stack trace.
import fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { DEFAULT_TOL } from './defaults.ts';
// The target names alone (the pipeline re-exports them), so that defining the options loads no kernels.
import { TARGETS } from '../codegen/targets.ts';
import { fileProblem } from '../runtime/files.ts';
import { TensorTooLargeError } from '../runtime/limits.ts';

/** The version of vdm, from package.json two folders up (from src/cli, or dist/cli when built). */
function vdmVersion(): string {
  try {
    return String(JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/**
 * The commands defined in their own modules. Most of vdm's start-up is loading modules, so a command
 * and what it needs are imported only when it runs (or when help lists every command): `vdm check`
 * loads the front end, not the kernel library and the runtime.
 */
type Done = (code: number) => void;
const MODULE_COMMANDS: Record<string, () => Promise<(done: Done) => CommandModule<object, any>>> = {
  train: async () => (await import('./train-command.ts')).trainCommand,
  sample: async () => (await import('./sample-command.ts')).sampleCommand,
  eval: async () => (await import('./eval-command.ts')).evalCommand,
  convert: async () => (await import('./convert-command.ts')).convertCommand,
  export: async () => (await import('./export-command.ts')).exportCommand,
  fmt: async () => (await import('./fmt.ts')).fmtCommand,
  diff: async () => (await import('./diff.ts')).diffCommand,
};
const INLINE_COMMANDS = new Set(['check', 'info', 'init', 'compile', 'run', 'doctor']);

const asList = (v: unknown): (string | number)[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v : [v as string];

async function main(argv: string[]): Promise<number> {
  let code = 0;
  let usageError: string | null = null;
  const parser = yargs(argv)
    .scriptName('vdm')
    .usage('Usage: vdm <command> [options]')
    .command('check <files..>', 'check specs: syntax, names, arguments, shapes, budgets',
      (y) => y
        .positional('files', { type: 'string', describe: '.vdm files' })
        .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
        .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in (default: the file\'s folder)' }),
      async (a) => { const { checkCommand } = await import('./check-command.ts'); code = checkCommand({ files: (a.files ?? []) as unknown as string[], dim: asList(a.dim), root: a.root }); })
    .command('info <file>', 'per-layer shapes, parameters, MACs and activation sizes of a model',
      (y) => y
        .positional('file', { type: 'string', describe: 'a .vdm file with a model', demandOption: true })
        .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
        .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' })
        .option('json', { type: 'boolean', describe: 'print totals and layers as JSON' })
        .option('graph', { type: 'boolean', describe: 'print the graph IR as JSON' })
        .option('train', { type: 'boolean', describe: 'also report the peak device memory of one training step (parameters, gradients, Adam moments, EMA, kept activations)' })
        .option('params', { type: 'boolean', describe: 'list every parameter: dotted name, shape, count and initialiser (with --json: as JSON)' })
        .conflicts('json', 'graph')
        .conflicts('params', ['graph', 'train']),
      async (a) => { const { infoCommand } = await import('./info-command.ts'); code = infoCommand({ file: a.file as string, dim: asList(a.dim), root: a.root, json: a.json, graph: a.graph, train: a.train, params: a.params }); })
    .command('init <file>', 'write the initial parameters of a model as safetensors (what vdm run --params reads)',
      (y) => y
        .positional('file', { type: 'string', describe: 'a .vdm file with a model', demandOption: true })
        .option('out', { alias: 'o', type: 'string', requiresArg: true, describe: 'the safetensors file to write (required)' })
        .option('seed', { type: 'number', requiresArg: true, default: 0, describe: 'seed of the initialisation (vdm run --seed N draws the same)' })
        .option('perturb', { type: 'boolean', describe: 'move every zero- or one-initialised entry by up to ±0.2 (the parameters vdm run --check uses)' })
        .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
        .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' }),
      async (a) => { const { initCommand } = await import('./init-command.ts'); code = initCommand({ file: a.file as string, out: a.out as string | undefined, seed: a.seed, perturb: a.perturb, dim: asList(a.dim), root: a.root }); })
    .command('compile <file>', 'lower a model to WGSL kernels and a program manifest',
      (y) => y
        .positional('file', { type: 'string', describe: 'a .vdm file with a model', demandOption: true })
        .option('out', { alias: 'o', type: 'string', requiresArg: true, describe: 'output folder, replaced whole (default: build/FILE.TARGET)' })
        .option('force', { type: 'boolean', describe: 'replace the output folder even if it holds files vdm did not write' })
        .option('target', { type: 'string', choices: TARGETS, default: 'gpu', describe: 'kernel strategy: gpu (workgroup tiles) or software (SIMD lanes, for CPU adapters)' })
        .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
        .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' }),
      async (a) => { const { compileCommand } = await import('./compile-command.ts'); code = compileCommand({ file: a.file as string, out: a.out, target: a.target, dim: asList(a.dim), root: a.root, force: a.force }); })
    .command('run <file>', 'run one forward pass of a model on the WebGPU adapter and time it',
      (y) => y
        .positional('file', { type: 'string', describe: 'a .vdm file with a model', demandOption: true })
        .option('params', { type: 'string', requiresArg: true, describe: 'parameters from a safetensors file, by dotted path (default: seeded initialisation)' })
        .option('seed', { type: 'number', requiresArg: true, default: 0, describe: 'seed of the initialisation and the example inputs' })
        .option('repeat', { type: 'number', requiresArg: true, default: 5, describe: 'timed forward passes' })
        .option('profile', { type: 'boolean', describe: 'GPU time per kernel family (timestamp queries)' })
        .option('check', { type: 'boolean', describe: 'compare the outputs with the float64 evaluation (slow for large models), with perturbed parameters unless --params' })
        .option('perturb', { type: 'boolean', default: true, describe: 'check with initialised parameters perturbed, so zero-initialised layers (adaLN-Zero, final layer) do not zero the outputs (--no-perturb: as initialised)' })
        .option('inputs', { type: 'string', requiresArg: true, describe: 'inputs by name from a safetensors file, in their declared axis order (default: seeded examples)' })
        .option('out', { type: 'string', requiresArg: true, describe: 'write the outputs to a safetensors file (checked before the run)' })
        .option('dump', { type: 'string', requiresArg: true, describe: 'write every node\'s value (by dotted name), the outputs, inputs and parameters as safetensors into a folder' })
        .option('compare', { type: 'string', requiresArg: true, describe: 'compare outputs (by name) and node values (by dotted name) with a safetensors file: max abs / max rel error per tensor; exit 1 over --tol' })
        .option('tol', { type: 'number', requiresArg: true, default: DEFAULT_TOL, describe: 'the max relative error --compare accepts' })
        .option('allow-nonfinite', { type: 'boolean', describe: 'accept NaN and infinite values in the --params file' })
        .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
        .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' }),
      async (a) => {
        const { runCommand } = await import('./run-command.ts');
        code = await runCommand({
          file: a.file as string, params: a.params, seed: a.seed, repeat: a.repeat, profile: a.profile, check: a.check,
          out: a.out, dim: asList(a.dim), root: a.root, allowNonfinite: a.allowNonfinite,
          inputs: a.inputs, dump: a.dump, compare: a.compare, tol: a.tol, perturb: a.perturb,
        });
      })
    .command('doctor', 'report the WebGPU adapter vdm would use', () => {}, async () => { const { doctor } = await import('./doctor-command.ts'); code = await doctor(); });
  const named = argv.find((a) => !a.startsWith('-'));
  const modules = named && Object.hasOwn(MODULE_COMMANDS, named) ? [named] : named && INLINE_COMMANDS.has(named) ? [] : Object.keys(MODULE_COMMANDS);
  for (const name of modules) parser.command((await MODULE_COMMANDS[name]())((c) => { code = c; }));
  parser
    .demandCommand(1, 'Name a command.')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version('version', 'show the version of vdm', vdmVersion())
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      usageError = msg;
    });
  await parser.parseAsync();
  if (usageError !== null) {
    process.stderr.write(`${await parser.getHelp()}\n\nvdm: ${usageError}\n`);
    return 2;
  }
  return code;
}

// A closed pipe (`vdm info ... | head`) ends the output, not the process with a trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

try {
  process.exitCode = await main(hideBin(process.argv));
} catch (err) {
  // The user's situation, not a bug: a path that cannot be written, a size the adapter cannot hold.
  const problem = fileProblem(err) ?? (err instanceof TensorTooLargeError ? err.message : undefined);
  process.stderr.write(problem !== undefined ? `vdm: ${problem}\n`
    : `vdm: internal error: ${err instanceof Error ? err.message : String(err)} (this is a bug in vdm)\n`);
  process.exitCode = 1;
}
