import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { findAlias, isLayoutFile, MODEL_ALIASES } from '../../src/models/index.ts';

describe('the ONNX layout filter', () => {
  it('keeps what the engine reads from an export such as stabilityai/sdxl-turbo', () => {
    const kept = [
      'model_index.json',
      'scheduler/scheduler_config.json',
      'tokenizer/vocab.json',
      'tokenizer/merges.txt',
      'tokenizer/special_tokens_map.json',
      'tokenizer/tokenizer_config.json',
      'tokenizer_2/vocab.json',
      'tokenizer_2/merges.txt',
      'text_encoder/model.onnx',
      'text_encoder/config.json',
      'text_encoder_2/model.onnx',
      'text_encoder_2/model.onnx_data',
      'text_encoder_2/config.json',
      'unet/model.onnx',
      'unet/model.onnx_data',
      'unet/weights.pb',
      'unet/model.onnx.data',
      'unet/unet.onnx_data',
      'unet/config.json',
      'vae_decoder/model.onnx',
      'vae_decoder/config.json',
      'vae_encoder/model.onnx',
      'vae_encoder/config.json',
      'vae_tiny_decoder/model.onnx',
      'vae_tiny_decoder/config.json',
      'vae_tiny_encoder/model.onnx',
      'vae_tiny_encoder/config.json',
    ];
    for (const path of kept) assert.equal(isLayoutFile(path), true, path);
  });

  it('skips PyTorch weights, fp16 variants, other parts, nested folders and docs', () => {
    const skipped = [
      'README.md',
      '.gitattributes',
      'sd_xl_turbo_1.0.safetensors',
      'sd_xl_turbo_1.0_fp16.safetensors',
      'unet/diffusion_pytorch_model.safetensors',
      'unet/diffusion_pytorch_model.fp16.safetensors',
      'unet/diffusion_pytorch_model.bin',
      'text_encoder/model.safetensors',
      'text_encoder/model.fp16.safetensors',
      'text_encoder/pytorch_model.bin',
      'vae/config.json',
      'vae/diffusion_pytorch_model.safetensors',
      'safety_checker/model.onnx',
      'feature_extractor/preprocessor_config.json',
      'onnx/unet/model.onnx',
      'unet/sub/model.onnx',
      'scheduler/notes.txt',
      'tokenizer/sub/vocab.json',
      'image.png',
      'unet/../model_index.json',
      '/model_index.json',
    ];
    for (const path of skipped) assert.equal(isLayoutFile(path), false, path);
  });
});

describe('model aliases', () => {
  it('name the repositories of the reference, each with a revision, what it needs and settings', () => {
    assert.deepEqual(
      MODEL_ALIASES.map((a) => [a.name, a.repo, a.revision]),
      [
        ['sd-turbo', 'onnxruntime/sd-turbo', 'main'],
        ['sdxl-turbo', 'stabilityai/sdxl-turbo', 'main'],
        ['lcm-dreamshaper-v7', 'SimianLuo/LCM_Dreamshaper_v7', 'main'],
        ['sd-2.1-base', 'aislamov/stable-diffusion-2-1-base-onnx', 'cpu'],
        ['sd-turbo-fp16', 'schmuell/sd-turbo-ort-web', 'main'],
      ],
    );
    assert.match(findAlias('sd-turbo')!.needs, /CUDA/);
    for (const alias of MODEL_ALIASES)
      assert.ok(alias.description && alias.needs && alias.settings.steps > 0, alias.name);
    assert.equal(findAlias('owner/repo'), undefined);
  });
});
