// A prompt classifier that asks an external moderation service over HTTP, in one of two wire
// protocols:
// - Azure AI Content Safety "Analyze Text"
//   https://learn.microsoft.com/rest/api/contentsafety/text-operations/analyze-text?view=rest-contentsafety-2024-09-01
// - the OpenAI moderation API, also served by many self-hosted gateways
//   https://platform.openai.com/docs/api-reference/moderations
// Every answer is checked before it is believed: a broken or unexpected answer throws, so the
// filter applies its failure policy instead of reading a prompt as safe.
import type { HarmCategory, Severity } from '../../contract/annotations.ts';
import {
  categoryOfLabel,
  type ClassifierScores,
  DEFAULT_CUT_POINTS,
  higherSeverity,
  type PromptClassifier,
  type SeverityCutPoints,
  severityFromProbability,
  validCutPoints,
} from '../classifier.ts';

export type HttpModerationKind = 'azure-content-safety' | 'openai-moderation';

export interface HttpModerationClassifierOptions {
  id: string;
  kind: HttpModerationKind;
  /** Azure: the resource endpoint (`https://x.cognitiveservices.azure.com`), or a full
   *  `/contentsafety/…` URL used as is. OpenAI: the full moderations URL. */
  url: string;
  key?: string;
  /** OpenAI only: sent as `model` when set. */
  model?: string;
  /** OpenAI only: probability → severity. */
  cutPoints?: SeverityCutPoints;
  headers?: Record<string, string>;
}

/** Azure Content Safety analyses at most this many characters per request. */
export const AZURE_MAX_TEXT_CHARS = 10_000;
const AZURE_API_VERSION = '2024-09-01';
const AZURE_CATEGORIES: Record<string, HarmCategory> = {
  Hate: 'hate',
  Sexual: 'sexual',
  Violence: 'violence',
  SelfHarm: 'self_harm',
};
/** Index = Azure severity (FourSeverityLevels gives 0, 2, 4, 6; EightSeverityLevels gives 0–7). */
const AZURE_SEVERITIES: readonly Severity[] = ['safe', 'safe', 'low', 'low', 'medium', 'medium', 'high', 'high'];
/** Answers are a few hundred bytes; anything this large is not a moderation answer. */
export const MAX_ANSWER_BYTES = 1024 * 1024;
const SNIPPET_CHARS = 200;

export class HttpModerationClassifier implements PromptClassifier {
  readonly id: string;
  readonly #kind: HttpModerationKind;
  readonly #url: string;
  readonly #key: string | undefined;
  readonly #model: string | undefined;
  readonly #cuts: SeverityCutPoints;
  readonly #headers: Headers;

  constructor(options: HttpModerationClassifierOptions) {
    this.id = options.id;
    this.#kind = options.kind;
    this.#key = options.key || undefined;
    this.#model = options.model;
    this.#cuts = options.cutPoints ?? DEFAULT_CUT_POINTS;
    if (options.kind !== 'azure-content-safety' && options.kind !== 'openai-moderation') {
      throw this.#error(`unknown kind ${JSON.stringify(options.kind)} (azure-content-safety or openai-moderation)`);
    }
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw this.#error(`url ${JSON.stringify(options.url)} is not a valid URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw this.#error(`url ${JSON.stringify(options.url)} must use http: or https:, not ${parsed.protocol}`);
    }
    if (!validCutPoints(this.#cuts)) {
      throw this.#error(`cutPoints ${JSON.stringify(this.#cuts)} must be numbers in [0, 1] with low ≤ medium ≤ high`);
    }
    this.#url = options.kind === 'azure-content-safety' ? azureAnalyzeUrl(options.url) : options.url;
    this.#headers = new Headers({ accept: 'application/json', ...options.headers });
    this.#headers.set('content-type', 'application/json');
    if (this.#key !== undefined) {
      if (options.kind === 'azure-content-safety') this.#headers.set('ocp-apim-subscription-key', this.#key);
      else this.#headers.set('authorization', `Bearer ${this.#key}`);
    }
  }

