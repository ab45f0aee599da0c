// Column sums (shaders/reduce.wgsl): out[c] (+)= sum_r x[r * rowStride + c]. Gradients of biases
// and of anything broadcast over the batch.
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkTensor, fail } from './check';
import { shaders } from './shaders';

export interface SumRowsArgs {
  x: Tensor;
  out: Tensor;
  rows: number;
  /** Defaults to the number of elements of `out`. */
  rowStride?: number;
  /** Elements of x to skip before the first row. */
  offset?: number;
  accumulate?: boolean;
  label?: string;
}

export async function sumRows(gpu: Gpu, args: SumRowsArgs): Promise<Dispatch> {
  const name = args.label ?? 'sum rows';
  checkTensor(gpu, name, 'x', args.x);
  checkTensor(gpu, name, 'out', args.out);
  const cols = numel(args.out.shape);
  const rowStride = args.rowStride ?? cols;
  const offset = args.offset ?? 0;
  if (!Number.isInteger(args.rows) || args.rows <= 0) fail(name, `rows must be a positive integer, got ${args.rows}`);
  if (rowStride < cols) fail(name, `row stride ${rowStride} is shorter than a row (${cols})`);
  if (!Number.isInteger(offset) || offset < 0) fail(name, `offset must be a non-negative integer, got ${offset}`);
  if (offset + (args.rows - 1) * rowStride + cols > numel(args.x.shape)) {
    fail(name, `${args.rows} rows of ${cols} with stride ${rowStride} from offset ${offset} run past x (${numel(args.x.shape)} elements)`);
  }
  checkDistinct(name, { out: args.out }, { x: args.x });
  return createDispatch(gpu, {
    family: shaders.reduce, entry: 'sum_rows', label: name,
    overrides: { ACCUMULATE: args.accumulate ?? false },
    params: { rows: args.rows, cols, row_stride: rowStride, offset },
    tensors: { x: args.x, out: args.out },
    workgroups: grid1d(gpu, ceilDiv(cols, 64)),
  });
}
