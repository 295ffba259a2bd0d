// Reads the expectations a broken spec declares about itself in comment lines:
//   // expect: VDM031 12:10 VDM004 cycle/b.vdm:2:8   (code, optional file relative to the spec, line:col)
//   // expect: VDM070 -                    (a diagnostic about the command line, with no position)
//   // expect-text: did you mean      (a substring the formatted output must contain)
//   // dims: h=0 q=3                  (--dim overrides to check the spec with)
// Keeping them in the spec itself means a case is one file, readable on its own.
import path from 'node:path';

/** file/line/col are null for a diagnostic without a position. */
export interface ExpectedDiagnostic { code: string; file: string | null; line: number; col: number }
export interface Expectations {
  diagnostics: ExpectedDiagnostic[];
  texts: string[];
  dims: Record<string, string>;
}

const DIAGNOSTIC = /(VDM\d{3})\s+(?:(-)|(?:([^\s:]+):)?(\d+):(\d+))/g;

export function readExpectations(specPath: string, source: string): Expectations {
  const out: Expectations = { diagnostics: [], texts: [], dims: {} };
  for (const line of source.split('\n')) {
    const expect = /^\/\/ expect:(.*)$/.exec(line);
    if (expect) {
      const body = expect[1].trim();
      const found = [...body.matchAll(DIAGNOSTIC)];
      // A malformed expectation line would silently expect nothing; refuse it instead.
      if (found.map((m) => m[0]).join(' ') !== body.replace(/\s+/g, ' ')) {
        throw new Error(`${specPath}: malformed expectation line: ${line}`);
      }
      for (const [, code, none, file, ln, col] of found) {
        if (none) {
          out.diagnostics.push({ code, file: null, line: 0, col: 0 });
          continue;
        }
        const target = file ? path.resolve(path.dirname(specPath), file) : path.resolve(specPath);
        out.diagnostics.push({ code, file: target, line: Number(ln), col: Number(col) });
      }
    }
    const text = /^\/\/ expect-text: (.+)$/.exec(line);
    if (text) out.texts.push(text[1].trim());
    const dims = /^\/\/ dims: (.+)$/.exec(line);
    if (dims) {
      for (const pair of dims[1].trim().split(/\s+/)) {
        const [name, value] = pair.split('=');
        out.dims[name] = value;
      }
    }
  }
  return out;
}

/** A stable key in the expectation syntax, for comparing sets of diagnostics of one spec. */
export function diagnosticKey(d: ExpectedDiagnostic, specPath: string): string {
  if (d.file === null) return `${d.code} -`;
  const spec = path.resolve(specPath);
  const file = path.resolve(d.file) === spec ? '' : `${path.relative(path.dirname(spec), d.file)}:`;
  return `${d.code} ${file}${d.line}:${d.col}`;
}
