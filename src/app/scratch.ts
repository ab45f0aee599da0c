// The train-from-scratch page: the small Fashion-MNIST ViT trained on the bundled split, with live
// curves, and a confusion matrix over the held-out images afterwards.
import { FASHION_MNIST_CLASSES, fetchFashionMnist, greyToRgba } from '../index';
import { $, setStatus, type App } from './app';
import { TrainingChart } from './chart';
import { runTraining, wireStop, type RunView } from './training';

const KEEP_AS = 'Fashion-MNIST ViT';

export function setupScratch(app: App): void {
  const view: RunView = { chart: new TrainingChart($('sc-chart')), bar: $<HTMLProgressElement>('sc-progress'), status: $('sc-status'), stop: $<HTMLButtonElement>('sc-stop') };
  const num = (id: string) => Number($<HTMLInputElement>(id).value);

  $('sc-train-btn').addEventListener('click', async () => {
    const train = num('sc-train');
    const holdout = num('sc-holdout');
    view.chart.clear();
    $('sc-confusion').innerHTML = '<p class="muted">Appears after training.</p>';
    setStatus(view.status, 'Loading Fashion-MNIST…', 'busy');
    await runTraining(app, {
      model: 'fashion-mnist',
      dataset: { kind: 'fashion-mnist', train, holdout },
      // Crops and flips: the full recipe (mixup, RandAugment) needs far longer runs to pay off on 28 px.
      settings: { epochs: num('sc-epochs'), batch: num('sc-batch'), trainable: 'all', lr: 1e-3, warmupEpochs: 1, augment: 'light' },
    }, KEEP_AS, view, { after: () => confusion(train, holdout) });
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
}
