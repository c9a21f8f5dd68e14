// The configuration file's schema, once, as JSON Schema (TypeBox): every key a file may set, with
// `additionalProperties: false` at every level so a misspelt key stops start-up instead of being
// ignored. Cross-field rules the schema cannot express (unique names, in-flight ≥ per-edit pixels,
// ids that deployments refer to) stay explicit checks in index.ts and safety.ts. The Config type
// and its parts are derived from these schemas there (Static), so the comments on keys document them.
import Type, { type TSchema } from 'typebox';

const strict = { additionalProperties: false } as const;
const int = (minimum: number, maximum: number) => Type.Optional(Type.Integer({ minimum, maximum }));
const positive = () => int(1, Number.MAX_SAFE_INTEGER);
const idPattern = { pattern: '^[A-Za-z0-9._-]{1,64}$', errorMessage: 'must be 1–64 letters, digits, ".", "_" or "-"' };

export const SIGNING_SECRET_MIN_LENGTH = 32;

/**
 * A service's URL (it may hold a password, so a refused one is not repeated in the message); index.ts
 * parses it further.
 */
const serviceUrl = (schemes: string[]) =>
  Type.String({
    pattern: `^(${schemes.join('|')})://`,
    errorMessage: `must be a ${schemes.map((s) => `${s}://`).join(' or ')} URL`,
    secret: true,
  });

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
const LEVELS = ['low', 'medium', 'high'] as const;
const CATEGORY_LEVEL = Type.Optional(Type.Enum([...LEVELS, 'off']));
const FAILURE = Type.Optional(Type.Enum(['block', 'allow']));

export const ThresholdSchema = Type.Union([
  Type.Enum(LEVELS),
  Type.Object(
    { hate: CATEGORY_LEVEL, sexual: CATEGORY_LEVEL, violence: CATEGORY_LEVEL, self_harm: CATEGORY_LEVEL },
    strict,
  ),
]);

/** A deployment's own safety settings; ids refer to the service's blocklists and classifiers. */
export const DeploymentSafetySchema = Type.Object(
  {
    threshold: Type.Optional(ThresholdSchema),
    blockProfanity: Type.Optional(Type.Boolean()),
    blocklists: Type.Optional(Type.Array(Type.String())),
    classifiers: Type.Optional(Type.Array(Type.String())),
  },
  strict,
);

/** How a diffusion deployment generates; every field but the folder has a per-model default. */
export const DiffusionSchema = Type.Object(
  {
    /** The model folder: absolute, or a name under models.dir (resolved to an absolute path). */
    folder: Type.String({
      minLength: 1,
      pattern: '\\S',
      errorMessage: 'must name a model folder (a path, or a name under models.dir)',
    }),
    /** Denoising steps; default from the model family (SD-Turbo/SDXL-Turbo 1–4, LCM 4, others 25). */
    steps: int(1, 200),
    /** Replaces the model's own scheduler_config.json class (its β schedule is kept). */
    scheduler: Type.Optional(Type.Enum(['euler', 'euler-ancestral', 'ddim', 'lcm'])),
    /** Classifier-free guidance; ≤ 1 turns it off (the Turbo models' setting). */
    guidanceScale: Type.Optional(Type.Number({ minimum: 0, maximum: 30 })),
    /** Edge of the native square in pixels (512 SD 1.5/2.1 base/Turbo, 1024 SDXL); default from the model. */
    resolution: Type.Optional(Type.Integer({ minimum: 64, maximum: 2048, multipleOf: 64 })),
    /**
     * The autoencoder that turns latents into pixels (and images into latents for edits): `full`, the
     * model's VAE (default), or `tiny`, its tiny autoencoder (vae_tiny_decoder/, TAESD/TAESDXL), about
     * 40× less compute per decode at some loss of fine detail.
     */
    autoencoder: Type.Optional(Type.Enum(['full', 'tiny'])),
  },
  strict,
);

// `model` takes aliases ("dalle3", "gpt-image-1-mini"): familyOf in index.ts decides it.
const deploymentCommon = {
  /** The name clients use in URLs and `model` ("dall-e-3"); 1–64 letters, digits, ".", "_" or "-". */
  name: Type.String(idPattern),
  /** The model family that decides validation and response shape. */
  model: Type.String(),
  /** This deployment's own thresholds, profanity setting, blocklists and classifiers (default: the service's). */
  safety: Type.Optional(DeploymentSafetySchema),
};
/** The built-in engine: deterministic pictures with the prompt written on them (no model needed). */
export const PlaceholderDeploymentSchema = Type.Object(
  {
    ...deploymentCommon,
    engine: Type.Optional(Type.Literal('placeholder')),
    placeholder: Type.Optional(
      Type.Object(
        {
          /**
           * How long each of the placeholder's four steps takes, in milliseconds (default 0: as fast as it
           * can draw). A slow deployment without a model, for trying progress, streaming, timeouts and
           * workers under load; the engine waits on a timer, so the process stays idle meanwhile.
           */
          stepMs: int(0, 60_000),
        },
        strict,
      ),
    ),
  },
  strict,
);
/** A Stable Diffusion family model in the diffusers/optimum ONNX layout, run with onnxruntime-node. */
export const DiffusionDeploymentSchema = Type.Object(
  { ...deploymentCommon, engine: Type.Literal('diffusion'), diffusion: DiffusionSchema },
  strict,
);
const Deployment = Type.Union([PlaceholderDeploymentSchema, DiffusionDeploymentSchema]);

