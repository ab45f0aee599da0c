// Headless Chromium for the end-to-end tests: the same browser and flags as the other tests, and
// screenshots saved under test-results/screenshots (CI keeps that folder as an artifact).
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright';
import { inject } from 'vitest';
import { chromiumArgs, chromiumExecutable } from '../../scripts/chromium.js';

export const SCREENSHOTS = 'test-results/screenshots';

export function launch(webgpu = true): Promise<Browser> {
  const args = webgpu ? chromiumArgs : chromiumArgs.filter((a) => a !== '--enable-unsafe-webgpu' && !a.startsWith('--enable-features=Vulkan'));
  return chromium.launch({ executablePath: chromiumExecutable(), args });
}

/** A page on the demo with its errors collected; `ready` waits until the model is loaded. */
export async function openDemo(browser: Browser, hash = ''): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.goto(`${inject('baseUrl')}${hash}`);
  return { page, errors };
}

export async function waitReady(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready="true"]', { timeout: 180_000 });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
}

/** The RGBA bytes of a canvas. */
export async function canvasPixels(page: Page, selector: string): Promise<Buffer> {
  const base64 = await page.$eval(selector, (c) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let s = '';
    for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return btoa(s);
  });
  return Buffer.from(base64, 'base64');
}

/** Mean absolute difference per channel value, 0..255. */
export function meanAbsDiff(a: Buffer, b: Buffer): number {
  if (a.length !== b.length) throw new Error(`pixel buffers differ in size: ${a.length} vs ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** Sets a form control's value as a user would and fires its events. */
export async function setValue(page: Page, selector: string, value: string): Promise<void> {
  await page.$eval(selector, (el, v) => {
    const input = el as HTMLInputElement | HTMLSelectElement;
    input.value = v;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

/**
 * Runs `action` and returns the status line it leads to: the line is marked stale first, so an
 * old message is never mistaken for the answer, then read once it is neither stale nor busy.
 */
export async function statusAfter(page: Page, action: () => Promise<unknown>, selector = '#status', timeout = 180_000): Promise<{ text: string; kind: string }> {
  await page.$eval(selector, (el) => ((el as HTMLElement).dataset.kind = 'stale'));
  await action();
  await page.waitForFunction((s) => !['stale', 'busy'].includes(document.querySelector<HTMLElement>(s)?.dataset.kind ?? ''), selector, { timeout });
  return page.$eval(selector, (el) => ({ text: el.textContent ?? '', kind: (el as HTMLElement).dataset.kind ?? '' }));
}
