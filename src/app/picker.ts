// The model picker: the built-in DeiT-tiny, the models kept in this browser, or the user's own
// safetensors (with its config.json, unless this engine wrote it). The choice survives a reload.
// A model that fails to load leaves the previous one in place and says why.
import type { LoadProgress, ModelInfo } from '../worker/api';
import { $, message, type App } from './app';

const REMEMBERED = 'vitgpu.model';
export const BUILTIN = 'builtin';

export function remembered(): string {
  return localStorage.getItem(REMEMBERED) ?? BUILTIN;
}

export function showLoadProgress(p: LoadProgress): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = p.stage === 'upload' && p.loaded === p.total;
  if (p.total) bar.value = p.loaded / p.total;
}

/** Loads the built-in model or a saved one (`saved:KEY`). */
export async function loadChoice(app: Pick<App, 'engine'>, choice: string): Promise<ModelInfo> {
  try {
    if (choice.startsWith('saved:')) return await app.engine.loadSavedModel(choice.slice(6), showLoadProgress);
    const info = await app.engine.loadModelFromUrl(new URL('models/deit-tiny/', document.baseURI).href, showLoadProgress);
    return { ...info, name: 'DeiT-tiny (ImageNet-1k)' };
  } finally {
    $('progress').hidden = true;
  }
}

export function setupPicker(app: App, initial: string): void {
  const select = $<HTMLSelectElement>('model');
  const fileInput = $<HTMLInputElement>('model-file');
  let current = initial;
  let fileName: string | null = null;

  async function refresh(): Promise<void> {
    const saved = await app.engine.listSavedModels().catch(() => []);
    const option = (value: string, text: string) => Object.assign(document.createElement('option'), { value, textContent: text });
    select.replaceChildren(
      option(BUILTIN, 'DeiT-tiny · ImageNet-1k (built in)'),
      ...saved.map((m) => option(`saved:${m.key}`, `${m.name} · ${m.classes.length} classes (kept in this browser)`)),
      ...(fileName ? [option('file', `${fileName} (opened file)`)] : []),
      option('open', 'Open a safetensors file…'),
    );
    if (![...select.options].some((o) => o.value === current)) current = app.model.name === fileName ? 'file' : BUILTIN;
    select.value = current;
  }

  function describe(m: ModelInfo): void {
    const c = m.config;
    $('model-info').textContent = `${(m.parameters / 1e6).toFixed(1)} M parameters, ${c.numClasses} classes, ${c.imageSize} px, ${c.depth} blocks; on ${app.adapter}`;
  }

  async function choose(choice: string): Promise<void> {
    if (choice === 'open') {
      select.value = current;
      fileInput.click();
      return;
    }
    if (choice === current && choice !== 'file') return;
    app.status('Loading the model…', 'busy');
    try {
      const info = await loadChoice(app, choice);
      current = choice;
      localStorage.setItem(REMEMBERED, choice);
      app.modelChanged(info);
    } catch (e) {
      app.status(`Could not load that model: ${message(e)}. ${app.model.name} is still loaded.`, 'error');
    }
    await refresh();
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
      let config: unknown;
      if (configFile) {
        try {
          config = JSON.parse(await configFile.text());
        } catch (e) {
          throw new Error(`${configFile.name} is not valid JSON (${message(e)})`);
        }
      }
      const info = await app.engine.loadModel(weights.name, await weights.arrayBuffer(), config, showLoadProgress);
      fileName = weights.name;
      current = 'file';
      app.modelChanged({ ...info, name: weights.name });
    } catch (e) {
      app.status(`Could not load ${weights.name}: ${message(e)}. ${app.model.name} is still loaded.`, 'error');
    } finally {
      $('progress').hidden = true;
    }
    await refresh();
  });

  select.addEventListener('change', () => void choose(select.value));
  app.pick = choose;
  app.onModelChange(describe);
  app.onSavedChange(() => {
    // A model just trained and saved is the loaded one: select it.
    void app.engine.listSavedModels().then((saved) => {
      const match = saved.find((m) => m.name === app.model.name);
      if (match) {
        current = `saved:${match.key}`;
        localStorage.setItem(REMEMBERED, current);
      }
      return refresh();
    });
  });
  void refresh();
}