const Blocklist = Type.Object(
  {
    id: Type.String({ minLength: 1, pattern: '\\S', errorMessage: 'must be a non-empty string' }),
    terms: Type.Optional(Type.Array(Type.String())),
    patterns: Type.Optional(Type.Array(Type.String())),
    file: Type.Optional(Type.String({ minLength: 1, errorMessage: 'must be a path' })),
  },
  strict,
);

const classifierCommon = {
  /** The name deployments list it by and that annotation errors and logs show. */
  id: Type.String(idPattern),
  /** Longest a prompt waits for it; past this the failure policy applies. Default 5000 ms. */
  timeoutMs: int(1, 600_000),
  /** A failure or timeout "block"s the prompt (default) or "allow"s it unscored; the annotation says so either way. */
  onFailure: FAILURE,
  /** Probability → severity cut points (probability classifiers only); default low 0.3, medium 0.5, high 0.8. */
  cutPoints: Type.Optional(
    Type.Object(
      {
        low: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
        medium: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
        high: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
      },
      strict,
    ),
  ),
};
// An external moderation endpoint: Azure AI Content Safety text:analyze, or an OpenAI-style /moderations.
const httpClassifier = {
  ...classifierCommon,
  url: Type.String(),
  /** The key itself; prefer keyEnv so it stays out of the file. */
  key: Type.Optional(Type.String()),
  /** The environment variable that holds the key. */
  keyEnv: Type.Optional(Type.String()),
  /** openai-moderation: the model to ask for ("omni-moderation-latest"). */
  model: Type.Optional(Type.String()),
};
export const ClassifierSchema = Type.Union([
  Type.Object(
    {
      ...classifierCommon,
      kind: Type.Literal('onnx'),
      /**
       * A sequence-classification model (model.onnx, tokenizer.json, config.json): absolute, or a name under
       * models.dir.
       */
      folder: Type.String({
        minLength: 1,
        pattern: '\\S',
        errorMessage: 'must name a model folder (a path, or a name under models.dir)',
      }),
      /** The model's label → category. */
      labels: Type.Optional(
        Type.Record(
          Type.String(),
          Type.Enum(['hate', 'sexual', 'violence', 'self_harm', 'jailbreak', 'profanity', 'ignore']),
        ),
      ),
      maxTokens: int(2, 8192),
    },
    strict,
  ),
  Type.Object({ ...httpClassifier, kind: Type.Literal('azure-content-safety') }, strict),
  Type.Object({ ...httpClassifier, kind: Type.Literal('openai-moderation') }, strict),
]);

const Safety = Type.Object(
  {
    /** One level for every category or one per category: "low" | "medium" | "high" (| "off" per category). */
    threshold: Type.Optional(ThresholdSchema),
    /** Refuse prompts with profanity (Azure's default only reports it). */
    blockProfanity: Type.Optional(Type.Boolean()),
    blocklists: Type.Optional(Type.Array(Blocklist)),
    /** Prompt classifiers that run beside the term lists, on every deployment unless it names its own. */
    classifiers: Type.Optional(Type.Array(ClassifierSchema)),
    /** The image filter: "nsfwjs" (the bundled pretrained classifier) or "none" (every image passes, reading safe). */
    imageClassifier: Type.Optional(Type.Enum(['nsfwjs', 'none'])),
    /**
     * When the image classifier throws or times out: "block" the image (default) or "allow" it; either way the
     * annotation carries `error`.
     */
    imageClassifierFailure: FAILURE,
    /** Run the image classifier on the placeholder engine's pictures too (default: on real engines only). */
    classifyPlaceholderImages: Type.Optional(Type.Boolean()),
  },
  strict,
);

