// The demo: one engine worker shared by four pages (classify, fine-tune, train from scratch,
// benchmark). All GPU work happens in the worker; this thread only draws.
import { startEngineWorker } from '../worker/client';
import { $, App, message } from './app';
import { setupBench } from './bench';
import { setupClassify } from './classify';
import { setupFinetune } from './finetune';
import { BUILTIN, loadChoice, remembered, setupPicker } from './picker';
import { setupScratch } from './scratch';

const PAGES = ['classify', 'finetune', 'scratch', 'bench'];

function showPage(): void {
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
  const status = $('status');
  const say = (text: string, kind = 'busy') => {
    status.textContent = text;
    status.dataset.kind = kind;
  };
  if (!(await hasWebGpu())) {
    $('no-webgpu').hidden = false;
    say('WebGPU is not available in this browser.', 'error');
    return;
  }
  const engine = startEngineWorker();
  let app: App;
  let choice = remembered();
  try {
    say('Starting the GPU…');
    const { adapter } = await engine.init();
    say(`Loading the model on ${adapter}…`);
    let model;
    try {
      model = await loadChoice({ engine }, choice);
    } catch (e) {
      if (choice === BUILTIN) throw e;
      say(`The model kept from last time could not be loaded (${message(e)}); loading DeiT-tiny…`);
      choice = BUILTIN;
      model = await loadChoice({ engine }, choice);
    }
    app = new App(engine, adapter, model);
    app.status(`${model.name} is loaded on ${adapter}. Choose an image.`);
  } catch (e) {
    $('progress').hidden = true;
    say(`Could not start: ${message(e)}`, 'error');
    return;
  }
  for (const id of ['app', 'tabs', 'model-bar']) $(id).hidden = false;
  setupPicker(app, choice);
  setupClassify(app);
  setupFinetune(app);
  setupScratch(app);
  setupBench(app);
  window.addEventListener('hashchange', showPage);
  showPage();
  document.body.dataset.ready = 'true';
}

void main();
