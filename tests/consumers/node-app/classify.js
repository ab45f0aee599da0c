// node classify.js IMAGE [MODEL_DIR]: the top-3 classes of a PNG or JPEG, with the model folder
// (config.json, model.safetensors, labels.json) kept in this app's own folder by default.
import { createEngine, loadModelFromPath, pollGpuGently, readImage } from 'vitgpu/node';

// This script owns its process: Dawn may poll for GPU work once a millisecond instead of spinning.
pollGpuGently();

const [image, modelDir = new URL('./models/deit-tiny/', import.meta.url).pathname] = process.argv.slice(2);
if (!image) {
  console.error('usage: node classify.js IMAGE [MODEL_DIR]');
  process.exit(2);
}
try {
  const engine = await createEngine();
  await loadModelFromPath(engine, modelDir);
  const [result] = await engine.classifyImages([await readImage(image)], { topK: 3 });
  console.log(JSON.stringify({ adapter: engine.adapter, top: result.top }));
  engine.destroy();
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
}