/** What a config file (or a caller's overrides) may hold: every key optional but a deployment's own. */
export const ConfigFileSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1 })),
    port: int(0, 65535),
    dataDir: Type.Optional(Type.String({ minLength: 1 })),
    /** Base of image and operation URLs; null = the address the server listens on. */
    publicUrl: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    /** Accepted keys; empty = generate one and keep it in the data directory. */
    apiKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 8 }), {
        errorMessage: 'must be a list of keys of at least 8 characters',
        secret: true,
      }),
    ),
    deployments: Type.Optional(Type.Array(Deployment, { minItems: 1 })),
    /** Where `easel pull` installs model folders and where bare folder names resolve; default <dataDir>/models. */
    models: Type.Optional(Type.Object({ dir: Type.Optional(Type.String()) }, strict)),
    /**
     * onnxruntime-node settings shared by every diffusion deployment. executionProvider "cuda" needs
     * onnxruntime-node's CUDA 12 libraries (README), without them the deployment is unavailable;
     * threads: intra-op threads per session, 0 = the cores divided among the models that can run
     * at once (src/runtime/onnx-threads.ts). fuseAttention: open the UNet with its attention
     * rewritten to onnxruntime's fused MultiHeadAttention on the CPU (docs/cpu-performance.md).
     */
    onnx: Type.Optional(
      Type.Object(
        {
          executionProvider: Type.Optional(Type.Enum(['cpu', 'cuda'])),
          threads: int(0, 1024),
          fuseAttention: Type.Optional(Type.Boolean()),
        },
        strict,
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          maxJsonBodyBytes: positive(),
          maxImageBytes: positive(),
          maxMaskBytes: positive(),
          /** Decoded pixels allowed per uploaded image (decompression bombs stop here). */
          maxInputPixels: positive(),
          /** Decoded pixels one edit may hold: its uploads (and their resized copies) and its output images. */
          maxEditPixels: positive(),
          /** Decoded pixels all admitted edits may hold together; one more edit gets a 429. */
          maxPixelsInFlight: positive(),
          /**
           * Time a client has to send a whole request, headers and body (a stalled upload is answered
           * 408 and closed). Generation time does not count: the clock stops once the request is in.
           */
          requestTimeoutSeconds: int(1, 86400),
          /** Time a client has to send the request line and headers (the request timeout applies if shorter). */
          headersTimeoutSeconds: int(1, 86400),
        },
        strict,
      ),
    ),
    queue: Type.Optional(
      Type.Object(
        {
          concurrency: int(1, 1024),
          maxWaiting: int(0, 1_000_000),
          jobTimeoutSeconds: int(0, 86400),
          shutdownGraceSeconds: int(0, 3600),
          /**
           * Scale-out (the Redis queue): how long a worker's lock on a running job lasts; the worker renews it
           * while the job runs, so only a worker that died or hangs lets it lapse.
           */
          lockSeconds: int(1, 3600),
          /** Scale-out: how often the queue looks for jobs whose lock lapsed and hands them to another worker. */
          stalledCheckSeconds: int(1, 3600),
          /** Scale-out: how many times a job may start (1: never retried after its worker died). */
          attempts: int(1, 100),
        },
        strict,
      ),
    ),
    imageUrlTtlSeconds: int(1, 30 * 86400),
    sweepIntervalSeconds: int(1, 86400),
    safety: Type.Optional(Safety),
    /** Scale-out: the Redis server that holds the job queue and the worker registry. */
    redis: Type.Optional(Type.Object({ url: Type.Optional(serviceUrl(['redis', 'rediss'])) }, strict)),
    /** Scale-out: the PostgreSQL database that holds operations and image records. */
    database: Type.Optional(
      Type.Object(
        {
          url: Type.Optional(serviceUrl(['postgres', 'postgresql'])),
          /** The schema for easel's tables (created if missing); default: the connection's search_path. */
          schema: Type.Optional(
            Type.String({
              pattern: '^[a-z_][a-z0-9_]{0,62}$',
              errorMessage: 'must be 1–63 lower-case letters, digits or "_", not starting with a digit',
            }),
          ),
        },
        strict,
      ),
    ),
    /**
     * Scale-out: the S3 bucket that holds images. Credentials come from AWS_ACCESS_KEY_ID and
     * AWS_SECRET_ACCESS_KEY, never from this file.
     */
    s3: Type.Optional(
      Type.Object(
        {
          /** An S3-compatible server (MinIO, Ceph); unset: AWS S3 of the region. */
          endpoint: Type.Optional(serviceUrl(['http', 'https'])),
          /** AWS's bucket naming rules: 3–63 lower-case letters, digits, "." and "-". */
          bucket: Type.Optional(
            Type.String({
              pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
              errorMessage:
                'must be a bucket name: 3–63 lower-case letters, digits, "." or "-", starting and ending with a letter or digit',
            }),
          ),
          region: Type.Optional(
            Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', errorMessage: 'must be a region name such as us-east-1' }),
          ),
          /** Address the bucket in the path (endpoint/bucket/key) rather than as a host name (most non-AWS servers). */
          forcePathStyle: Type.Optional(Type.Boolean()),
          /** Image links point at the bucket itself (presigned); false: easel's signed /files/ links stream from it. */
          presignedUrls: Type.Optional(Type.Boolean()),
        },
        strict,
      ),
    ),
    /** Scale-out: the secret that signs image links; every node must have the same one. */
    signingSecret: Type.Optional(
      Type.String({
        minLength: SIGNING_SECRET_MIN_LENGTH,
        errorMessage: `must be at least ${SIGNING_SECRET_MIN_LENGTH} characters (for example: openssl rand -hex 32)`,
        secret: true,
      }),
    ),
    /** Scale-out: how workers announce themselves to API nodes. */
    workers: Type.Optional(
      Type.Object(
        {
          /** How often a worker announces itself and its deployments' readiness. */
          heartbeatSeconds: int(1, 3600),
          /** A worker not heard from for this long counts as gone (at least twice the heartbeat). */
          deadAfterSeconds: int(2, 7200),
        },
        strict,
      ),
    ),
    logLevel: Type.Optional(Type.Enum(LOG_LEVELS)),
    /** Log each request's prompt (with its request id). Off by default: prompts are users' data. */
    logPrompts: Type.Optional(Type.Boolean()),
  },
  strict,
);

