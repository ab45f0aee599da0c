// Checkpoints persisted in the browser (IndexedDB: available in pages and workers). A full disk
// is reported, not fatal: training goes on without that save.
const DB = 'vitgpu';
const STORE = 'checkpoints';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`storage: cannot open IndexedDB: ${req.error?.message}`));
  });
}

function request<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return open().then((db) => new Promise<T>((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    tx.oncomplete = () => {
      db.close();
      resolve(req.result);
    };
    tx.onabort = tx.onerror = () => {
      db.close();
      const e = tx.error ?? req.error;
      reject(new Error(e?.name === 'QuotaExceededError' ? 'storage: the browser storage quota is exceeded; checkpoint not saved' : `storage: ${e?.message ?? 'transaction failed'}`));
    };
  }));
}

export function saveCheckpoint(key: string, bytes: Uint8Array): Promise<void> {
  return request('readwrite', (s) => s.put(new Blob([bytes as BlobPart]), key)).then(() => undefined);
}

export async function loadCheckpointBytes(key: string): Promise<Uint8Array | null> {
  const blob = await request<Blob | undefined>('readonly', (s) => s.get(key) as IDBRequest<Blob | undefined>);
  return blob ? new Uint8Array(await blob.arrayBuffer()) : null;
}

export function deleteCheckpoint(key: string): Promise<void> {
  return request('readwrite', (s) => s.delete(key)).then(() => undefined);
}
