// Pipeline cache. A key is (shader family, entry point, override constants): overrides select code
// paths (transposes, epilogues), never shapes, which travel in uniforms so that one pipeline
// serves every shape. Pipelines are created asynchronously so compilation never stalls a frame.

export type Overrides = Record<string, number | boolean>;

export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  constructor(private readonly device: GPUDevice) {}

  get(family: string, code: string, entryPoint: string, overrides: Overrides = {}): Promise<GPUComputePipeline> {
    const names = Object.keys(overrides).sort();
    const key = `${family}/${entryPoint}/${names.map((n) => `${n}=${Number(overrides[n])}`).join(',')}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const constants: Record<string, number> = {};
      for (const n of names) constants[n] = Number(overrides[n]);
      const module = this.module(family, code);
      pipeline = this.device
        .createComputePipelineAsync({ label: key, layout: 'auto', compute: { module, entryPoint, constants } })
        .catch(async (e: unknown) => {
          // Surface the WGSL compiler's own messages, not just "invalid shader module".
          const info = await module.getCompilationInfo();
          const messages = info.messages.map((m) => `  ${m.type} at ${family}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`);
          throw new Error(`pipeline ${key} failed: ${e instanceof Error ? e.message : String(e)}${messages.length ? `\n${messages.join('\n')}` : ''}`);
        });
      this.pipelines.set(key, pipeline);
      // A failed compile must not poison the cache for later callers.
      pipeline.catch(() => this.pipelines.delete(key));
    }
    return pipeline;
  }

  get size(): number {
    return this.pipelines.size;
  }

  private module(family: string, code: string): GPUShaderModule {
    let module = this.modules.get(family);
    if (!module) {
      module = this.device.createShaderModule({ label: family, code });
      this.modules.set(family, module);
    }
    return module;
  }
}
