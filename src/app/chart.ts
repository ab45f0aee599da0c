// Live training curves with uPlot: loss on the left axis, training and held-out accuracy on the
// right, against epochs (fractional between epoch ends). Points are appended as progress arrives.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { TrainProgress } from '../index';

export class TrainingChart {
  private readonly x: number[] = [];
  private readonly loss: (number | null)[] = [];
  private readonly accuracy: (number | null)[] = [];
  private readonly heldOut: (number | null)[] = [];
  private readonly plot: uPlot;

  constructor(private readonly container: HTMLElement) {
    const width = Math.max(320, Math.min(container.clientWidth || 640, 960));
    this.plot = new uPlot({
      width, height: 240,
      scales: { x: { time: false }, acc: { range: [0, 1] } },
      axes: [
        { label: 'epoch' },
        { label: 'loss', scale: 'loss' },
        { label: 'accuracy', scale: 'acc', side: 1, grid: { show: false }, values: (_, ticks) => ticks.map((t) => `${Math.round(100 * t)}%`) },
      ],
      series: [
        { label: 'epoch', value: (_, v) => (v == null ? '' : v.toFixed(2)) },
        { label: 'loss', scale: 'loss', stroke: '#2f6fdf', width: 1.5, spanGaps: true, value: (_, v) => (v == null ? '' : v.toFixed(3)) },
        { label: 'batch accuracy', scale: 'acc', stroke: '#e8a33d', width: 1, spanGaps: true, value: (_, v) => (v == null ? '' : `${(100 * v).toFixed(1)}%`) },
        { label: 'held-out accuracy', scale: 'acc', stroke: '#2a9d57', width: 2, spanGaps: true, points: { show: true, size: 6 }, value: (_, v) => (v == null ? '' : `${(100 * v).toFixed(1)}%`) },
      ],
    }, [[], [], [], []], container);
    // Follow the container's width (it is 0 while its page is hidden).
    new ResizeObserver(() => {
      if (container.clientWidth > 0) this.plot.setSize({ width: container.clientWidth, height: 240 });
    }).observe(container);
  }

  add(p: TrainProgress): void {
    if (p.features || p.recovered) return; // not a training step
    const atEpochEnd = p.evalAccuracy !== undefined;
    this.x.push(p.epoch + p.step / p.stepsPerEpoch + (atEpochEnd ? 1e-6 : 0));
    this.loss.push(Number.isFinite(p.loss) ? p.loss : null);
    this.accuracy.push(Number.isFinite(p.accuracy) ? p.accuracy : null);
    this.heldOut.push(atEpochEnd && Number.isFinite(p.evalAccuracy) ? p.evalAccuracy! : null);
    this.plot.setData([this.x, this.loss, this.accuracy, this.heldOut] as uPlot.AlignedData);
    this.container.dataset.points = String(this.x.length);
  }

  /** Drops the points after `epochs` finished epochs (a resumed run starts again from there). */
  truncate(epochs: number): void {
    const keep = this.x.findIndex((x) => x > epochs + 1e-5);
    if (keep < 0) return;
    for (const a of [this.x, this.loss, this.accuracy, this.heldOut]) a.length = keep;
    this.plot.setData([this.x, this.loss, this.accuracy, this.heldOut] as uPlot.AlignedData);
    this.container.dataset.points = String(this.x.length);
  }

  clear(): void {
    for (const a of [this.x, this.loss, this.accuracy, this.heldOut]) a.length = 0;
    this.plot.setData([[], [], [], []]);
    this.container.dataset.points = '0';
  }
}

/** "3 min 20 s" style. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '…';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function accuracyText(acc: number): string {
  return Number.isNaN(acc) ? 'no held-out images to measure accuracy' : `held-out accuracy ${(100 * acc).toFixed(1)}%`;
}

/** The status line of a run that went back to a checkpoint after its device was lost. */
export function recoveredText({ message, reason }: NonNullable<TrainProgress['recovered']>): string {
  return `${message[0]!.toUpperCase()}${message.slice(1)} (the GPU device was lost: ${reason}); training goes on.`;
}

/** One status line for a training run's progress. */
export function progressText(p: TrainProgress): string {
  if (p.recovered) return recoveredText(p.recovered);
  if (p.features) {
    return `Running the frozen layers over the images, once: ${p.features.done} of ${p.features.total}, ` +
      `${p.imagesPerSecond.toFixed(1)} images/s, about ${duration(p.secondsLeft)} left`;
  }
  if (p.evalAccuracy !== undefined) {
    return `Epoch ${p.epoch + 1} of ${p.epochs} done: ${accuracyText(p.evalAccuracy)}` +
      (p.warning ? `. ${p.warning}` : '');
  }
  return `Epoch ${p.epoch + 1} of ${p.epochs}, step ${p.step} of ${p.stepsPerEpoch}: loss ${p.loss.toFixed(3)}, batch accuracy ${(100 * p.accuracy).toFixed(0)}%, ` +
    `${p.imagesPerSecond.toFixed(1)} images/s, about ${duration(p.secondsLeft)} left`;
}
