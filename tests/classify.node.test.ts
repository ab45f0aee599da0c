// `npm run classify` end to end: a real headless Chromium, the engine's worker, JSON lines out.
// One run per way it can end: 0 (all classified), 1 (a file failed, or the model did not load: one
// line each on stderr, no stack trace), 2 (bad arguments: the problem and the usage).
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';
import { relL2 } from './helpers/compare';
import { F16_WEIGHTS_TOL, GOLDEN_REL_L2 } from './tolerances';

const run = promisify(execFile);
// Feature maps make megabytes of JSON lines.
const classify = (args: string[]) => run('node', ['scripts/classify.js', ...args], { maxBuffer: 64 * 2 ** 20 }).then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e);
const dir = mkdtempSync(join(tmpdir(), 'classify-cli-'));
const USAGE = 'usage: npm run classify -- [--node] [--model FILE.safetensors] [--top K] [--logits] [--size S|HxW] [--features [--blocks LIST] [--no-norm]] FILE...';

test('classify prints one JSON line per image, in input order, and nothing else on stdout', async () => {
  const files = ['public/samples/chelsea.png', 'tests/fixtures/deit_tiny_golden.safetensors', 'README.md', 'nope.png', 'public/samples/coffee.png'];
  const result = await classify(['--top', '3', '--logits', ...files]);
  expect(result.code).toBe(1); // README.md is not an image, nope.png does not exist
  const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; index?: number; top?: { index: number; label: string; prob: number }[]; logits?: number[]; error?: string });
  expect(lines.map((l) => [l.file, l.index])).toEqual([[files[0], undefined], [files[1], 0], [files[1], 1], [files[2], undefined], [files[3], undefined], [files[4], undefined]]);
  expect(lines[0]!.top!.map((p) => p.label)).toEqual(['Egyptian Mau', 'tabby cat', 'tiger cat']);
  expect(lines[0]!.logits).toHaveLength(1000);
  expect(lines[1]!.top![0]!.index).toBe(285);
  expect(lines[2]!.top![0]!.label).toBe('espresso');
  expect(lines[3]!.error).toBe('image: README.md is not an image (expected PNG, JPEG, WebP, GIF or BMP)');
  expect(lines[4]!.error).toBe('cannot read nope.png: ENOENT');
  expect(lines[5]!.top![0]!.label).toBe('espresso');
  expect(result.stderr.split('\n')).toEqual([
    expect.stringMatching(/^adapter: .*; model: embedded DeiT-tiny$/),
    'README.md: image: README.md is not an image (expected PNG, JPEG, WebP, GIF or BMP)',
    'nope.png: cannot read nope.png: ENOENT',
    '',
  ]);
}, 120_000);

test('exit 0: a --model checkpoint served to the page from disk, with the labels file its config names', async () => {
  const model = join(dir, 'deit.safetensors');
  copyFileSync('public/models/deit-tiny/model.safetensors', model);
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'deit.json'));
  copyFileSync('public/models/deit-tiny/labels.json', join(dir, 'labels.json'));
  const result = await classify(['--model', model, '--top', '1', 'public/samples/coffee.png']);
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(new RegExp(`^adapter: .*; model: ${model.replace(/[.]/g, '\\.')}\\n$`));
  expect(JSON.parse(result.stdout)).toEqual({ file: 'public/samples/coffee.png', top: [{ index: 967, label: 'espresso', prob: expect.any(Number) }] });
}, 120_000);

test('exit 1: a model that fails to load is one line on stderr naming the file and the problem', async () => {
  const st = parseSafetensors(readFileSync('public/models/deit-tiny/model.safetensors'));
  const model = join(dir, 'nan.safetensors');
  writeFileSync(model, serializeSafetensors(st.names().map((name) => {
    const data = st.get(name);
    if (name === 'blocks.3.mlp.fc1.weight') data[1234] = Number.NaN;
    return { name, shape: st.entries.get(name)!.shape, data };
  })));
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'nan.json'));
  const result = await classify(['--model', model, 'public/samples/coffee.png']);
  expect(result.code).toBe(1);
  expect(result.stderr).toBe(`checkpoint ${model}: blocks.3.mlp.fc1.weight holds NaN at index 1234\n`);
  expect(result.stdout).toBe('');
}, 120_000);

