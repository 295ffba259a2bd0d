// `vdm doctor`: what WebGPU adapter this machine offers and whether vdm can use it, or what to
// install when there is none.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { NoAdapterError } from './adapter.ts';
import { type Gpu, openGpu, WANTED_FEATURES } from './gpu.ts';
import { formatBytes } from './limits.ts';

export interface DoctorReport {
  ok: boolean;
  adapter?: { vendor: string; architecture: string; device: string; description: string };
  /** the native API Dawn drives (vulkan, metal, d3d12), when it can be told */
  backend?: string;
  software?: boolean;
  /** wanted features the device has; the rest are listed in `missing` */
  features?: string[];
  missing?: string[];
  limits?: Record<string, number>;
  /** whether GEMM tilings are timed at first use (VDM_TUNE) */
  tune?: boolean;
  /** why no adapter could be used, and what to do */
  problem?: string;
}

const KEY_LIMITS = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage'];

function backendOf(gpu: Gpu): string | undefined {
  // WebGPU does not expose the backend; Dawn's adapter description and the platform tell it.
  const text = `${gpu.info.description} ${gpu.info.architecture}`;
  if (/llvmpipe|lavapipe|vulkan/i.test(text)) return 'vulkan';
  if (/swiftshader/i.test(text)) return 'vulkan (SwiftShader)';
  if (process.platform === 'darwin') return 'metal';
  if (process.platform === 'win32') return 'd3d12';
  if (process.platform === 'linux') return 'vulkan';
  return undefined;
}

/** Why lavapipe may be present yet unusable: Dawn rejects Mesa 22 (Debian bookworm's own). */
function mesaHint(): string {
  try {
    if (!fs.readdirSync('/usr/share/vulkan/icd.d').some((f) => f.startsWith('lvp_icd'))) return '';
    const version = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const major = Number(/^(\d+)/.exec(version)?.[1]);
    if (major && major < 25) return ` Mesa ${version} lavapipe is installed but too old for Dawn (it needs Mesa >= 25).`;
  } catch { /* not Debian-like, or no lavapipe: the general hint applies */ }
  return '';
}

export async function doctorReport(open: () => Promise<Gpu> = openGpu): Promise<DoctorReport> {
  let gpu: Gpu;
  try {
    gpu = await open();
  } catch (e) {
    if (e instanceof NoAdapterError) return { ok: false, problem: e.message + mesaHint() };
    return { ok: false, problem: `could not open the WebGPU device: ${(e as Error).message}` };
  }
  const { vendor, architecture, device, description } = gpu.info;
  return {
    ok: true,
    adapter: { vendor, architecture, device, description },
    backend: backendOf(gpu),
    software: gpu.software,
    features: WANTED_FEATURES.filter((f) => gpu.features.has(f)),
    missing: WANTED_FEATURES.filter((f) => !gpu.features.has(f)),
    limits: Object.fromEntries(KEY_LIMITS.map((k) => [k, gpu.limits[k]])),
    tune: gpu.tune,
  };
}

export function formatDoctor(r: DoctorReport): string {
  if (!r.ok) return `vdm doctor: no usable WebGPU adapter.\n  ${r.problem}\n`;
  const a = r.adapter!;
  const lines = [
    'vdm doctor: WebGPU adapter found',
    `  adapter      ${a.description || a.device || '(no description)'}`,
    `  vendor       ${a.vendor || '-'}   architecture ${a.architecture || '-'}   device ${a.device || '-'}`,
    `  backend      ${r.backend ?? 'unknown'}`,
    `  kind         ${r.software ? 'software (CPU): correct but slow; fine for tests and small models' : 'hardware GPU'}`,
    `  features     ${r.features!.length ? r.features!.join(', ') : 'none of the optional ones'}` +
      (r.missing!.length ? `   (missing: ${r.missing!.join(', ')})` : ''),
    `  tuning       ${r.tune ? 'on: each GEMM shape times a few tilings at first use; the choice is cached per adapter (VDM_TUNE=off)' : 'off: default tilings (VDM_TUNE=on times them)'}`,
    '  limits',
  ];
  for (const [k, v] of Object.entries(r.limits!)) {
    lines.push(`    ${k.padEnd(36)} ${/Size$/.test(k) ? `${v} (${formatBytes(v)})` : v}`);
  }
  if (!r.features!.includes('timestamp-query')) lines.push('  note: no timestamp-query, so profiles report wall time only');
  return lines.join('\n') + '\n';
}

/** The `vdm doctor` command: prints the report; exit code 0 when an adapter is usable, 1 otherwise. */
export async function doctorCommand(): Promise<number> {
  const report = await doctorReport();
  process.stdout.write(formatDoctor(report));
  return report.ok ? 0 : 1;
}