  async classify(text: string, signal: AbortSignal): Promise<ClassifierScores> {
    try {
      signal.throwIfAborted();
      return this.#kind === 'azure-content-safety'
        ? await this.#classifyAzure(text, signal)
        : await this.#classifyOpenAI(text, signal);
    } catch (err) {
      // Whatever broke after an abort (a half-read body, a reset socket) is the abort's doing.
      if (signal.aborted) throw signal.reason;
      throw err;
    }
  }

  /** Long prompts go in sequential chunks; each category keeps its highest severity. */
  async #classifyAzure(text: string, signal: AbortSignal): Promise<ClassifierScores> {
    const severities: Partial<Record<HarmCategory, Severity>> = {};
    for (const chunk of splitText(text, AZURE_MAX_TEXT_CHARS)) {
      const answer = await this.#post(
        { text: chunk, categories: Object.keys(AZURE_CATEGORIES), outputType: 'FourSeverityLevels' },
        signal,
      );
      for (const [category, severity] of this.#readAzure(answer))
        severities[category] = higherSeverity(severities[category], severity);
    }
    return { severities };
  }

  #readAzure(answer: unknown): [HarmCategory, Severity][] {
    const analysis = isObject(answer) ? answer['categoriesAnalysis'] : undefined;
    if (!Array.isArray(analysis))
      throw this.#error(`answer has no categoriesAnalysis array: ${snippet(JSON.stringify(answer))}`);
    const found: [HarmCategory, Severity][] = [];
    for (const item of analysis) {
      const name = isObject(item) ? item['category'] : undefined;
      const value = isObject(item) ? item['severity'] : undefined;
      if (typeof name !== 'string')
        throw this.#error(`categoriesAnalysis entry without a category: ${snippet(JSON.stringify(item))}`);
      const category = AZURE_CATEGORIES[name];
      if (category === undefined) continue; // a category we did not ask for
      const severity = typeof value === 'number' && Number.isInteger(value) ? AZURE_SEVERITIES[value] : undefined;
      if (severity === undefined)
        throw this.#error(`unknown severity ${JSON.stringify(value)} for ${name} (expected an integer 0–7)`);
      found.push([category, severity]);
    }
    // A category we asked for and did not get would silently read as "not judged".
    const missing = Object.keys(AZURE_CATEGORIES).filter((name) => !found.some(([c]) => c === AZURE_CATEGORIES[name]));
    if (missing.length > 0) throw this.#error(`categoriesAnalysis lacks ${missing.join(', ')}`);
    return found;
  }

  async #classifyOpenAI(text: string, signal: AbortSignal): Promise<ClassifierScores> {
    const answer = await this.#post(
      this.#model === undefined ? { input: text } : { input: text, model: this.#model },
      signal,
    );
    const results = isObject(answer) ? answer['results'] : undefined;
    if (!Array.isArray(results) || results.length === 0)
      throw this.#error(`answer has no results array: ${snippet(JSON.stringify(answer))}`);
    const severities: Partial<Record<HarmCategory, Severity>> = {};
    for (const result of results) {
      const scores = isObject(result) ? result['category_scores'] : undefined;
      if (!isObject(scores))
        throw this.#error(`result has no category_scores object: ${snippet(JSON.stringify(result))}`);
      for (const [label, score] of Object.entries(scores)) {
        if (typeof score !== 'number' || !(score >= 0 && score <= 1)) {
          throw this.#error(`score for "${label}" is ${JSON.stringify(score)}, not a number in [0, 1]`);
        }
        const category = categoryOfLabel(label);
        if (category === undefined) continue; // harassment, illicit …: not one of Azure's four
        // Any sign of sexual content involving minors is the most severe, whatever the cut points.
        const severity =
          label === 'sexual/minors' && score >= this.#cuts.low ? 'high' : severityFromProbability(score, this.#cuts);
        severities[category] = higherSeverity(severities[category], severity);
      }
    }
    return { severities };
  }

  /** POSTs JSON and returns the parsed 2xx answer, or throws saying what was wrong. */
  async #post(payload: object, signal: AbortSignal): Promise<unknown> {
    let response: Response;
    try {
      // No redirects: following one would send the key to wherever it points.
      response = await fetch(this.#url, {
        method: 'POST',
        headers: this.#headers,
        body: JSON.stringify(payload),
        signal,
        redirect: 'error',
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw this.#error(`request to ${new URL(this.#url).origin} failed: ${networkCause(err)}`, err);
    }
    const body = await this.#readBounded(response);
    if (!response.ok) throw this.#error(`answered HTTP ${response.status}${errorDetail(body)}`);
    try {
      return JSON.parse(body);
    } catch {
      throw this.#error(
        `answer is not JSON (content-type ${response.headers.get('content-type') ?? 'none'}): ${snippet(body)}`,
      );
    }
  }

  /** Reads the body, giving up (and closing the connection) past MAX_ANSWER_BYTES. */
  async #readBounded(response: Response): Promise<string> {
    const tooLarge = () => this.#error(`answer is larger than ${MAX_ANSWER_BYTES} bytes (1 MiB); not read`);
    if (Number(response.headers.get('content-length')) > MAX_ANSWER_BYTES) {
      void response.body?.cancel().catch(() => {});
      throw tooLarge();
    }
    if (response.body === null) return '';
    const reader = response.body.getReader();
    const parts: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_ANSWER_BYTES) {
        void reader.cancel().catch(() => {});
        throw tooLarge();
      }
      parts.push(value);
    }
    return Buffer.concat(parts).toString('utf8');
  }

  /** Every message names the classifier; the key never appears, even if a server echoes it. */
  #error(what: string, cause?: unknown): Error {
    const message = `moderation classifier "${this.id}" (${this.#kind}): ${what}`;
    return new Error(
      this.#key === undefined ? message : message.split(this.#key).join('***'),
      cause === undefined ? undefined : { cause },
    );
  }
}