test('--features (in Node on Dawn): DeiT-tiny\'s pooled features equal timm\'s golden ones; --blocks adds each block\'s maps', async () => {
  const golden = parseSafetensors(readFileSync('tests/fixtures/deit_tiny_golden.safetensors'));
  const result = await classify(['--node', '--features', '--blocks', '-1,5', 'tests/fixtures/deit_tiny_golden.safetensors']);
  expect(result.code).toBe(0);
  type Line = { file: string; index?: number; features: number[]; maps: { block: number; normed: boolean; grid: number[]; dim: number; classTokens: number[]; registers: number[]; patches: number[] }[] };
  const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
  expect(lines.map((l) => [l.file, l.index])).toEqual([['tests/fixtures/deit_tiny_golden.safetensors', 0], ['tests/fixtures/deit_tiny_golden.safetensors', 1]]);
  const err = relL2(Float32Array.from(lines.flatMap((l) => l.features)), golden.get('features'));
  expect(err).toBeLessThan(F16_WEIGHTS_TOL.featuresRelL2);
  const [last, middle] = lines[1]!.maps;
  expect(last).toMatchObject({ block: 11, normed: true, grid: [14, 14], dim: 192 });
  expect(last!.classTokens).toEqual(lines[1]!.features);
  expect(last!.patches).toHaveLength(196 * 192);
  expect(middle).toMatchObject({ block: 5, normed: true });
}, 120_000);

test('a non-square input (in Node on Dawn): the DeiT-III tensor at 160x256 matches timm\'s logits, and --size preprocesses an image to 160x256', async () => {
  const dir = 'tests/fixtures/deit3';
  const golden = parseSafetensors(readFileSync(`${dir}/deit3_micro_160x256_golden.safetensors`));
  const result = await classify(['--node', '--model', `${dir}/deit3_micro.safetensors`, '--logits', '--size', '160x256', `${dir}/deit3_micro_160x256_input.safetensors`, 'public/samples/chelsea.png']);
  expect(result.code).toBe(0);
  const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { logits: number[] });
  expect(relL2(Float32Array.from(lines.slice(0, 2).flatMap((l) => l.logits)), golden.get('logits'))).toBeLessThan(GOLDEN_REL_L2);
  expect(lines[2]!.logits).toHaveLength(10);
}, 120_000);

test('--node: the engine in Node on Dawn, no browser: the same lines, and a model that fails to load is one line', async () => {
  const model = join(dir, 'node-deit.safetensors');
  copyFileSync('public/models/deit-tiny/model.safetensors', model);
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'node-deit.json'));
  copyFileSync('public/models/deit-tiny/labels.json', join(dir, 'labels.json'));
  const result = await classify(['--node', '--model', model, '--top', '2', 'public/samples/chelsea.png', 'README.md']);
  expect(result.code).toBe(1);
  expect(result.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
    { file: 'public/samples/chelsea.png', top: [{ index: 285, label: 'Egyptian Mau', prob: expect.closeTo(0.371, 3) }, { index: 281, label: 'tabby cat', prob: expect.any(Number) }] },
    { file: 'README.md', error: 'image: README.md is not an image (expected PNG, JPEG, WebP, GIF or BMP)' },
  ]);
  expect(result.stderr).toMatch(new RegExp(`^adapter: .* \\(Node, Dawn\\); model: ${model.replace(/[.]/g, '\\.')}\nREADME\\.md: image: README\\.md is not an image .*\n$`));

  const bad = join(dir, 'node-bad.safetensors');
  writeFileSync(bad, 'not a safetensors file');
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'node-bad.json'));
  const failed = await classify(['--node', '--model', bad, 'public/samples/chelsea.png']);
  expect(failed.code).toBe(1);
  expect(failed.stderr).toMatch(new RegExp(`^checkpoint ${bad.replace(/[.]/g, '\\.')}: [^\n]+\n$`));
  expect(failed.stdout).toBe('');
}, 240_000);

test('exit 2: bad arguments print the problem and the usage', async () => {
  for (const [args, problem] of [
    [['--size', '0', 'x.png'], '--size needs a side or HEIGHTxWIDTH in pixels, got 0'],
    [['--size', '160x', 'x.png'], '--size needs a side or HEIGHTxWIDTH in pixels, got 160x'],
    [['--features', '--blocks', '1,,2', 'x.png'], '--blocks needs block numbers separated by commas (negative from the end), got 1,,2'],
    [['--blocks', '1', 'x.png'], '--blocks and --no-norm go with --features'],
    [['--features', '--logits', 'x.png'], '--logits and --features are different outputs: ask for one'],
  ] as const) {
    const r = await classify([...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${problem}\n${USAGE}\n`);
  }
  const missing = await classify(['--model', 'nope.safetensors', 'x.png']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toBe(`--model nope.safetensors does not exist\n${USAGE}\n`);
  const unknown = await classify(['--tpo', '3', 'x.png']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toBe(`unknown option --tpo\n${USAGE}\n`);
});