/**
 * Environment variables → the file key each one sets (its schema converts and checks the string).
 * Variables without a key act on several settings; their schema is in ENV_ONLY.
 */
export const ENV_SETTINGS: Readonly<Record<string, string>> = {
  HOST: 'host',
  PORT: 'port',
  EASEL_DATA_DIR: 'dataDir',
  EASEL_PUBLIC_URL: 'publicUrl',
  EASEL_API_KEYS: 'apiKeys',
  EASEL_LOG_LEVEL: 'logLevel',
  EASEL_LOG_PROMPTS: 'logPrompts',
  EASEL_IMAGE_URL_TTL_SECONDS: 'imageUrlTtlSeconds',
  EASEL_QUEUE_CONCURRENCY: 'queue.concurrency',
  EASEL_QUEUE_MAX_WAITING: 'queue.maxWaiting',
  EASEL_MAX_EDIT_PIXELS: 'limits.maxEditPixels',
  EASEL_MAX_PIXELS_IN_FLIGHT: 'limits.maxPixelsInFlight',
  EASEL_REQUEST_TIMEOUT_SECONDS: 'limits.requestTimeoutSeconds',
  EASEL_HEADERS_TIMEOUT_SECONDS: 'limits.headersTimeoutSeconds',
  EASEL_MODELS_DIR: 'models.dir',
  EASEL_EXECUTION_PROVIDER: 'onnx.executionProvider',
  EASEL_ONNX_THREADS: 'onnx.threads',
  EASEL_ONNX_FUSE_ATTENTION: 'onnx.fuseAttention',
  EASEL_SAFETY_THRESHOLD: 'safety.threshold',
  EASEL_BLOCK_PROFANITY: 'safety.blockProfanity',
  EASEL_IMAGE_CLASSIFIER: 'safety.imageClassifier',
  EASEL_IMAGE_CLASSIFIER_FAILURE: 'safety.imageClassifierFailure',
  EASEL_CLASSIFY_PLACEHOLDER_IMAGES: 'safety.classifyPlaceholderImages',
  EASEL_REDIS_URL: 'redis.url',
  EASEL_DATABASE_URL: 'database.url',
  EASEL_DATABASE_SCHEMA: 'database.schema',
  EASEL_S3_ENDPOINT: 's3.endpoint',
  EASEL_S3_BUCKET: 's3.bucket',
  EASEL_S3_REGION: 's3.region',
  EASEL_S3_FORCE_PATH_STYLE: 's3.forcePathStyle',
  EASEL_S3_PRESIGNED_URLS: 's3.presignedUrls',
  EASEL_SIGNING_SECRET: 'signingSecret',
  EASEL_QUEUE_LOCK_SECONDS: 'queue.lockSeconds',
  EASEL_QUEUE_STALLED_CHECK_SECONDS: 'queue.stalledCheckSeconds',
  EASEL_QUEUE_ATTEMPTS: 'queue.attempts',
  EASEL_WORKER_HEARTBEAT_SECONDS: 'workers.heartbeatSeconds',
  EASEL_WORKER_DEAD_AFTER_SECONDS: 'workers.deadAfterSeconds',
};

export const ENV_ONLY: Readonly<Record<string, TSchema>> = {
  EASEL_CONFIG: Type.String(),
  EASEL_MODEL: Type.String(),
  EASEL_AUTOENCODER: Type.Enum(['full', 'tiny']),
  EASEL_BLOCKLIST: Type.Array(Type.String()),
  EASEL_BLOCKLIST_FILE: Type.String(),
  // Read by the CLI's logger (src/cli/logger.ts); unset: pretty on a terminal, else json.
  EASEL_LOG_FORMAT: Type.Enum(['json', 'pretty'], { errorMessage: 'must be "json" or "pretty"' }),
};
