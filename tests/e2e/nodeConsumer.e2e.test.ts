// The package as a plain Node ESM app gets it: `npm pack`, the tarball installed into a copy of
// tests/consumers/node-app (its lockfile pins the app's own dependency, webgpu; the tarball goes in
// with --no-save, so the committed lockfile stays valid whatever the tarball's integrity), the
// DeiT-tiny folder in the app's own folder, and the app's script classifies chelsea.png on Dawn.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const APP_SOURCE = join(ROOT, 'tests/consumers/node-app');
const work = mkdtempSync(join(tmpdir(), 'vitgpu-node-consumer-'));
const app = join(work, 'app');

type Run = { code: number; stdout: string; stderr: string };
async function run(command: string, args: string[], cwd: string): Promise<Run> {
  return exec(command, args, { cwd, maxBuffer: 1 << 24 }).then((r) => ({ code: 0, ...r }), (e: Run) => e);
}

/** Every module the browser entry loads, following its relative imports; the bare ones it names. */
function importsOf(entry: string): { files: string[]; bare: Set<string> } {
  const files: string[] = [];
  const bare = new Set<string>();
  const visit = (file: string) => {
    if (files.includes(file)) return;
    files.push(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:import|export)\s*(?:[^'"]*?from\s*)?\(?\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(resolve(file, '..', spec));
      else bare.add(spec);
    }
  };
  visit(entry);
  return { files, bare };
}

describe('a plain Node ESM app installs the packed package', () => {
  let tarball: string;
  beforeAll(async () => {
    const packed = await run('npm', ['pack', '--pack-destination', work, '--silent'], ROOT);
    if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
    tarball = join(work, packed.stdout.trim().split('\n').pop()!);
    cpSync(APP_SOURCE, app, { recursive: true, filter: (src) => !/[\\/](node_modules|models)$/.test(src) });
    cpSync(join(ROOT, 'public/models/deit-tiny'), join(app, 'models/deit-tiny'), { recursive: true });
    const lockBefore = readFileSync(join(app, 'package-lock.json'), 'utf8');
    const ci = await run('npm', ['ci', '--no-audit', '--no-fund'], app);
    if (ci.code !== 0) throw new Error(`npm ci failed: ${ci.stderr}`);
    const install = await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', tarball], app);
    if (install.code !== 0) throw new Error(`npm install of the tarball failed: ${install.stderr}`);
    expect(readFileSync(join(app, 'package-lock.json'), 'utf8')).toBe(lockBefore);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('the browser entry never reaches Dawn or Node built-ins', () => {
    const { files, bare } = importsOf(join(app, 'node_modules/vitgpu/dist/lib/index.js'));
    expect(files.length).toBeGreaterThan(0);
    expect([...bare].filter((b) => b === 'webgpu' || b.startsWith('node:') || b === 'pngjs' || b === 'jpeg-js')).toEqual([]);
  });

  test('node classify.js chelsea.png -> Egyptian Mau, on Dawn, with the model from the app\'s folder', async () => {
    const result = await run('node', ['classify.js', join(ROOT, 'public/samples/chelsea.png')], app);
    expect(result.stderr).not.toMatch(/Error|at /);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as { adapter: string; top: { label: string; prob: number }[] };
    console.log(`adapter: ${out.adapter}; top: ${out.top.map((p) => `${p.label} ${p.prob.toFixed(3)}`).join(', ')}`);
    expect(out.top.map((p) => p.label)).toEqual(['Egyptian Mau', 'tabby cat', 'tiger cat']);
  });

  test('the browser entry in Node, and the Node entry without webgpu, each say what to do in one line', async () => {
    const browserEntry = await run('node', ['--input-type=module', '-e', 'import { createGpu } from "vitgpu"; await createGpu();'], app);
    expect(browserEntry.code).toBe(1);
    expect(browserEntry.stderr).toContain('WebGPU is not available in Node through this entry (navigator.gpu is undefined): import the engine from "vitgpu/node", which runs it on Dawn');

    rmSync(join(app, 'node_modules/webgpu'), { recursive: true });
    const noDawn = await run('node', ['classify.js', join(ROOT, 'public/samples/chelsea.png')], app);
    expect(noDawn.code).toBe(1);
    expect(noDawn.stderr).toBe('vitgpu/node runs on Dawn, which is missing: install the optional dependency: npm install webgpu\n');
  });
});