/** The operator gives the resource endpoint; the API path is ours to add unless already there. */
function azureAnalyzeUrl(url: string): string {
  if (url.includes('/contentsafety/')) return url;
  return `${url.replace(/\/+$/, '')}/contentsafety/text:analyze?api-version=${AZURE_API_VERSION}`;
}

/**
 * Splits text into chunks of at most `max` UTF-16 units, at whitespace where the last half of a
 * chunk has some, never inside a surrogate pair. The chunks joined give back the text.
 */
export function splitText(text: string, max: number): string[] {
  const chunks: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let cut = max;
    const space = lastWhitespace(rest, max);
    if (space >= max / 2) cut = space + 1;
    else if (isHighSurrogate(rest.charCodeAt(cut - 1))) cut -= 1;
    chunks.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  chunks.push(rest);
  return chunks;
}

function lastWhitespace(text: string, max: number): number {
  for (let i = max - 1; i >= 0; i--) if (/\s/.test(text[i]!)) return i;
  return -1;
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const snippet = (text: string | undefined) => {
  const s = (text ?? 'undefined').replace(/\s+/g, ' ').trim();
  return s.length > SNIPPET_CHARS ? `${s.slice(0, SNIPPET_CHARS)}…` : s || '(empty)';
};

/** Azure: `{error: {code, message}}`; OpenAI: `{error: {message, type, code}}`; else the text. */
function errorDetail(body: string): string {
  try {
    const error = (JSON.parse(body) as { error?: unknown }).error;
    if (isObject(error)) {
      const code =
        typeof error['code'] === 'string'
          ? error['code']
          : typeof error['type'] === 'string'
            ? error['type']
            : undefined;
      const message = typeof error['message'] === 'string' ? error['message'] : undefined;
      if (code !== undefined || message !== undefined) return `: ${[code, message].filter(Boolean).join(': ')}`;
    }
  } catch {
    // not JSON: fall through to the text
  }
  return `: ${snippet(body)}`;
}

/** fetch says only "fetch failed"; the cause (or, for several addresses, its errors) has the code. */
function networkCause(err: unknown): string {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  const inner = cause instanceof AggregateError ? cause.errors[0] : undefined;
  const code = codeOf(cause) ?? codeOf(inner);
  const message = cause instanceof Error ? cause.message : String(cause);
  if (code === undefined) return message || 'unknown error';
  return message.includes(code) ? message : message ? `${code} (${message})` : code;
}

const codeOf = (e: unknown) => (isObject(e) && typeof e['code'] === 'string' ? e['code'] : undefined);
