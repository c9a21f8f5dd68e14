// Writes a tiny but real Hugging Face sequence-classification folder (model.onnx, tokenizer.json,
// tokenizer_config.json, config.json), so the ONNX prompt classifier is tested without weights.
//
// The "model" reads one logit row per token and keeps the highest per label:
//   logits[l] = max over tokens t with attention_mask 1 of weight(t, l)
// so a test can say "the word 'grrr' gives label 'hate' logit 4" and know the exact probability.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { GraphBuilder } from './onnx.ts';

export interface TextClassifierOptions {
  /** id2label in order. */
  labels: string[];
  /** config.json `problem_type`; multi_label_classification means sigmoid per label. */
  problemType?: 'multi_label_classification' | 'single_label_classification';
  /**
   * Logits per vocabulary entry: a lowercase word (the normalizer lowercases prompts), a `##piece` or a special token
   * such as [CLS].
   */
  weights?: Record<string, Partial<Record<string, number>>>;
  /** Logit of every (token, label) not in `weights`. Default -10 (sigmoid ≈ 0.00005). */
  defaultLogit?: number;
  /** Extra vocabulary without weights of their own. */
  words?: string[];
  /** Declares a `token_type_ids` input (as BERT exports do); it changes nothing. */
  withTokenTypeIds?: boolean;
  /** More int64 [batch, sequence] inputs the model declares and ignores (e.g. position_ids). */
  extraInputs?: string[];
  /** tokenizer_config.json `model_max_length`. Default 512. */
  maxLength?: number;
  /** Logits whose width ORT cannot infer at load (only the run tells), as some exported graphs have. */
  symbolicLabels?: boolean;
  /** Write the model as onnx/model.onnx (the transformers.js/optimum layout). */
  onnxSubfolder?: boolean;
  /** Inputs with a fixed batch dimension of 1 (as static-shape exports have) instead of a symbolic one. */
  fixedBatch?: boolean;
  /**
   * Makes every run slow, as a real model is, without changing the logits: a side path of `layers`
   * [width × width] MatMuls over a per-token embedding, added to the logits times zero.
   */
  burn?: { width: number; layers: number };
}

const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const BASE_WORDS = ['a', 'the', 'of', 'photo', 'cat', 'dog', '##s'];

export async function writeTextClassifier(
  folder: string,
  options: TextClassifierOptions,
): Promise<{ vocab: Record<string, number> }> {
  const { labels } = options;
  const words = [...new Set([...Object.keys(options.weights ?? {}), ...BASE_WORDS, ...(options.words ?? [])])].filter(
    (w) => !SPECIAL.includes(w),
  );
  const tokens = [...SPECIAL, ...words];
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));

  const embedding = new Float32Array(tokens.length * labels.length).fill(options.defaultLogit ?? -10);
  for (const [token, row] of Object.entries(options.weights ?? {})) {
    for (const [label, logit] of Object.entries(row)) {
      const l = labels.indexOf(label);
      if (l < 0) throw new Error(`weight for unknown label "${label}"`);
      embedding[vocab[token]! * labels.length + l] = logit!;
    }
  }

  const modelPath = options.onnxSubfolder ? join(folder, 'onnx', 'model.onnx') : join(folder, 'model.onnx');
  await mkdir(join(modelPath, '..'), { recursive: true });
  classifierGraph(embedding, tokens.length, labels.length, options).write(modelPath);

  const json = (name: string, value: unknown) => writeFile(join(folder, name), JSON.stringify(value, null, 2));
  await json('tokenizer.json', tokenizerJson(vocab));
  await json('tokenizer_config.json', {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    model_max_length: options.maxLength ?? 512,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
  });
  await json('config.json', {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    ...(options.problemType ? { problem_type: options.problemType } : {}),
  });
  return { vocab };
}

