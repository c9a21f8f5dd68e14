// Public face of the model folder loader: inspect a diffusers/optimum ONNX folder, open its parts,
// and read every I/O contract from the sessions themselves.
// Other folders import from here, not from the files behind it.
export {
  type AttentionRewriteResult,
  fuseAttention,
  rewriteModelFile,
  withExternalDataFolder,
} from './attention-rewrite.ts';
export {
  inspectModelFolder,
  type ModelFamily,
  type ModelFolder,
  ModelFolderError,
  type ModelParts,
  TINY_DECODER_FILE,
  TINY_ENCODER_FILE,
} from './folder.ts';
export {
  type ExtraInput,
  type LoadedModel,
  loadModel,
  type LoadModelOptions,
  type ModelSessions,
  sessionOptionsFor,
  type TextEncoderContract,
  type UnetContract,
  type VaeDecoderContract,
  type VaeEncoderContract,
} from './sessions.ts';
export {
  floatTensor,
  type FloatType,
  fromFloat16Array,
  fromFloat16Bits,
  idsTensor,
  type IdsType,
  tensorToFloat32,
  type TimestepShape,
  timestepTensor,
  type TimestepType,
  toFloat16Array,
  toFloat16Bits,
} from './tensors.ts';
