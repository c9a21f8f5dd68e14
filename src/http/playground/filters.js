// What the content filter said, in words: which categories an answer flagged. Azure puts the
// annotations in several places depending on the route and api-version (`inner_error` of a
// blocked prompt, `innererror` in older answers, `content_filter_result(s)` on the error or the
// item), so every one of them is read.

/** The annotation objects found on an error or an item, in the order they are looked for. */
function annotationsOf(source) {
  if (!source || typeof source !== 'object') return [];
  const found = [];
  for (const holder of [source, source.inner_error, source.innererror, source.error]) {
    if (!holder || typeof holder !== 'object') continue;
    for (const key of ['content_filter_results', 'content_filter_result', 'prompt_filter_results']) {
      if (holder[key] && typeof holder[key] === 'object') found.push(holder[key]);
    }
  }
  return found;
}

/** "sexual (high)", "custom blocklist EASEL_BLOCKLIST", "jailbreak": each category that was filtered. */
export function filteredCategories(source) {
  const names = new Set();
  for (const results of annotationsOf(source)) {
    for (const [category, result] of Object.entries(results)) {
      if (!result || typeof result !== 'object' || result.filtered !== true) continue;
      const name = category.replace(/_/g, ' ');
      if (Array.isArray(result.details)) {
        const ids = result.details.filter((d) => d?.filtered === true && typeof d.id === 'string').map((d) => d.id);
        names.add(ids.length > 0 ? `${name.replace(/s$/, '')} ${ids.join(', ')}` : name);
      } else {
        names.add(
          typeof result.severity === 'string' && result.severity !== 'safe' ? `${name} (${result.severity})` : name,
        );
      }
    }
  }
  return [...names];
}

/** A sentence naming the categories, or '' when the answer names none. */
export function categorySentence(source) {
  const categories = filteredCategories(source);
  return categories.length > 0 ? `Filtered category: ${categories.join('; ')}.` : '';
}
