// A training page's interrupted run: kept in the browser when it starts (see training/runs.ts),
// offered again after a reload as "Resume the interrupted run" or "Discard".
import { forgetRun, interruptedRun, keepRun, MAX_KEPT_IMAGES_BYTES, type InterruptedRun, type KeptRun, type TrainRequest } from '../index';
import { message } from './app';

/**
 * Test-only: a lower cap on the images kept with a run, so that the end-to-end tests reach the
 * path that asks for the images again without hundreds of megabytes of them.
 */
const TEST_ONLY_CAP_KEY = 'vitgpu.testOnly.keptImagesCap';

function keptImagesCap(): number {
  try {
    const v = Number(localStorage.getItem(TEST_ONLY_CAP_KEY) ?? Number.NaN);
    return Number.isFinite(v) ? v : MAX_KEPT_IMAGES_BYTES;
  } catch {
    return MAX_KEPT_IMAGES_BYTES;
  }
}

/** A new run's checkpoint key: one per run, so a run never resumes from another's checkpoint. */
export const newRunKey = (page: string) => `${page}-${Date.now()}`;

/**
 * Keeps a run that starts now, with its images (by class, with their file names) when they fit.
 * Resolves to a note for the user when less than the whole run was kept: never rejects, since the
 * run trains either way.
 */
export async function keepStartedRun(page: string, baseName: string, request: TrainRequest & { checkpointKey: string }, names?: string[][]): Promise<string | null> {
  const ds = request.dataset;
  const dataset = ds.kind === 'images'
    ? { ...ds, classes: ds.classes.map((c, k) => ({ name: c.name, images: c.images.map((img, i) => ({ name: names![k]![i]!, size: (img as Blob).size, blob: img as Blob })) })) }
    : ds;
  const run: KeptRun = { key: request.checkpointKey, page, baseName, startedAt: Date.now(), imagesKept: true, request: { ...request, dataset } };
  try {
    const { warning } = await keepRun(run, keptImagesCap());
    return warning ? `After a reload, resuming this run asks for its images again: ${warning}.` : null;
  } catch (e) {
    return `This run cannot resume after a reload (${message(e)}); it trains all the same.`;
  }
}

/** The "Resume the interrupted run" offer in `box` (a `.resume` and a `.discard` button, a `.text` line). */
export class ResumeOffer {
  run: InterruptedRun | null = null;
  private readonly resumeButton: HTMLButtonElement;

  constructor(private readonly page: string, private readonly box: HTMLElement, resume: (run: InterruptedRun) => void) {
    this.resumeButton = box.querySelector<HTMLButtonElement>('.resume')!;
    this.resumeButton.addEventListener('click', () => this.run && resume(this.run));
    box.querySelector('.discard')!.addEventListener('click', () => {
      if (this.run) void forgetRun(this.run.key).catch(() => undefined);
      this.hide();
    });
  }

  /** Looks for the page's interrupted run (storage refused: none) and offers it. */
  async refresh(): Promise<void> {
    this.run = await interruptedRun(this.page).catch(() => null);
    const run = this.run;
    this.box.hidden = !run;
    if (!run) return;
    const epochs = run.request.settings?.epochs ?? run.epochsDone;
    this.resumeButton.textContent = `Resume the interrupted run (epoch ${run.epochsDone} of ${epochs}, started ${new Date(run.startedAt).toLocaleString()})`;
    const ds = run.request.dataset;
    const what = ds.kind === 'images'
      ? `${ds.classes.length} classes, ${ds.classes.reduce((n, c) => n + c.images.length, 0)} images, fine-tuning ${run.baseName}`
      : run.baseName;
    const images = ds.kind === 'images' && !run.imagesKept ? ' Its images are not kept in this browser: resuming asks for them again.' : '';
    this.box.querySelector('.text')!.textContent = `A run (${what}) stopped after epoch ${run.epochsDone} of ${epochs}: it can go on from there.${images}`;
  }

  hide(): void {
    this.run = null;
    this.box.hidden = true;
  }
}
