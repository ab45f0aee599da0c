// Which file a loading error is about. The engine's messages say what is wrong and where in the
// file ("safetensors: ...", "checkpoint: ...", "config: ..."); the caller knows the files' names
// and puts the right one in front: "checkpoint model.safetensors: blocks.3.mlp.fc1.weight holds NaN
// at index 1234", "config model.json: not valid JSON (...)".

export interface ModelFiles { checkpoint: string; config?: string }

const CHECKPOINT = /^(safetensors|checkpoint|weights): /;

export function attributeLoadError(message: string, files: ModelFiles): string {
  if (files.config !== undefined && message.startsWith('config: ')) return `config ${files.config}: ${message.slice(8)}`;
  const m = CHECKPOINT.exec(message);
  if (m) return `checkpoint ${files.checkpoint}: ${message.slice(m[0].length)}`;
  if (message.startsWith('weights do not match the config')) return `checkpoint ${files.checkpoint}: ${message}`;
  return message;
}
