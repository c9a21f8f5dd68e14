import type { ImageRequest } from './request.ts';

export interface Usage {
  input_tokens: number;
  input_tokens_details: { text_tokens: number; image_tokens: number };
  output_tokens: number;
  total_tokens: number;
}

/**
 * gpt-image-1 reports token usage. easel has no tokenizer of OpenAI's, so it reports what the same
 * request costs on OpenAI's published table: output tokens by quality and size, ~4 characters per
 * text token, and for input images 65 tokens plus 129 per 512-pixel tile.
 */
const OUTPUT_TOKENS: Record<string, { square: number; wide: number }> = {
  low: { square: 272, wide: 408 },
  medium: { square: 1056, wide: 1584 },
  high: { square: 4160, wide: 6240 },
};

export function estimateUsage(request: ImageRequest): Usage {
  const text_tokens = Math.max(1, Math.ceil(request.prompt.length / 4));
  // Every input is brought to the output size before the engine sees it.
  const inputs = request.inputCount ?? request.images.length;
  const image_tokens = inputs * (65 + 129 * Math.ceil(request.width / 512) * Math.ceil(request.height / 512));
  const table = OUTPUT_TOKENS[request.quality ?? 'high'] ?? OUTPUT_TOKENS.high!;
  const perImage = request.width === request.height ? table.square : table.wide;
  const output_tokens = perImage * request.n;
  const input_tokens = text_tokens + image_tokens;
  return {
    input_tokens,
    input_tokens_details: { text_tokens, image_tokens },
    output_tokens,
    total_tokens: input_tokens + output_tokens,
  };
}
