// `npm run train` end to end: a run with --checkpoint, then --resume from its first epoch, in two
// fresh headless Chromiums, must reach the same second epoch and write the same model.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { PRESETS } from '../src/models/registry';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'train-cli-'));
const train = (args: string[]) => run('node', ['scripts/train.js', ...args]).catch((e: { code: number; stdout: string; stderr: string }) => e);
const epochs = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; loss: number; accuracy: number; evalAccuracy: number; adapter: string });

test('a run resumed from its checkpoint file goes on exactly as the uninterrupted run', async () => {
  const ckpt = join(dir, 'run.ckpt');
  const whole = await train(['--preset', 'fashion-mnist', '--train', '96', '--holdout', '32', '--epochs', '2', '--batch', '32', '--lr', '3e-3',
    '--augment', 'seed', '--checkpoint', ckpt, '--out', join(dir, 'whole.safetensors')]);
  expect('code' in whole ? whole.stderr : '').toBe('');
  expect(whole.stderr).toMatch(/wrote .*run\.ckpt after epoch 1/);
  const [, second] = epochs(whole.stdout);
  expect(second!.adapter).toMatch(/\S/); // each line names the adapter its images/s were measured on
  const wholeModel = readFileSync(join(dir, 'whole.safetensors'));

  // The resumed run takes the options it started with (from run.ckpt.json), including --out.
  const resumed = await train(['--resume', ckpt]);
  expect('code' in resumed ? resumed.stderr : '').toBe('');
  const lines = epochs(resumed.stdout);
  expect(lines).toHaveLength(1);
  const { epoch, loss, accuracy, evalAccuracy } = lines[0]!;
  expect({ epoch, loss, accuracy, evalAccuracy }).toEqual({ epoch: 2, loss: second!.loss, accuracy: second!.accuracy, evalAccuracy: second!.evalAccuracy });
  expect(readFileSync(join(dir, 'whole.safetensors')).equals(wholeModel)).toBe(true);
}, 300_000);

test('--resume explains what it needs', async () => {
  const missing = await train(['--resume', join(dir, 'nope.ckpt')]);
  expect('code' in missing && missing.code).toBe(2);
  expect(missing.stderr).toMatch(/--resume .*nope\.ckpt: needs .*nope\.ckpt and .*nope\.ckpt\.json, as --checkpoint .* writes them/);
  const extra = await train(['--resume', join(dir, 'run.ckpt'), '--epochs', '3']);
  expect('code' in extra && extra.code).toBe(2);
  expect(extra.stderr).toMatch(/--resume FILE takes no other options/);
});

test('a failure is one line on stderr and status 1: in the page (an unknown preset), and in a file it reads', async () => {
  const unknown = await train(['--preset', 'nope', '--train', '10', '--holdout', '10', '--epochs', '1']);
  expect('code' in unknown && unknown.code).toBe(1);
  expect(unknown.stderr).toBe(`training: unknown preset "nope"; known: ${Object.keys(PRESETS).join(', ')}\n`);
  const ckpt = join(dir, 'broken.ckpt');
  writeFileSync(ckpt, '');
  writeFileSync(`${ckpt}.json`, '{"argv": [');
  const broken = await train(['--resume', ckpt]);
  expect('code' in broken && broken.code).toBe(1);
  expect(broken.stderr).toMatch(new RegExp(`^--resume ${ckpt}: ${ckpt}\\.json is not valid JSON \\([^\\n]+\\)\\n$`));
}, 120_000);

test('--node trains in Node on Dawn to the same epoch as in Chromium, and fails the same way', async () => {
  const args = ['--preset', 'fashion-mnist', '--train', '32', '--holdout', '16', '--epochs', '1', '--batch', '16', '--lr', '3e-3', '--augment', 'light'];
  const [browser, node] = [await train([...args, '--out', join(dir, 'browser.safetensors')]), await train(['--node', ...args, '--out', join(dir, 'node.safetensors')])];
  expect('code' in node ? node.stderr : '').toBe('');
  expect('code' in browser ? browser.stderr : '').toBe('');
  const [b] = epochs(browser.stdout);
  const [n] = epochs(node.stdout);
  console.log(`epoch 1 loss: Chromium ${b!.loss}, Node ${n!.loss} (${n!.adapter})`);
  // The same kernels on the same data: equal to f32 rounding (bit for bit in our runs).
  expect(Math.abs(n!.loss - b!.loss) / b!.loss).toBeLessThan(1e-6);
  expect([n!.accuracy, n!.evalAccuracy]).toEqual([b!.accuracy, b!.evalAccuracy]);
  expect(node.stderr).toMatch(/wrote .*node\.safetensors and .*node\.json; held-out accuracy/);

  const unknown = await train(['--node', '--preset', 'nope', '--train', '10', '--holdout', '10', '--epochs', '1']);
  expect('code' in unknown && unknown.code).toBe(1);
  expect(unknown.stderr).toBe(`training: unknown preset "nope"; known: ${Object.keys(PRESETS).join(', ')}\n`);
}, 240_000);
