// The results: one card per image with a download link, the revised prompt (DALL-E 3), the content
// filter annotations as readable chips, and a button that takes the image into edit mode. An image
// the content filter withheld (or an item that carries an error instead of an image) gets a card
// that says so in words.
import { filteredCategories } from './filters.js';

const gallery = () => document.getElementById('gallery');

/**
 * `data` item → something an <img> shows: the signed URL, or the base64 bytes as a blob URL; null
 * for an item without an image (a DALL-E 2 item can be `{"error": …}`).
 */
export function imageSource(item, format = 'png') {
  if (typeof item?.url === 'string' && item.url) return item.url;
  if (typeof item?.b64_json !== 'string' || !item.b64_json) return null;
  const bytes = Uint8Array.from(atob(item.b64_json), (c) => c.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes], { type: `image/${format === 'jpeg' ? 'jpeg' : format}` }));
}

/** "hate: safe", "jailbreak: not detected"; flagged when filtered or detected. */
function filterChips(title, results) {
  if (!results || typeof results !== 'object') return null;
  const entries = Object.entries(results).filter(([, v]) => v && typeof v === 'object');
  if (entries.length === 0) return null;
  const wrap = document.createElement('div');
  const heading = document.createElement('div');
  heading.className = 'meta';
  heading.textContent = title;
  const list = document.createElement('ul');
  list.className = 'filters';
  for (const [category, result] of entries) {
    const li = document.createElement('li');
    const flagged = result.filtered === true || result.detected === true || typeof result.message === 'string';
    const detail =
      result.message ??
      result.severity ??
      ('detected' in result ? (result.detected ? 'detected' : 'not detected') : result.filtered ? 'filtered' : 'ok');
    li.textContent = `${category.replace(/_/g, ' ')}: ${detail}${result.filtered ? ' (filtered)' : ''}`;
    if (flagged) li.classList.add('flagged');
    list.append(li);
  }
  wrap.append(heading, list);
  return wrap;
}

/**
 * Add one image to the top of the gallery. `entry`: { src, format, prompt, deployment, revisedPrompt,
 * contentFilter, promptFilter, partials }.
 */
export function addToGallery(entry, onEdit) {
  const card = newCard(entry.deployment);
  if (entry.partials !== undefined) card.dataset.partials = String(entry.partials);

  const img = document.createElement('img');
  img.src = entry.src;
  img.alt = entry.prompt;
  img.loading = 'lazy';

  const actions = document.createElement('div');
  actions.className = 'actions';
  const download = document.createElement('a');
  download.href = entry.src;
  download.download = `easel-${Date.now()}.${entry.format ?? 'png'}`;
  download.textContent = 'Download';
  const edit = document.createElement('button');
  edit.type = 'button';
  edit.textContent = 'Edit';
  edit.addEventListener('click', () => onEdit(entry.src));
  actions.append(download, edit);

  const caption = document.createElement('figcaption');
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = `${entry.deployment}${entry.partials ? ` · ${entry.partials} partial image${entry.partials > 1 ? 's' : ''} streamed` : ''}`;
  caption.append(meta);
  if (entry.revisedPrompt) {
    const revised = document.createElement('p');
    revised.className = 'revised';
    const label = document.createElement('strong');
    label.textContent = 'Revised prompt:';
    revised.append(label, ` ${entry.revisedPrompt}`);
    caption.append(revised);
  }
  for (const chips of [
    filterChips('Prompt filter', entry.promptFilter),
    filterChips('Content filter', entry.contentFilter),
  ]) {
    if (chips) caption.append(chips);
  }
  card.append(img, actions, caption);
  gallery().prepend(card);
  return card;
}

function newCard(deployment) {
  document.getElementById('gallery-empty').hidden = true;
  const card = document.createElement('figure');
  card.className = 'card';
  card.dataset.deployment = deployment;
  return card;
}

/**
 * A card in place of an image that did not come back: `entry`: { deployment, prompt, error } where
 * `error` is Azure's error object (code `contentFilter` when the content filter withheld the image).
 */
export function addProblemCard(entry) {
  const card = newCard(entry.deployment);
  const filtered = entry.error?.code === 'contentFilter';
  card.classList.add('problem');
  if (filtered) card.dataset.filtered = 'true';
  card.dataset.code = entry.error?.code ?? '';

  const box = document.createElement('div');
  box.className = 'withheld';
  const title = document.createElement('strong');
  title.textContent = filtered ? 'Image filtered' : 'No image';
  const why = document.createElement('p');
  why.textContent = filtered
    ? 'The content filter withheld this image.'
    : (entry.error?.message ?? 'The server returned no image for this item.');
  box.append(title, why);
  const categories = filteredCategories(entry.error);
  if (categories.length > 0) {
    const list = document.createElement('ul');
    list.className = 'filters';
    for (const category of categories) {
      const li = document.createElement('li');
      li.className = 'flagged';
      li.textContent = category;
      list.append(li);
    }
    box.append(list);
  } else if (filtered) {
    const none = document.createElement('p');
    none.className = 'muted';
    none.textContent = 'The answer did not say which category.';
    box.append(none);
  }

  const caption = document.createElement('figcaption');
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = entry.deployment;
  const prompt = document.createElement('p');
  prompt.className = 'revised';
  prompt.textContent = entry.prompt;
  caption.append(meta, prompt);
  if (filtered && entry.error?.message) {
    const message = document.createElement('p');
    message.className = 'muted';
    message.textContent = entry.error.message;
    caption.append(message);
  }
  card.append(box, caption);
  gallery().prepend(card);
  return card;
}
