// Public face of model management: pull ONNX diffusers folders from the Hugging Face hub into
// models.dir, and report what is installed there. Nothing here writes to the terminal: progress
// goes to a callback, failures are PullError with a code. Other folders import from here, not from
// the files behind it.
export { findAlias, MODEL_ALIASES, type ModelAlias } from './aliases.ts';
export { INCOMPLETE_SUFFIX } from './download.ts';
export { PullError, type PullErrorCode } from './errors.ts';
export { DEFAULT_HUB_ENDPOINT, type HubFile, type HubOptions, hubOptionsFromEnv } from './hub.ts';
export {
  type DeploymentFolder,
  type InstalledModel,
  type InstalledStatus,
  listModels,
  type ModelsReport,
} from './installed.ts';
export { isLayoutFile } from './layout.ts';
export { MARKER_FILE, type ModelMarker, PULL_NOTE_FILE } from './marker.ts';
export { type PullEvent, pullModel, type PullOptions, type PullResult } from './pull.ts';
export {
  pullTinyAutoencoder,
  TINY_AUTOENCODER_REPOS,
  TINY_MARKER_FILE,
  type TinyPullOptions,
  type TinyPullResult,
} from './tiny-autoencoder.ts';
