// Public face of the model folder loader: inspect a diffusers/optimum ONNX folder, open its parts,
// and read every I/O contract from the sessions themselves.
// Other folders import from here, not from the files behind it.
export { inspectModelFolder, ModelFolderError, TINY_DECODER_FILE, TINY_ENCODER_FILE, type ModelFamily, type ModelFolder, type ModelParts } from './folder.ts';
export {
  loadModel,
  sessionOptionsFor,
  type ExtraInput,
  type LoadedModel,
  type LoadModelOptions,
  type ModelSessions,
  type TextEncoderContract,
  type UnetContract,
  type VaeDecoderContract,
  type VaeEncoderContract,
} from './sessions.ts';
export {
  floatTensor,
  fromFloat16Array,
  fromFloat16Bits,
  idsTensor,
  tensorToFloat32,
  timestepTensor,
  toFloat16Array,
  toFloat16Bits,
  type FloatType,
  type IdsType,
  type TimestepShape,
  type TimestepType,
} from './tensors.ts';