/** Opset 17 (GraphBuilder's): ReduceMax takes `axes` as an attribute, Unsqueeze as an input. */
function classifierGraph(
  embedding: Float32Array,
  vocabSize: number,
  numLabels: number,
  options: TextClassifierOptions,
): GraphBuilder {
  const g = new GraphBuilder('tiny_text_classifier');
  const batch = options.fixedBatch ? 1 : 'batch_size';
  const ids = g.input('input_ids', 'int64', [batch, 'sequence_length']);
  const mask = g.input('attention_mask', 'int64', [batch, 'sequence_length']);
  g.initializer('embedding', 'float32', [vocabSize, numLabels], embedding);
  g.initializer('axis_2', 'int64', [1], BigInt64Array.from([2n]));
  const perToken = g.node('Gather', ['embedding', ids], ['per_token'], { axis: 0 }); // [B, S, L]
  const maskF = g.node('Cast', [mask], ['mask_f'], { to: 1 });
  const gate = g.node('Unsqueeze', [maskF, 'axis_2'], ['gate']); // [B, S, 1]
  // ORT keeps declared graph inputs that no node reads, so these need no nodes.
  for (const name of [...(options.withTokenTypeIds ? ['token_type_ids'] : []), ...(options.extraInputs ?? [])]) {
    g.input(name, 'int64', [batch, 'sequence_length']);
  }
  // Masked tokens read 0 instead of their weight; the classifier never pads (windows of one batch are the same length).
  const gated = g.node('Mul', [perToken, gate], ['gated']);
  let pooled = g.node('ReduceMax', [gated], ['pooled'], { axes: [1], keepdims: 0 });
  if (options.burn) pooled = g.node('Add', [pooled, burnPath(g, ids, vocabSize, options.burn)], ['pooled_burnt']);
  if (!options.symbolicLabels) g.node('Identity', [pooled], ['logits']);
  else {
    // ORT infers through a declared symbolic dim; a Reshape to [batch, -1] with the shape computed
    // from input_ids hides the width until run time.
    g.initializer('zero', 'int64', [1], BigInt64Array.from([0n]));
    g.initializer('one', 'int64', [1], BigInt64Array.from([1n]));
    g.initializer('minus_one', 'int64', [1], BigInt64Array.from([-1n]));
    const batch = g.node('Slice', [g.node('Shape', [ids], ['ids_shape']), 'zero', 'one'], ['batch']);
    g.node('Reshape', [pooled, g.node('Concat', [batch, 'minus_one'], ['logits_shape'], { axis: 0 })], ['logits']);
  }
  g.output('logits', 'float32', ['batch_size', options.symbolicLabels ? 'num_labels' : numLabels]);
  return g;
}

/** [batch, 1] zeros that cost `layers` MatMuls of [sequence, width] × [width, width] per window. */
function burnPath(
  g: GraphBuilder,
  ids: string,
  vocabSize: number,
  { width, layers }: { width: number; layers: number },
): string {
  // Small pseudo-random weights; Tanh keeps every activation in [-1, 1], so the product with zero is exactly 0.
  let seed = 1;
  const random = (n: number, scale: number) =>
    Float32Array.from(
      { length: n },
      () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * scale,
    );
  g.initializer('burn_embedding', 'float32', [vocabSize, width], random(vocabSize * width, 1));
  g.initializer('burn_weight', 'float32', [width, width], random(width * width, 2 / Math.sqrt(width)));
  g.initializer('burn_zero', 'float32', [1], Float32Array.from([0]));
  let x = g.node('Gather', ['burn_embedding', ids], ['burn_0'], { axis: 0 }); // [B, S, W]
  for (let i = 1; i <= layers; i++)
    x = g.node('Tanh', [g.node('MatMul', [x, 'burn_weight'], [`burn_mm_${i}`])], [`burn_${i}`]);
  const scalar = g.node('ReduceMax', [x], ['burn_max'], { axes: [1, 2], keepdims: 0 }); // [B]
  g.initializer('burn_axis', 'int64', [1], BigInt64Array.from([1n]));
  return g.node('Mul', [g.node('Unsqueeze', [scalar, 'burn_axis'], ['burn_column']), 'burn_zero'], ['burn_nothing']); // [B, 1]
}

/** The shape of bert-base-uncased's tokenizer.json (tokenizers 0.13+), with a small vocabulary. */
function tokenizerJson(vocab: Record<string, number>) {
  const special = (token: string) => ({
    id: vocab[token]!,
    content: token,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const templateToken = (token: string) => ({ SpecialToken: { id: token, type_id: 0 } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map(special),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [templateToken('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, templateToken('[SEP]')],
      pair: [
        templateToken('[CLS]'),
        { Sequence: { id: 'A', type_id: 0 } },
        templateToken('[SEP]'),
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: Object.fromEntries(['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [vocab[t]!], tokens: [t] }])),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}
