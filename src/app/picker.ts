// The model picker: the built-in DeiT-tiny, the models kept in this browser, or the user's own
// safetensors (with its config.json, unless this engine wrote it). The picker shows what the
// worker has loaded (App.source), whoever loaded it; a built-in or kept choice survives a reload.
// A model that fails to load leaves the previous one in place and says why.
import { attributeLoadError, parseJsonText, type LoadProgress, type ModelInfo } from '../index';
import { $, message, type App, type ModelSource } from './app';

const REMEMBERED = 'vitgpu.model';

/** The choice to restore at start-up (site storage may be blocked: then the built-in model). */
export function remembered(): ModelSource {
  try {
    const v = localStorage.getItem(REMEMBERED);
    return v?.startsWith('saved:') ? (v as ModelSource) : 'builtin';
  } catch {
    return 'builtin';
  }
}

function remember(source: ModelSource): void {
  try {
    localStorage.setItem(REMEMBERED, source);
  } catch {
    // Storage blocked: the choice just does not survive a reload.
  }
}

function showLoadProgress(p: LoadProgress): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = false;
  if (p.total) bar.value = p.loaded / p.total;
}

/** Loads the built-in model or a kept one (`saved:KEY`). */
export async function loadChoice(app: Pick<App, 'engine'>, choice: ModelSource): Promise<ModelInfo> {
  try {
    if (choice.startsWith('saved:')) return await app.engine.loadSavedModel(choice.slice(6), showLoadProgress);
    const info = await app.engine.loadModelFromUrl(new URL('models/deit-tiny/', document.baseURI).href, showLoadProgress);
    return { ...info, name: 'DeiT-tiny (ImageNet-1k)' };
  } finally {
    $('progress').hidden = true;
  }
}

export function setupPicker(app: App): Promise<void> {
  const select = $<HTMLSelectElement>('model');
  const fileInput = $<HTMLInputElement>('model-file');

  /** The models kept in this browser, as the worker last listed them. */
  let saved: Awaited<ReturnType<typeof app.engine.listSavedModels>> = [];

  /** Asks the worker for the kept models, then shows the list. */
  async function refresh(): Promise<void> {
    saved = await app.engine.listSavedModels().catch(() => []);
    // The loaded kept model was deleted: it stays loaded, but is kept no more.
    if (app.source.startsWith('saved:') && !saved.some((m) => `saved:${m.key}` === app.source)) {
      app.source = 'trained';
      remember('builtin');
    }
    render();
  }

  /** The list as it stands, the loaded model selected: at once on a model change, before the worker answers. */
  function render(): void {
    const option = (value: string, text: string) => Object.assign(document.createElement('option'), { value, textContent: text });
    select.replaceChildren(
      option('builtin', 'DeiT-tiny · ImageNet-1k (built in)'),
      ...saved.map((m) => option(`saved:${m.key}`, `${m.name} · ${m.classes.length} classes (kept in this browser)`)),
      ...(app.source === 'file' ? [option('file', `${app.model.name} (opened file)`)] : []),
      ...(app.source === 'trained' ? [option('trained', `${app.model.name} (trained here, not kept)`)] : []),
      option('open', 'Open a safetensors file…'),
    );
    select.value = app.source;
  }

  function describe(m: ModelInfo): void {
    const c = m.config;
    $('model-info').textContent = `${(m.parameters / 1e6).toFixed(1)} M parameters, ${c.numClasses} classes, ${c.imageSize} px, ${m.blockHeads.length} blocks; on ${app.adapter}`;
  }

  async function choose(choice: string): Promise<void> {
    if (choice === 'open') {
      select.value = app.source;
      fileInput.click();
      return;
    }
    if (choice === app.source || !(choice === 'builtin' || choice.startsWith('saved:'))) return;
    app.status('Loading the model…', 'busy');
    try {
      const info = await app.job(() => loadChoice(app, choice as ModelSource));
      app.modelChanged(info, choice as ModelSource);
    } catch (e) {
      app.status(`Could not load that model: ${message(e)}. ${app.model.name} is still loaded.`, 'error');
      await refresh();
    }
  }

  fileInput.addEventListener('change', async () => {
    const files = [...(fileInput.files ?? [])];
    fileInput.value = '';
    const weights = files.find((f) => f.name.toLowerCase().endsWith('.safetensors'));
    const configFile = files.find((f) => f.name.toLowerCase().endsWith('.json'));
    if (!weights) {
      app.status('Choose a .safetensors file (and its config.json, if it came with one).', 'error');
      return;
    }
    app.status(`Loading ${weights.name}…`, 'busy');
    try {
      const config = configFile ? parseJsonText(await configFile.text()) : undefined;
      // The File itself goes to the worker, which streams it to the GPU a tensor at a time: a
      // file of gigabytes is never read whole (Chromium fails such a read with a NotReadableError
      // that speaks of permission problems). Its limits are the adapter's, named when they refuse it.
      const info = await app.job(() => app.engine.loadModel(weights.name, weights, config, showLoadProgress));
      app.modelChanged({ ...info, name: weights.name }, 'file');
    } catch (e) {
      // The sentence names the checkpoint already; a config at fault is named in the message.
      const why = attributeLoadError(message(e), { checkpoint: weights.name, ...(configFile && { config: configFile.name }) }).replace(`checkpoint ${weights.name}: `, '');
      app.status(`Could not load ${weights.name}: ${why}. ${app.model.name} is still loaded.`, 'error');
    } finally {
      $('progress').hidden = true;
    }
  });

  select.addEventListener('change', () => void choose(select.value));
  app.pick = choose;
  app.onModelChange((m) => {
    describe(m);
    if (app.source === 'builtin' || app.source.startsWith('saved:')) remember(app.source);
    render();
    void refresh();
  });
  app.onSavedChange(() => void refresh());
  return refresh();
}
