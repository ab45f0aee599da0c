// The train-from-scratch page: the small Fashion-MNIST ViT trained on the bundled split, with live
// curves, and a confusion matrix over the held-out images afterwards. A run is kept in the browser
// as it starts, to resume after a stop or a reload (see interrupted.ts).
import { FASHION_MNIST_CLASSES, fetchFashionMnist, forgetRun, forgetUnlessResumable, greyToRgba, resumeRequest, type TrainRequest } from '../index';
import { $, setStatus, type App } from './app';
import { TrainingChart } from './chart';
import { keepStartedRun, newRunKey, ResumeOffer } from './interrupted';
import { runTraining, wireStop, type RunView } from './training';

const PAGE = 'scratch';
const KEEP_AS = 'Fashion-MNIST ViT';

export function setupScratch(app: App): Promise<void> {
  const view: RunView = { chart: new TrainingChart($('sc-chart')), bar: $<HTMLProgressElement>('sc-progress'), status: $('sc-status'), stop: $<HTMLButtonElement>('sc-stop') };
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const note = (text: string | null) => {
    $('sc-note').textContent = text ?? '';
    $('sc-note').hidden = !text;
  };
  const offer = new ResumeOffer(PAGE, $('sc-interrupted'), (run) => void train(resumeRequest(run)));

  /** Trains `request` (a new run, or a resumed one); `kept` settles once the run is kept in the browser. */
  async function train(request: TrainRequest, kept: Promise<unknown> = Promise.resolve()): Promise<void> {
    const ds = request.dataset;
    if (ds.kind !== 'fashion-mnist') return;
    offer.hide();
    view.chart.clear();
    $('sc-confusion').innerHTML = '<p class="muted">Appears after training.</p>';
    setStatus(view.status, request.resume ? 'Resuming from the last finished epoch…' : 'Loading Fashion-MNIST…', 'busy');
    const result = await runTraining(app, request, KEEP_AS, view, { after: () => confusion(ds.train ?? 0, ds.holdout) });
    const key = request.checkpointKey!;
    await kept;
    await (result && !result.stopped ? forgetRun(key) : forgetUnlessResumable(key)).catch(() => undefined);
    // Stopped (or failed) after an epoch: it can go on from there.
    await offer.refresh();
  }

  $('sc-train-btn').addEventListener('click', () => {
    const request = {
      model: 'fashion-mnist' as const,
      dataset: { kind: 'fashion-mnist' as const, train: num('sc-train'), holdout: num('sc-holdout') },
      // Crops and flips: the full recipe (mixup, RandAugment) needs far longer runs to pay off on 28 px.
      settings: { epochs: num('sc-epochs'), batch: num('sc-batch'), accumulate: num('sc-accumulate'), trainable: 'all' as const, lr: 1e-3, warmupEpochs: 1, augment: 'light' as const },
      checkpointKey: newRunKey(PAGE),
    };
    note(null);
    void train(request, keepStartedRun(PAGE, 'the small ViT from scratch', request).then(note));
  });
  wireStop(app, view);

  /** Classifies the held-out images with the trained model and tabulates true vs predicted class. */
  async function confusion(start: number, count: number): Promise<void> {
    setStatus(view.status, 'Computing the confusion matrix…', 'busy');
    const { images, labels } = await fetchFashionMnist(new URL('data/fashion-mnist/', document.baseURI));
    const K = FASHION_MNIST_CLASSES.length;
    const counts = Array.from({ length: K }, () => new Array<number>(K).fill(0));
    const chunk = 128;
    for (let s = start; s < start + count; s += chunk) {
      const batch = Array.from({ length: Math.min(chunk, start + count - s) }, (_, j) => new ImageData(greyToRgba(images, s + j), 28, 28));
      const results = await app.engine.classify(batch, { topK: 1 });
      results.forEach((r, j) => counts[labels.data[s + j]!]![r.top[0]!.index]!++);
    }
    const table = document.createElement('table');
    const head = `<tr><th></th>${FASHION_MNIST_CLASSES.map((c) => `<th title="predicted ${c}">${c.split('/')[0]}</th>`).join('')}</tr>`;
    const rows = counts.map((row, t) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      return `<tr><th>${FASHION_MNIST_CLASSES[t]}</th>${row.map((n, p) => {
        const share = n / total;
        const hue = t === p ? '42,157,87' : '200,60,50';
        return `<td title="${n} of ${total} ${FASHION_MNIST_CLASSES[t]} predicted ${FASHION_MNIST_CLASSES[p]}" style="background: rgba(${hue},${Math.min(1, share * 1.5).toFixed(2)})">${n || ''}</td>`;
      }).join('')}</tr>`;
    });
    table.innerHTML = head + rows.join('');
    $('sc-confusion').replaceChildren(table);
  }

  return offer.refresh();
}
