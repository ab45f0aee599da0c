// Uniform layouts reflected from the WGSL: each shader declares `struct Params { a: u32, b: f32, ... }`
// with 4-byte scalar fields only, so field i sits at byte 4*i and TS never repeats an offset.

export type ParamType = 'u32' | 'i32' | 'f32';
export interface ParamField { name: string; type: ParamType }

export function reflectParams(wgsl: string, structName = 'Params'): ParamField[] {
  const match = new RegExp(`struct\\s+${structName}\\s*\\{([^}]*)\\}`).exec(wgsl);
  if (!match) throw new Error(`WGSL has no struct ${structName}`);
  const body = match[1]!.replace(/\/\/.*$/gm, '');
  const fields: ParamField[] = [];
  for (const part of body.split(',')) {
    const field = part.trim();
    if (!field) continue;
    const m = /^(\w+)\s*:\s*(u32|i32|f32)$/.exec(field);
    if (!m) throw new Error(`struct ${structName}: field "${field}" is not a 4-byte scalar`);
    fields.push({ name: m[1]!, type: m[2] as ParamType });
  }
  return fields;
}

/** Packs values by field name; a missing or unknown name is a programming error and throws. */
export function packParams(fields: readonly ParamField[], values: Record<string, number>, where: string): ArrayBuffer {
  const bytes = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(bytes);
  for (const name of Object.keys(values)) {
    if (!fields.some((f) => f.name === name)) throw new Error(`${where}: unknown parameter "${name}"`);
  }
  fields.forEach((f, i) => {
    const v = values[f.name];
    if (v === undefined) throw new Error(`${where}: parameter "${f.name}" not given`);
    if (f.type === 'f32') view.setFloat32(i * 4, v, true);
    else if (f.type === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${where}: ${f.name}=${v} is not a u32`);
      view.setUint32(i * 4, v, true);
    } else view.setInt32(i * 4, v, true);
  });
  return bytes;
}
