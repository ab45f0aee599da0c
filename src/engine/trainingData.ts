// Training data as the engine's callers describe it (the bundled Fashion-MNIST, IDX files, images
// by class) to decoded, labelled, split images. DOM-free: the worker and the Node CLI pass in where
// Fashion-MNIST comes from and how an image is decoded.
import { FASHION_MNIST_CLASSES, greyToRgba, parseIdxImages, selectIdx, type IdxImages, type IdxSelection } from '../data/idx';
import type { ModelConfig } from '../graph/family';
import { preprocess, type Pixels } from '../image/preprocess';
import type { TrainRequest } from '../worker/api';
import type { Dataset } from './dataset';

export interface Item { pixels: Pixels; label: number }

/** A TrainRequest's dataset, with images of any type the caller can decode. */
export type DatasetRequest<Image> =
  | Exclude<TrainRequest['dataset'], { kind: 'images' }>
  | { kind: 'images'; classes: { name: string; images: Image[] }[]; holdoutFraction?: number };

export interface DataSources<Image> {
  /** The bundled Fashion-MNIST split. */
  fashionMnist(): Promise<IdxImages>;
  decode(image: Image): Promise<Pixels>;
}

/** Preprocessed for the model being trained. */
export function dataset(items: Item[], config: ModelConfig): Dataset {
  return { inputs: preprocess(items.map((i) => i.pixels), config), labels: Int32Array.from(items, (i) => i.label), count: items.length };
}

function idxItems({ images, labels }: IdxImages, selection: IdxSelection, name: string): Item[] {
  const [, height, width] = images.shape as [number, number, number];
  return selectIdx(labels.data, selection, name).map((i) => ({ pixels: { width, height, data: greyToRgba(images, i), channels: 4 }, label: labels.data[i]! }));
}

/** Decoded images with their labels, split into training and held-out sets, and the class names. */
export async function trainingData<Image>(ds: DatasetRequest<Image>, sources: DataSources<Image>): Promise<{ classes: string[]; items: { train: Item[]; holdout: Item[] } }> {
  if (ds.kind === 'fashion-mnist') {
    const split = await sources.fashionMnist();
    const n = split.labels.data.length;
    if (ds.perClass !== undefined && ds.train !== undefined) throw new Error('Fashion-MNIST: give train or perClass, not both');
    const train = ds.train ?? (ds.perClass === undefined ? n - ds.holdout : 0);
    if (train + ds.holdout > n) throw new Error(`Fashion-MNIST: ${train} + ${ds.holdout} images asked for, the bundled split has ${n}`);
    const [trainSel, holdoutSel]: IdxSelection[] = ds.perClass === undefined
      ? [{ offset: 0, count: train }, { offset: train, count: ds.holdout }]
      : [{ offset: ds.holdout, perClass: ds.perClass }, { offset: 0, count: ds.holdout }];
    return {
      classes: FASHION_MNIST_CLASSES,
      items: { train: idxItems(split, trainSel!, 'Fashion-MNIST training images'), holdout: idxItems(split, holdoutSel!, 'Fashion-MNIST held-out images') },
    };
  }
  if (ds.kind === 'idx') {
    const [train, holdout] = await Promise.all([parseIdxImages(ds.train.images, ds.train.labels, 'training'), parseIdxImages(ds.holdout.images, ds.holdout.labels, 'held-out')]);
    const items = { train: idxItems(train!, ds.train, 'training images'), holdout: idxItems(holdout!, ds.holdout, 'held-out images') };
    const classes = ds.classes ?? Array.from({ length: [...items.train, ...items.holdout].reduce((m, i) => Math.max(m, i.label), 0) + 1 }, (_, i) => String(i));
    return { classes, items };
  }
  const empty = ds.classes.filter((c) => c.images.length === 0).map((c) => c.name);
  if (empty.length) throw new Error(`training: class${empty.length > 1 ? 'es' : ''} ${empty.map((n) => `"${n}"`).join(', ')} ha${empty.length > 1 ? 've' : 's'} no images`);
  if (ds.classes.length < 2) throw new Error('training: needs at least two classes');
  const fraction = ds.holdoutFraction ?? 0.2;
  const train: Item[] = [];
  const holdout: Item[] = [];
  for (const [label, c] of ds.classes.entries()) {
    const pixels = await Promise.all(c.images.map((img) => sources.decode(img)));
    const held = c.images.length > 1 ? Math.floor(c.images.length * fraction) : 0;
    pixels.forEach((p, i) => (i < pixels.length - held ? train : holdout).push({ pixels: p, label }));
  }
  return { classes: ds.classes.map((c) => c.name), items: { train, holdout } };
}

