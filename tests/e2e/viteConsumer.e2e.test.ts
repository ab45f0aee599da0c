// The package as an outside app gets it: `npm pack`, the tarball installed into a copy of the
// Vite app in tests/consumers/vite-app (its own package.json and lockfile), type-checked with the
// app's TypeScript, built with the app's Vite, served with the DeiT-tiny weights in the app's own
// public folder, and run in headless Chromium: chelsea.png is an Egyptian Mau, with attention
// rollout, through the app's worker. A second visit loads the model from the cache, offline.
//
// The tarball's integrity changes with every build, so it is not in the app's lockfile: `npm ci`
// installs what the lockfile pins (Vite, TypeScript), then `npm install --no-save` adds the
// tarball (and its dependency, comlink) without touching package.json or the lockfile.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright';
import { preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { launch } from './browser';

const ROOT = resolve(import.meta.dirname, '../..');
let work: string;
let app: string;
let server: PreviewServer | undefined;
let browser: Browser | undefined;

/** Runs a command; vitest's NODE_ENV=test is not passed on (npm would skip devDependencies under production, Vite build for development under test). */
function run(cmd: string, args: string[], cwd: string, nodeEnv?: string): string {
  const { NODE_ENV: _, ...env } = process.env;
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: nodeEnv ? { ...env, NODE_ENV: nodeEnv } : env });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
  }
}

const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], cwd);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vitgpu-consumer-'));
  // prepack builds the library (dist/lib, dist/types) first.
  npm(['pack', '--pack-destination', work], ROOT);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack left no tarball in ${work}`);
  app = join(work, 'app');
  cpSync(join(ROOT, 'tests/consumers/vite-app'), app, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  npm(['ci'], app);
  npm(['install', '--no-save', join(work, tarball)], app);
  // The app's own assets, as an app ships them: the model folder and an image.
  mkdirSync(join(app, 'public/models'), { recursive: true });
  cpSync(join(ROOT, 'public/models/deit-tiny'), join(app, 'public/models/deit-tiny'), { recursive: true });
  cpSync(join(ROOT, 'public/samples/chelsea.png'), join(app, 'public/chelsea.png'));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the installed package type-checks and builds in a Vite app', () => {
  // The app's own TypeScript and Vite, as its lockfile pins them.
  run(join(app, 'node_modules/.bin/tsc'), ['--noEmit'], app);
  run(join(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], app, 'production');
  const assets = readdirSync(join(app, 'dist/assets'));
  // The engine is in the app's worker; the page's own script holds the client only.
  expect(assets.some((f) => f.startsWith('engine.worker') && f.endsWith('.js'))).toBe(true);
});

test('the app classifies chelsea.png as an Egyptian Mau with attention rollout, then again from the cache', async () => {
  server = await preview({ root: app, configFile: false, logLevel: 'warn', preview: { port: 0, host: '127.0.0.1', strictPort: false } });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  browser = await launch();
  const context = await browser.newContext();
  const errors: string[] = [];
  const visit = async () => {
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    const downloads: string[] = [];
    page.on('request', (r) => void (r.url().endsWith('model.safetensors') && downloads.push(r.url())));
    await page.goto(url);
    await page.waitForFunction(() => ['done', 'error'].some((s) => document.getElementById('status')?.textContent?.startsWith(s)), undefined, { timeout: 240_000 });
    const status = await page.textContent('#status');
    expect(status, status ?? '').toBe('done');
    const result = JSON.parse((await page.textContent('#result')) ?? '{}');
    await page.close();
    return { result, downloads };
  };

  const first = await visit();
  console.log(`consumer app: ${JSON.stringify(first.result)}`);
  expect(first.result.top[0].label).toBe('Egyptian Mau');
  expect(first.result.rollout).toEqual({ length: 196, max: 1, min: expect.any(Number) });
  expect(first.result.rollout.min).toBeGreaterThanOrEqual(0);
  expect(first.result.cache).toEqual({ hit: false, stored: true });
  expect(first.downloads).toHaveLength(1);

  // The second visit, on the same origin (the cache is per origin), to a server that no longer
  // has the model: it comes from the cache.
  await server.close();
  server = undefined;
  rmSync(join(app, 'dist/models'), { recursive: true });
  server = await preview({ root: app, configFile: false, logLevel: 'warn', preview: { port: Number(new URL(url).port), host: '127.0.0.1', strictPort: true } });
  const second = await visit();
  expect(second.result.top[0].label).toBe('Egyptian Mau');
  expect(second.result.cache).toEqual({ hit: true, stored: false });
  expect(second.downloads).toHaveLength(0);
  expect(errors).toEqual([]);
});
