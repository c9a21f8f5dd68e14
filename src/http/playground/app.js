// The playground: reads /playground/config.json (deployments and FAMILIES' parameter tables),
// builds the form from it, and calls the Azure routes as a client would.
import { apiKey, ApiProblem, pollOperation, postForm, postJson, readEvents } from './api.js';
import { readControls, renderControls } from './controls.js';
import { categorySentence } from './filters.js';
import { addProblemCard, addToGallery, imageSource } from './gallery.js';
import { MaskPainter } from './mask.js';

const $ = (id) => document.getElementById(id);
const state = { config: null, mode: 'generate', busy: false };

const painter = new MaskPainter({
  imageCanvas: $('image-canvas'),
  maskCanvas: $('mask-canvas'),
  sizeInput: $('brush-size'),
  toolInputs: [...document.querySelectorAll('input[name=tool]')],
});

/** A readable message; the error code (Azure's `error.code`) goes into data-code for tests and styling. */
function showError(message, code = '') {
  $('error').textContent = message;
  $('error').dataset.code = code;
  $('error').hidden = !message;
}
const setStatus = (text) => ($('status').textContent = text);

function deployment() {
  return state.config.deployments.find((d) => d.name === $('deployment').value);
}
const family = (d = deployment()) => state.config.families[d.family];
/** The parameter table the current mode and deployment use. */
const table = () => (state.mode === 'edit' ? family().edit : family().generation);

// ---- key ----------------------------------------------------------------------------------------
function showKeyState() {
  $('key-state').textContent = apiKey.get() ? 'saved in this browser' : 'no key yet';
}
$('api-key').value = apiKey.get();
// Requests read the key from the field (api.js), so Save is a convenience, not a required step.
apiKey.input = $('api-key');
function saveKey() {
  apiKey.set($('api-key').value.trim());
  showKeyState();
}
$('api-key').addEventListener('change', saveKey);
$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  saveKey();
  showError('');
});

// ---- mode, deployment, controls ------------------------------------------------------------------
function fillDeployments() {
  const select = $('deployment');
  const previous = select.value;
  const usable = state.config.deployments.filter((d) => state.mode === 'generate' || family(d).edit);
  select.replaceChildren(...usable.map((d) => new Option(`${d.name} (${d.family})`, d.name)));
  const preferred = usable.find((d) => d.name === previous) ?? defaultDeployment(usable);
  if (preferred) select.value = preferred.name;
  onDeployment();
}

/**
 * The first choice: Azure edits images only with gpt-image-1; for generations dall-e-3, else the
 * first ready deployment of a family Azure offers outside preview (DALL-E 2 only ever was a preview
 * model there), so a first Generate uses the synchronous flow most clients use.
 */
function defaultDeployment(usable) {
  const ready = usable.filter((d) => d.status === 'ready');
  if (state.mode === 'edit')
    return ready.find((d) => d.family === 'gpt-image-1') ?? usable.find((d) => d.family === 'gpt-image-1');
  return (
    ready.find((d) => d.family === 'dall-e-3') ?? ready.find((d) => d.family !== 'dall-e-2') ?? ready[0] ?? usable[0]
  );
}

function onDeployment() {
  const d = deployment();
  if (!d) return;
  const flow =
    state.mode === 'edit'
      ? 'edit'
      : d.family === 'gpt-image-1'
        ? 'streams partial images'
        : d.family === 'dall-e-2'
          ? 'asynchronous (:submit)'
          : 'one request';
  $('deployment-info').textContent = `${d.status}${d.reason ? `: ${d.reason}` : ''} · ${flow}`;
  renderControls($('param-controls'), table());
}

function setMode(mode) {
  state.mode = mode;
  $('tab-generate').setAttribute('aria-selected', String(mode === 'generate'));
  $('tab-edit').setAttribute('aria-selected', String(mode === 'edit'));
  $('edit-area').hidden = mode !== 'edit';
  $('submit').textContent = mode === 'edit' ? 'Edit image' : 'Generate';
  setStatus('');
  fillDeployments();
}
$('tab-generate').addEventListener('click', () => setMode('generate'));
$('tab-edit').addEventListener('click', () => setMode('edit'));
$('deployment').addEventListener('change', onDeployment);

// ---- the edit image ----------------------------------------------------------------------------
async function loadEditImage(src) {
  const img = new Image();
  img.src = src;
  await img.decode();
  painter.load(img);
  $('mask-stage').hidden = false;
  $('mask-tools').hidden = false;
}
$('image-file').addEventListener('change', async () => {
  const file = $('image-file').files[0];
  if (!file) return;
  try {
    await loadEditImage(URL.createObjectURL(file));
  } catch {
    showError('That file could not be read as an image (PNG, JPEG or WebP).');
  }
});
$('mask-clear').addEventListener('click', () => painter.clear());

