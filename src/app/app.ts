// What the demo's pages share: the engine client, the status line, the loaded model, and one rule
// for GPU work: while a long job (training, a benchmark) runs, controls marked `data-gpu` are
// disabled, so the page never queues work behind it without saying so.
import type { ClassifyResult, EngineClient, ModelInfo } from '../index';

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: no element #${id}`);
  return el as T;
};

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export type StatusKind = 'ok' | 'busy' | 'error';

/** Writes a status line; `data-kind` styles errors and tells tests when work is under way. */
export function setStatus(el: HTMLElement, text: string, kind: StatusKind = 'ok'): void {
  el.textContent = text;
  el.dataset.kind = kind;
}

/**
 * Where the loaded model came from: the built-in one, one kept in the browser, a file the user
 * opened, or a training result that is not kept.
 */
export type ModelSource = 'builtin' | `saved:${string}` | 'file' | 'trained';

export class App {
  private listeners: ((m: ModelInfo) => void)[] = [];
  private savedListeners: (() => void)[] = [];
  private jobs = 0;
  /** Loads a model by its picker value ('builtin', 'saved:KEY'); set by the model picker. */
  pick: (choice: string) => Promise<void> = async () => {};

  constructor(readonly engine: EngineClient, readonly adapter: string, public model: ModelInfo, public source: ModelSource) {}

  status(text: string, kind: StatusKind = 'ok'): void {
    setStatus($('status'), text, kind);
  }

  /** Tells every page that another model is loaded (picked, trained or restored). */
  modelChanged(model: ModelInfo, source: ModelSource): void {
    this.model = model;
    this.source = source;
    this.status(`${model.name} is loaded.`);
    for (const fn of this.listeners) fn(model);
  }

  onModelChange(fn: (m: ModelInfo) => void): void {
    this.listeners.push(fn);
    fn(this.model);
  }

  /** Tells listeners (the model picker, the saved list) that the models kept in the browser changed. */
  savedChanged(): void {
    for (const fn of this.savedListeners) fn();
  }

  onSavedChange(fn: () => void): void {
    this.savedListeners.push(fn);
  }

  get busy(): boolean {
    return this.jobs > 0;
  }

  /** Runs a long GPU job with the `data-gpu` controls disabled until it ends. */
  async job<T>(fn: () => Promise<T>): Promise<T> {
    this.jobs++;
    this.syncControls();
    try {
      return await fn();
    } finally {
      this.jobs--;
      this.syncControls();
    }
  }

  private syncControls(): void {
    for (const el of document.querySelectorAll<HTMLButtonElement | HTMLInputElement | HTMLSelectElement>('[data-gpu]')) el.disabled = this.busy;
  }
}

/** Top-k predictions as labelled probability bars. */
export function showPredictions(list: HTMLElement, r: ClassifyResult): void {
  list.replaceChildren(...r.top.map((p) => {
    const li = document.createElement('li');
    li.innerHTML = `<span class="label"></span><span class="prob">${(100 * p.prob).toFixed(1)}%</span><span class="bar"><span style="width:${(100 * p.prob).toFixed(1)}%"></span></span>`;
    li.querySelector('.label')!.textContent = p.label;
    return li;
  }));
}

/** Files from a drop (or paste), images or not: the engine names what it cannot decode. */
export function onFileDrop(target: HTMLElement, fn: (files: File[]) => void): void {
  target.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    target.classList.add('over');
  });
  target.addEventListener('dragleave', () => target.classList.remove('over'));
  target.addEventListener('drop', (ev) => {
    ev.preventDefault();
    target.classList.remove('over');
    const files = [...(ev.dataTransfer?.files ?? [])];
    if (files.length) fn(files);
  });
}

/** Calls `fn` with the files picked in a file input, then clears it so the same file can be picked again. */
export function onFilePick(input: HTMLInputElement, fn: (files: File[]) => void): void {
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    input.value = '';
    if (files.length) fn(files);
  });
}

/** Draws an image into a square canvas as the model sees it: the centre square, scaled. */
export async function drawSquare(canvas: HTMLCanvasElement, image: Blob): Promise<void> {
  const bitmap = await createImageBitmap(image);
  const side = Math.min(bitmap.width, bitmap.height);
  canvas.getContext('2d')!.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, canvas.width, canvas.height);
  bitmap.close();
}

/** Saves bytes as `name`.safetensors (characters file systems dislike become _). */
export function downloadSafetensors(bytes: ArrayBuffer, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `${name.replace(/[^\w.-]+/g, '_')}.safetensors`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
