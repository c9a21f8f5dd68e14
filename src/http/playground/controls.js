// Form controls generated from a FAMILIES parameter table (served by /playground/config.json):
// enums become selects, ints and numbers number inputs with the table's limits, bools checkboxes,
// each with the table's default preselected. Nothing about sizes or qualities is written here.

/** Parameters the page sets itself (prompt, deployment, streaming) or leaves at the server's choice. */
const MANAGED = new Set(['prompt', 'model', 'user', 'stream', 'partial_images', 'response_format']);

const LABELS = {
  n: 'Images (n)',
  output_format: 'Output format',
  output_compression: 'Compression',
  input_fidelity: 'Input fidelity',
};
const labelOf = (name, spec) =>
  (LABELS[name] ?? name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, ' ')) +
  (spec.extension ? ' (easel)' : '');

/** Fill `container` with one control per parameter of `table`. */
export function renderControls(container, table) {
  container.replaceChildren();
  // Azure's parameters first, then easel's extensions (seed, strength).
  const entries = Object.entries(table).sort(
    ([, a], [, b]) => Number(a.extension === true) - Number(b.extension === true),
  );
  for (const [name, spec] of entries) {
    if (MANAGED.has(name) || spec.kind === 'string') continue;
    const id = `param-${name}`;
    const wrap = document.createElement('div');
    let input;
    if (spec.kind === 'enum') {
      input = document.createElement('select');
      for (const value of spec.values) input.add(new Option(value, value, false, value === spec.default));
    } else if (spec.kind === 'bool') {
      input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = spec.default === true;
      wrap.className = 'check';
    } else {
      input = document.createElement('input');
      input.type = 'number';
      input.min = String(spec.min);
      input.max = String(spec.max);
      input.step = spec.kind === 'int' ? '1' : 'any';
      if (spec.default !== undefined) input.value = String(spec.default);
      else input.placeholder = spec.kind === 'int' ? 'random' : 'server default';
    }
    input.id = id;
    input.name = name;
    input.dataset.kind = spec.kind;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = labelOf(name, spec);
    if (spec.kind === 'bool') wrap.append(input, label);
    else wrap.append(label, input);
    container.append(wrap);
  }
}

/**
 * The values to send: each control that differs from its default (an untouched form sends nothing,
 * so the server applies its own defaults and rules between parameters).
 */
export function readControls(container, table) {
  const values = {};
  for (const input of container.querySelectorAll('[name]')) {
    const spec = table[input.name];
    if (!spec) continue;
    let value;
    if (spec.kind === 'bool') value = input.checked;
    else if (spec.kind === 'enum') value = input.value;
    else if (input.value.trim() === '') continue;
    else value = Number(input.value);
    if (value !== spec.default) values[input.name] = value;
  }
  return values;
}