async function editFromGallery(src) {
  setMode('edit');
  showError('');
  await loadEditImage(src);
  $('edit-area').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// ---- requests ----------------------------------------------------------------------------------
const url = (path, version) => `${path}?api-version=${encodeURIComponent(version)}`;
const deploymentUrl = (d, op) =>
  url(`/openai/deployments/${encodeURIComponent(d.name)}/images/${op}`, state.config.apiVersions.images);

/** Gallery cards for the `data` items; an item without an image (`{"error": …}`) gets a card saying why. */
function showItems(body, d, prompt, extra = {}) {
  for (const item of body.data ?? []) {
    const src = imageSource(item, body.output_format);
    if (!src) {
      const error = item.error ?? { code: '', message: 'The server returned no image for this item.' };
      // The item's own annotations, where an answer puts them beside the error rather than in it.
      addProblemCard({
        deployment: d.name,
        prompt,
        error: item.content_filter_results ? { content_filter_results: item.content_filter_results, ...error } : error,
      });
      continue;
    }
    addToGallery(
      {
        src,
        format: body.output_format ?? 'png',
        prompt,
        deployment: d.name,
        revisedPrompt: item.revised_prompt,
        contentFilter: item.content_filter_results,
        promptFilter: item.prompt_filter_results,
        ...extra,
      },
      editFromGallery,
    );
  }
}

/** gpt-image-1: partial images into the live preview as they arrive, then each final image. */
async function streamed(response, d, prompt) {
  const live = $('live');
  let partials = 0;
  await readEvents(response, (name, event) => {
    if (name.endsWith('.partial_image')) {
      partials++;
      const img = document.createElement('img');
      img.src = imageSource(event, event.output_format);
      img.alt = `partial image ${event.partial_image_index + 1}`;
      img.dataset.partial = String(event.partial_image_index);
      live.replaceChildren(img);
      live.hidden = false;
      setStatus(`Partial image ${partials} received…`);
    } else if (name.endsWith('.completed')) {
      showItems({ data: [event], output_format: event.output_format }, d, prompt, { partials });
    }
  });
}

/** A DALL-E 2 operation's status in words. */
const OPERATION_STATUS = {
  notRunning: 'Queued: waiting for the server to start the operation…',
  running: 'Running: the image is being generated…',
  succeeded: 'Finished.',
  failed: 'The operation failed.',
  canceled: 'The operation was canceled.',
  deleted: 'The operation was deleted.',
};

async function generate(d, prompt, params) {
  if (d.family === 'gpt-image-1') {
    const response = await postJson(deploymentUrl(d, 'generations'), {
      prompt,
      ...params,
      stream: true,
      partial_images: 2,
    });
    return streamed(response, d, prompt);
  }
  if (d.family === 'dall-e-2') {
    // The asynchronous flow: no deployment in the URL, the server's dall-e-2 deployment serves it.
    const submitted = await postJson(url('/openai/images/generations:submit', state.config.apiVersions.submit), {
      prompt,
      ...params,
    });
    const operation = await pollOperation(submitted, (status) =>
      setStatus(OPERATION_STATUS[status] ?? `Operation ${status}…`),
    );
    return showItems(operation.result ?? {}, d, prompt);
  }
  showItems(await (await postJson(deploymentUrl(d, 'generations'), { prompt, ...params })).json(), d, prompt);
}

const NO_EDIT_IMAGE = 'Choose an image to edit first (upload one, or press Edit on a gallery image).';

async function edit(d, prompt, params) {
  if (!painter.loaded) throw new ApiProblem(NO_EDIT_IMAGE);
  const form = new FormData();
  form.append('prompt', prompt);
  for (const [name, value] of Object.entries(params)) form.append(name, String(value));
  form.append('image', await painter.imageBlob(), 'image.png');
  const mask = await painter.maskBlob();
  if (mask) form.append('mask', mask, 'mask.png');
  if (d.family === 'gpt-image-1') {
    form.append('stream', 'true');
    form.append('partial_images', '2');
    return streamed(await postForm(deploymentUrl(d, 'edits'), form), d, prompt);
  }
  showItems(await (await postForm(deploymentUrl(d, 'edits'), form)).json(), d, prompt);
}

$('request-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (state.busy) return;
  const d = deployment();
  const prompt = $('prompt').value.trim();
  showError('');
  if (state.mode === 'edit' && !painter.loaded) return showError(NO_EDIT_IMAGE);
  if (!prompt) return showError('Write a prompt first.');
  state.busy = true;
  $('submit').disabled = true;
  $('live').hidden = true;
  setStatus(state.mode === 'edit' ? 'Editing…' : 'Generating…');
  const started = performance.now();
  try {
    const params = readControls($('param-controls'), table());
    await (state.mode === 'edit' ? edit(d, prompt, params) : generate(d, prompt, params));
    setStatus(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  } catch (error) {
    setStatus('');
    showProblem(error, d, prompt);
  } finally {
    showKeyState();
    state.busy = false;
    $('submit').disabled = false;
    $('live').hidden = true;
  }
});

/**
 * A failed request in words. A generated image the content filter withheld (`contentFilter` on the
 * synchronous routes and streams) becomes a gallery card; a refused prompt (content_policy_violation,
 * or a DALL-E 2 operation that failed with contentFilter) an error naming the category.
 */
function showProblem(error, d, prompt) {
  if (!(error instanceof ApiProblem)) return showError(`Something went wrong: ${error.message}`);
  if (error.code === 'contentFilter' && !error.operation) {
    addProblemCard({ deployment: d.name, prompt, error: error.error ?? { code: error.code, message: error.message } });
    return setStatus('The content filter withheld the image.');
  }
  const categories = categorySentence(error.error);
  showError(categories ? `${error.message} ${categories}` : error.message, error.code);
}

// ---- start -------------------------------------------------------------------------------------
async function start() {
  showKeyState();
  try {
    const response = await fetch('/playground/config.json');
    if (!response.ok) throw new Error(`${response.status}`);
    state.config = await response.json();
  } catch (error) {
    showError(`Could not load the playground configuration (${error.message}). Is the server running?`);
    return;
  }
  setMode('generate');
  document.body.dataset.ready = 'true';
}
start();
