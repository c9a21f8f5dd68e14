// transformers CLIPTextModel (models/clip/modeling_clip.py) as exported for Stable Diffusion:
// input_ids → last_hidden_state [B, S, D] and pooler_output [B, D] (docs/diffusion.md, "Tensor names, dtypes and
// shapes").
// SD 1.x uses OpenAI's CLIP ViT-L/14 text tower (768 wide, 12 layers, quick_gelu); SD 2.x and
// SD-Turbo the OpenCLIP ViT-H/14 tower converted to CLIPTextModel with 23 of its 24 layers (SD 2
// conditions on the penultimate layer, so the converted checkpoints drop the last), with gelu.
// SDXL exports both of its encoders with their hidden states (optimum's output_hidden_states: hidden_states.0 = the
// embeddings … hidden_states.L = the last layer's output, before the final layer norm), the second (OpenCLIP
// ViT-bigG, CLIPTextModelWithProjection) with `text_embeds` = the pooled state · text_projection (no bias) instead of
// pooler_output (docs/diffusion.md, "SDXL conditioning").
import type { IdsType } from './graphs.ts';
import { gelu, layerNorm, linear, multiHeadAttention, type Net, quickGelu } from './layers.ts';

export interface ClipTextConfig {
  hiddenSize: number;
  layers: number;
  heads: number;
  intermediateSize: number;
  activation: 'gelu' | 'quick_gelu';
  vocabSize: number;
  maxPositions: number;
  /** CLIPTextModelWithProjection: a `text_embeds` output of this width instead of pooler_output. */
  projectionDim?: number;
  /** Also output hidden_states.0 … hidden_states.{layers}, as the SDXL exports do. */
  hiddenStates?: boolean;
}

const LAYER_NORM_EPS = 1e-5;

/** transformers' text_encoder/config.json for this architecture. */
export function clipTextConfigJson(config: ClipTextConfig, tokens: { bos: number; eos: number; pad: number }) {
  const className = config.projectionDim === undefined ? 'CLIPTextModel' : 'CLIPTextModelWithProjection';
  return {
    _class_name: className,
    architectures: [className],
    model_type: 'clip_text_model',
    hidden_act: config.activation,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    layer_norm_eps: LAYER_NORM_EPS,
    max_position_embeddings: config.maxPositions,
    num_attention_heads: config.heads,
    num_hidden_layers: config.layers,
    vocab_size: config.vocabSize,
    bos_token_id: tokens.bos,
    eos_token_id: tokens.eos,
    pad_token_id: tokens.pad,
    ...(config.projectionDim === undefined ? {} : { projection_dim: config.projectionDim }),
  };
}

/** Adds the whole text encoder to `net`. */
export function buildClipText(net: Net, config: ClipTextConfig, options: { ids: IdsType }): void {
  const D = config.hiddenSize;
  const g = net.g;
  const ids = g.input('input_ids', options.ids, ['batch_size', 'sequence_length']);
  const scope = 'embeddings';
  const tokenTable = net.param('embeddings.token_embedding.weight', [config.vocabSize, D], 1);
  const positionTable = net.param('embeddings.position_embedding.weight', [config.maxPositions, D], 0.5);
  // Positions and the causal mask are cut to the sequence length, as the exports slice position_ids.
  const length = net.op(scope, 'Shape', [ids], { start: 1, end: 2 });
  const positions = net.op(scope, 'Slice', [positionTable, net.int64([0]), length, net.int64([0])]);
  let h = net.op(scope, 'Add', [net.op(scope, 'Gather', [tokenTable, ids], { axis: 0 }), positions]);
  const mask = net.op(scope, 'Slice', [
    causalMask(net, config.maxPositions),
    net.int64([0, 0]),
    net.op(scope, 'Concat', [length, length], { axis: 0 }),
    net.int64([0, 1]),
  ]);

  const hiddenStates: string[] = [h];
  for (let i = 0; i < config.layers; i++) {
    const layer = `encoder.layers.${i}`;
    const x = layerNorm(net, `${layer}.layer_norm1`, h, D, LAYER_NORM_EPS);
    const q = linear(net, `${layer}.self_attn.q_proj`, x, D, D);
    const k = linear(net, `${layer}.self_attn.k_proj`, x, D, D);
    const v = linear(net, `${layer}.self_attn.v_proj`, x, D, D);
    const attended = multiHeadAttention(net, `${layer}.self_attn`, q, k, v, D, config.heads, mask);
    h = net.op(layer, 'Add', [h, linear(net, `${layer}.self_attn.out_proj`, attended, D, D)]);
    const y = layerNorm(net, `${layer}.layer_norm2`, h, D, LAYER_NORM_EPS);
    const up = linear(net, `${layer}.mlp.fc1`, y, D, config.intermediateSize);
    const act = config.activation === 'gelu' ? gelu(net, `${layer}.mlp`, up) : quickGelu(net, `${layer}.mlp`, up);
    h = net.op(layer, 'Add', [h, linear(net, `${layer}.mlp.fc2`, act, config.intermediateSize, D)]);
    hiddenStates.push(h);
  }
  const last = layerNorm(net, 'final_layer_norm', h, D, LAYER_NORM_EPS);
  g.node('Identity', [last], ['last_hidden_state']);

  // Pooled: the state at the end-of-text token, found as the largest id (transformers' legacy
  // `input_ids.to(torch.int).argmax(dim=-1)`; <|endoftext|> has the highest id in CLIP vocabularies).
  const eos = net.op('pooler', 'ArgMax', [net.op('pooler', 'Cast', [ids], { to: 6 })], { axis: -1, keepdims: 1 });
  const hiddenDims = ['batch_size', 'sequence_length', D];
  if (config.projectionDim === undefined) {
    g.node('GatherND', [last, net.op('pooler', 'Cast', [eos], { to: 7 })], ['pooler_output'], { batch_dims: 1 });
    g.output('last_hidden_state', net.float, hiddenDims);
    g.output('pooler_output', net.float, ['batch_size', D]);
  } else {
    // optimum's CLIPTextModelWithProjection outputs: text_embeds, last_hidden_state, hidden_states.*.
    const pooled = net.op('pooler', 'GatherND', [last, net.op('pooler', 'Cast', [eos], { to: 7 })], { batch_dims: 1 });
    g.node('Identity', [linear(net, 'text_projection', pooled, D, config.projectionDim, false)], ['text_embeds']);
    g.output('text_embeds', net.float, ['batch_size', config.projectionDim]);
    g.output('last_hidden_state', net.float, hiddenDims);
  }
  if (config.hiddenStates) {
    hiddenStates.forEach((state, i) => {
      g.node('Identity', [state], [`hidden_states.${i}`]);
      g.output(`hidden_states.${i}`, net.float, hiddenDims);
    });
  }
}

/**
 * [P, P] additive mask: 0 on and below the diagonal, the float type's lowest value above (as transformers builds it).
 */
function causalMask(net: Net, positions: number): string {
  const lowest = net.float === 'float16' ? -65504 : -3.4028234663852886e38;
  return net.constant(`causal-mask-${positions}`, net.float, [positions, positions], () => {
    const mask = new Float32Array(positions * positions);
    for (let r = 0; r < positions; r++) for (let c = r + 1; c < positions; c++) mask[r * positions + c] = lowest;
    return mask;
  });
}
