// What training keeps in the browser, in IndexedDB (available in pages and workers): checkpoints
// of running trainings, the runs a page started (to resume them after a reload, see runs.ts), and
// finished models the user saved. A full disk is reported, not fatal: training goes on without
// that save.
import { readSafetensorsHeader } from '../weights/safetensors';
import { blobSource } from '../weights/source';

const DB = 'vitgpu';
const STORES = ['checkpoints', 'models', 'runs'] as const;
export type Store = (typeof STORES)[number];
const WHAT: Record<Store, string> = { checkpoints: 'checkpoint', models: 'model', runs: 'run' };

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 3);
    req.onupgradeneeded = () => {
      for (const s of STORES) if (!req.result.objectStoreNames.contains(s)) req.result.createObjectStore(s);
    };
    req.onsuccess = () => resolve(req.result);
    req.onblocked = () => reject(new Error('storage: another tab of this site holds an older version of its database open; close it and try again'));
    req.onerror = () => reject(new Error(`storage: cannot open IndexedDB: ${req.error?.message}`));
  });
}

/** One request in a transaction of its own (over more stores when `also` names them, for `fn` to reach through `transaction`). */
export function request<T>(store: Store, mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>, also: Store[] = []): Promise<T> {
  return open().then((db) => new Promise<T>((resolve, reject) => {
    const tx = db.transaction([store, ...also], mode);
    const req = fn(tx.objectStore(store));
    tx.oncomplete = () => {
      db.close();
      resolve(req.result);
    };
    tx.onabort = tx.onerror = () => {
      db.close();
      const e = tx.error ?? req.error;
      reject(new Error(e?.name === 'QuotaExceededError' ? `storage: the browser storage quota is exceeded; ${WHAT[store]} not saved` : `storage: ${e?.message ?? 'transaction failed'}`));
    };
  }));
}

export function saveCheckpoint(key: string, bytes: Uint8Array): Promise<void> {
  return request('checkpoints', 'readwrite', (s) => s.put(new Blob([bytes as BlobPart]), key)).then(() => undefined);
}

export async function loadCheckpointBytes(key: string): Promise<Uint8Array | null> {
  const blob = await request<Blob | undefined>('checkpoints', 'readonly', (s) => s.get(key) as IDBRequest<Blob | undefined>);
  return blob ? new Uint8Array(await blob.arrayBuffer()) : null;
}

export function deleteCheckpoint(key: string): Promise<void> {
  return request('checkpoints', 'readwrite', (s) => s.delete(key)).then(() => undefined);
}

/**
 * The epoch a stored checkpoint ends, or null when none is stored or it cannot be resumed from:
 * read from its safetensors header alone (a fine-tuning checkpoint is tens of megabytes; the page
 * asks on every load). A corrupt header is no checkpoint, so its run is forgotten, not kept failing.
 */
export async function checkpointEpoch(key: string): Promise<number | null> {
  const blob = await request<Blob | undefined>('checkpoints', 'readonly', (s) => s.get(key) as IDBRequest<Blob | undefined>);
  if (!blob) return null;
  const header = await readSafetensorsHeader(blobSource(blob, `checkpoint "${key}"`)).catch(() => null);
  const epoch = Number(header?.metadata.epoch);
  return Number.isInteger(epoch) ? epoch : null;
}

/** A model kept in the browser: safetensors with its config (and labels) in the metadata. */
export interface SavedModel {
  key: string;
  name: string;
  classes: string[];
  /** Milliseconds since the epoch. */
  savedAt: number;
  bytes: number;
}

interface StoredModel extends SavedModel { file: Blob }

export function saveModelFile(model: SavedModel, file: Uint8Array): Promise<void> {
  const record: StoredModel = { ...model, file: new Blob([file as BlobPart]) };
  return request('models', 'readwrite', (s) => s.put(record, model.key)).then(() => undefined);
}

export async function listModels(): Promise<SavedModel[]> {
  const all = await request<StoredModel[]>('models', 'readonly', (s) => s.getAll() as IDBRequest<StoredModel[]>);
  return all.map(({ file: _, ...info }) => info).sort((a, b) => b.savedAt - a.savedAt);
}

/** A saved model's record, its file as the stored Blob: read by slices, never held whole in the heap. */
export async function loadModelFile(key: string): Promise<{ info: SavedModel; file: Blob }> {
  const record = await request<StoredModel | undefined>('models', 'readonly', (s) => s.get(key) as IDBRequest<StoredModel | undefined>);
  if (!record) throw new Error(`storage: no saved model "${key}"`);
  const { file, ...info } = record;
  return { info, file };
}

export function deleteModel(key: string): Promise<void> {
  return request('models', 'readwrite', (s) => s.delete(key)).then(() => undefined);
}
