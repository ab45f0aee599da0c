// The demo: one engine worker shared by five pages (classify, fine-tune, train from scratch,
// segment, benchmark). All GPU work happens in the worker; this thread only draws.
import { connectEngine } from '../index';
import { $, App, message, setStatus, type StatusKind } from './app';
import { setupBench } from './bench';
import { setupClassify } from './classify';
import { setupFinetune } from './finetune';
import { loadChoice, remembered, setupPicker } from './picker';
import { setupScratch } from './scratch';
import { setupSegment } from './segment';
import { Webcam } from './webcam';

const PAGES = ['classify', 'finetune', 'scratch', 'segment', 'bench'];

function showPage(): void {
  for (const w of Webcam.all) w.stop();
  const name = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'classify';
  for (const p of PAGES) $(`page-${p}`).hidden = p !== name;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#tabs a')) a.setAttribute('aria-current', String(a.hash === `#${name}`));
}

async function hasWebGpu(): Promise<boolean> {
  if (!('gpu' in navigator)) return false;
  try {
    return (await navigator.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const say = (text: string, kind: StatusKind = 'busy') => setStatus($('status'), text, kind);
  if (!(await hasWebGpu())) {
    $('no-webgpu').hidden = false;
    say('WebGPU is not available in this browser.', 'error');
    return;
  }
  const engine = connectEngine(new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'vit-engine' }));
  // Said as it happens; the worker re-creates the device, and a training reports its resume itself.
  void engine.onDeviceLost((lost) => say(`${lost.message[0]!.toUpperCase()}${lost.message.slice(1)}.`, 'error'));
  let app: App;
  let choice = remembered();
  try {
    say('Starting the GPU…');
    const { adapter } = await engine.init();
    say(`Loading the model on ${adapter}…`);
    let model;
    let note = '';
    try {
      model = await loadChoice({ engine }, choice);
    } catch (e) {
      if (choice === 'builtin') throw e;
      note = ` (the model chosen last time could not be loaded: ${message(e)})`;
      say(`Loading DeiT-tiny${note}…`);
      choice = 'builtin'; // the picker remembers it
      model = await loadChoice({ engine }, choice);
    }
    app = new App(engine, adapter, model, choice);
    app.status(`${model.name} is loaded on ${adapter}${note}. Choose an image.`, note ? 'error' : 'ok');
  } catch (e) {
    $('progress').hidden = true;
    say(`Could not start: ${message(e)}`, 'error');
    return;
  }
  for (const id of ['app', 'tabs', 'model-bar']) $(id).hidden = false;
  // Ready once the lists of kept models and the interrupted runs are drawn.
  const lists = [setupPicker(app), setupFinetune(app), setupScratch(app)];
  setupClassify(app);
  setupSegment(app);
  setupBench(app);
  window.addEventListener('hashchange', showPage);
  showPage();
  await Promise.all(lists);
  document.body.dataset.ready = 'true';
}

/**
 * Offline after the first visit: the service worker caches the whole build when it installs.
 * Production builds only (the dev server's modules change under it), and only once the model has
 * loaded: Chromium fails one of two concurrent downloads of the same large file
 * (ERR_CACHE_WRITE_FAILURE), so the cache must not race the page for the model.
 */
function workOffline(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(new URL('sw.js', document.baseURI)).catch((e: unknown) => console.warn(`offline use unavailable: ${message(e)}`));
}

void main().finally(workOffline);
