// The web page of the AlexNet service. Plain JavaScript, no framework, no build step. It talks to this origin only
// (the Content-Security-Policy allows nothing else) and never puts server or user text into HTML: textContent only.

const KEY_STORAGE = 'alexnet.apiKey';   // sessionStorage: gone when the tab closes
const PAGE_SIZE = 24;                   // gallery tiles per page
const TOP_K = 5;
const SAME_IMAGE = 1e-3;                // FC7 distances below this are the same picture
const NEIGHBOURS_CAPTION = 'Choose an image to find the gallery images whose FC7 features are closest.';

const $ = (id) => document.getElementById(id);

const state = {
  file: null,          // the image being looked at (a File or Blob)
  seq: 0,              // bumps with each new image, so late answers for an old one are dropped
  top: null,           // the last classification's top list
  labelEdited: false,  // whether the user typed a label (then a new answer does not overwrite it)
  galleryOffset: 0,
  similarTo: null,     // gallery id whose neighbours are shown, or null for the chosen image's
  galleryOff: null,    // why the gallery cannot be used with the model now serving (it gives no features), or null
  samples: [],         // GET /api/samples: { name, label, url }
  sampleNext: 0,       // which sample "Try a sample" shows next (they take turns from a random start)
};

// ---- talking to the service ----

/** A refusal from the service (its problem+json title and detail) or a failed request (status 0). */
class Problem extends Error {
  constructor(status, title, detail, retryAfter = null) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

async function call(path, { method = 'GET', body = undefined, key = undefined } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (key) headers['X-Api-Key'] = key;
  let response;
  try {
    response = await fetch(path, { method, body, headers, cache: 'no-store' });
  } catch {
    const big = body instanceof FormData && [...body.values()].some((v) => v instanceof Blob && v.size > 8 * 1024 * 1024);
    throw new Problem(0, 'The service did not answer',
      big ? 'The connection closed before an answer came. The file is probably larger than the service accepts; try a smaller one.'
          : 'The request did not reach the service. Check that it is running and try again.');
  }
  if (response.status === 204) return null;
  const json = (response.headers.get('Content-Type') || '').includes('json') ? await response.json().catch(() => null) : null;
  if (response.ok) return json;
  throw new Problem(response.status, json?.title || response.statusText || `HTTP ${response.status}`,
    json?.detail || `The service answered ${response.status}.`, response.headers.get('Retry-After'));
}

function imageForm(file, fields = {}) {
  const form = new FormData();
  form.append('image', file, file.name || 'image');
  for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
  return form;
}

// ---- small DOM helpers ----

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) if (child != null && child !== false) el.append(child);
  return el;
}

function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(ns, 'use');
  use.setAttribute('href', `icons.svg#${name}`);
  svg.append(use);
  return svg;
}

function busy(button, on) {
  button.disabled = on;
  button.setAttribute('aria-busy', String(on));
}

function toast(text) {
  const el = h('div', { class: 'toast' }, icon('check'), h('span', { text }));
  $('toasts').append(el);
  setTimeout(() => el.remove(), 4000);
}

const percent = (p) => (p > 0 && p < 0.001 ? '<0.1%' : `${(p * 100).toFixed(1)}%`);
const number = (x) => (Number.isInteger(x) ? x.toLocaleString() : x.toLocaleString(undefined, { maximumSignificantDigits: 4 }));

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function showAlert(prefix, title, detail) {
  $(`${prefix}-error-title`).textContent = title;
  $(`${prefix}-error-detail`).textContent = detail;
  $(`${prefix}-error`).hidden = false;
}

const hideAlert = (prefix) => { $(`${prefix}-error`).hidden = true; };

/** A headline that says what happened to this file, in words; the service's detail goes under it. */
function uploadTitle(error, name) {
  const file = name ? `“${name}”` : 'The image';
  switch (error.status) {
    case 413: return `${file} is too large`;
    case 415: return `${file} is not an image the service reads`;
    case 400: case 422: return `${file} could not be used`;
    case 401: case 403: return error.title;
    case 429: return 'Too many requests';
    case 503: return 'The service is busy or not ready';
    case 0: return error.title;
    default: return `Something went wrong (${error.status} ${error.title})`;
  }
}

function uploadDetail(error) {
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : '';
  return `${error.detail}${error.detail?.includes('again') ? '' : wait}`;
}

// ---- choosing an image ----

// Sample images of what the model knows, served by the service from its own folder (GET /api/samples).
async function loadSamples() {
  try {
    state.samples = await call('/api/samples');
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    state.samples = [];
  }
  state.sampleNext = Math.floor(Math.random() * Math.max(1, state.samples.length));
  $('try-sample').hidden = $('try-another-sample').hidden = state.samples.length === 0;
}

async function trySample() {
  const sample = state.samples[state.sampleNext++ % state.samples.length];
  const response = await fetch(sample.url, { cache: 'force-cache' });
  if (!response.ok) {
    showAlert('upload', 'The sample did not load', `GET ${sample.url} answered ${response.status}.`);
    return;
  }
  const blob = await response.blob();
  analyse(new File([blob], `${sample.name}.png`, { type: 'image/png' }));
}

function pick(files) {
  const list = [...files];
  if (list.length === 0) return;
  if (list.length > 1) toast(`Using the first of ${list.length} files`);
  analyse(list[0]);
}

async function preview(file) {
  const canvas = $('preview');
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  try {
    // Decoded straight from the bytes: no blob: or data: URL, so the CSP can stay at 'self'.
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
    const w = bitmap.width * scale;
    const h2 = bitmap.height * scale;
    ctx.imageSmoothingEnabled = scale < 3;   // small images (28x28 garments) stay crisp
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h2) / 2, w, h2);
    const meta = `${bitmap.width} × ${bitmap.height} px · ${bytes(file.size)}`;
    bitmap.close();
    canvas.hidden = false;
    $('preview-fallback').hidden = true;
    return meta;
  } catch {
    canvas.hidden = true;
    $('preview-fallback').hidden = false;
    return `${bytes(file.size)} · ${file.type || 'unknown type'}`;
  }
}

async function analyse(file) {
  const seq = ++state.seq;
  state.file = file;
  state.top = null;
  state.labelEdited = false;
  hideAlert('upload');
  $('dropzone').dataset.state = 'full';
  $('file-name').textContent = file.name || 'Pasted image';
  $('file-meta').textContent = bytes(file.size);
  $('add-label').value = '';
  $('add-label').placeholder = 'The top class';
  $('results').hidden = false;
  $('scores').replaceChildren();   // the last image's answer must not stand next to this one
  scoresLoading();
  hitsLoading('Searching the gallery…');

  const meta = await preview(file);
  if (seq !== state.seq) return;
  $('file-meta').textContent = meta;

  if (!(await classify(seq))) {
    $('results').hidden = true;
    state.similarTo = null;
    $('neighbours-caption').textContent = NEIGHBOURS_CAPTION;
    hitsEmpty('Nothing to compare yet.');
    return;
  }
  await search(seq);
}

async function classify(seq = state.seq) {
  const file = state.file;
  const tenCrop = $('ten-crop').checked;
  scoresLoading();
  const started = performance.now();
  try {
    const answer = await call(`/api/classify?k=${TOP_K}&tenCrop=${tenCrop}`, { method: 'POST', body: imageForm(file) });
    if (seq !== state.seq) return false;
    const result = answer.results[0];
    const ms = Math.round(performance.now() - started);
    state.top = result.top;
    renderScores(result.top, `${tenCrop ? '10 crops' : 'Centre crop'} · ${result.cached ? 'cached' : `${ms} ms`}`);
    renderDomain(result);
    const label = $('add-label');
    if (!state.labelEdited && document.activeElement !== label && result.top.length > 0 && !result.outOfDomain) label.value = result.top[0].label;
    return true;
  } catch (error) {
    if (seq !== state.seq) return false;
    if (!(error instanceof Problem)) throw error;
    showAlert('upload', uploadTitle(error, file.name), uploadDetail(error));
    $('scores').replaceChildren();
    $('scores').setAttribute('aria-busy', 'false');
    return false;
  }
}

// How the file computes: fp32, or int8 with how it was quantized and how closely it answers as its float parent.
function precisionText(model) {
  if (model.precision !== 'int8') return 'fp32 (32-bit floating point)';
  const q = model.quantization;
  if (!q) return 'int8';
  const method = q.method === 'percentile' ? `the central ${q.percentile}% of each activation's values` : "each activation's min/max";
  return `int8: weights ${q.weights}; activations ${q.activations}; ranges from ${method} on ${q.calibrationImages} images ` +
    `(${q.calibration}); it gave its float parent's top-1 class on ${(100 * q.checkTop1Agreement).toFixed(1)}% of ` +
    `${q.checkImages} other images (feature cosine ${q.checkFeatureCosine.toFixed(3)})`;
}

// The model's out-of-domain flag (null for a model without the statistics): instead of a confident wrong answer, say
// that the image is unlike the training images, and keep the guesses behind a button.
function renderDomain(result) {
  const flagged = result.outOfDomain === true;
  $('ood-notice').hidden = !flagged;
  $('scores').hidden = flagged;
  if (flagged) {
    $('ood-show').hidden = false;
    $('top-title').textContent = 'Not recognised';
    $('ood-detail').textContent = `Its out-of-domain score is ${number(result.oodScore)} (above 1 is unlike the images it learnt from), ` +
      'so its classes would be guesses. It only knows the classes of its training data.';
  }
}

function scoresLoading() {
  $('ood-notice').hidden = true;
  $('scores').hidden = false;
  const list = $('scores');
  list.setAttribute('aria-busy', 'true');
  if (list.children.length === 0) {
    list.replaceChildren(...Array.from({ length: TOP_K }, () =>
      h('li', { class: 'score skeleton' }, h('span', { class: 'score-label', text: '·' }),
        h('span', { class: 'score-value', text: '00.0%' }), h('div', { class: 'bar' }, h('span')))));
  }
  $('top-meta').textContent = 'Classifying…';
}

function renderScores(top, meta) {
  $('top-title').textContent = `Top ${top.length}`;   // a 3-class model gives three
  const list = $('scores');
  list.replaceChildren(...top.map((s) => {
    const fill = h('span');
    fill.style.setProperty('--p', String(s.probability));   // CSSOM, not a style attribute: allowed by the CSP
    return h('li', { class: 'score', 'data-index': s.index },
      h('span', { class: 'score-label' }, s.label, s.wnid ? h('span', { class: 'wnid', text: s.wnid }) : null),
      h('span', { class: 'score-value', text: percent(s.probability) }),
      h('div', { class: 'bar', role: 'presentation' }, fill));
  }));
  list.setAttribute('aria-busy', 'false');
  $('top-meta').textContent = meta;
}

// ---- nearest gallery images ----

async function search(seq = state.seq) {
  if (!state.file) return;
  state.similarTo = null;
  if (state.galleryOff) {
    $('neighbours-caption').textContent = 'Off while this model serves.';
    return hitsEmpty(state.galleryOff);
  }
  hitsLoading('Searching the gallery…');
  try {
    const answer = await call(`/api/gallery/search?k=${TOP_K}`, { method: 'POST', body: imageForm(state.file) });
    if (seq !== state.seq) return;
    renderHits(answer.results[0].neighbours, `Closest to ${state.file.name ? `“${state.file.name}”` : 'the chosen image'}, by the Euclidean distance between FC7 features.`,
      'The gallery is empty. Add this image to start it.');
  } catch (error) {
    if (seq !== state.seq) return;
    if (!(error instanceof Problem)) throw error;
    hitsEmpty(`${uploadTitle(error, state.file.name)}. ${error.detail}`);
  }
}

async function similar(item) {
  state.similarTo = item.id;
  hitsLoading(`Looking for images like #${item.id}…`);
  $('neighbours').scrollIntoView({ block: 'nearest' });
  try {
    const answer = await call(`/api/gallery/${item.id}/similar?k=${TOP_K}`);
    renderHits(answer.neighbours, `Closest to gallery image “${item.label || `#${item.id}`}”, which is left out.`,
      'No other images in the gallery yet.');
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    hitsEmpty(`${error.title}. ${error.detail}`);
  }
  $('neighbours-title').focus({ preventScroll: true });
}

async function refreshHits() {
  if (state.similarTo != null) await similar({ id: state.similarTo });
  else if (state.file && state.top) await search();
}

function hitsLoading(caption) {
  $('neighbours-caption').textContent = caption;
  $('hits').setAttribute('aria-busy', 'true');
}

function hitsEmpty(text) {
  $('hits').replaceChildren(h('li', { class: 'empty', text }));
  $('hits').setAttribute('aria-busy', 'false');
}

function renderHits(hits, caption, emptyText) {
  $('neighbours-caption').textContent = caption;
  if (hits.length === 0) return hitsEmpty(emptyText);
  $('hits').replaceChildren(...hits.map((hit) => {
    const same = hit.distance < SAME_IMAGE;
    return h('li', { class: 'hit', 'data-id': hit.id },
      h('img', { src: thumbnail(hit), alt: '', width: 64, height: 64, loading: 'lazy' }),
      h('div', { class: 'hit-text' },
        h('span', { class: 'hit-label', text: hit.label || `Image #${hit.id}` }),
        h('span', { class: 'hit-note', text: hit.note || `Gallery image #${hit.id}` })),
      h('div', { class: 'hit-distance' }, h('strong', { class: 'distance', text: hit.distance.toFixed(2) }),
        same ? h('span', { class: 'badge', text: 'Same image' }) : h('span', { text: 'distance' })));
  }));
  $('hits').setAttribute('aria-busy', 'false');
}

/** The service's thumbnail address, or the fixed one for the id: never a URL from elsewhere. */
function thumbnail(item) {
  const url = item.thumbnailUrl;
  return typeof url === 'string' && url.startsWith('/api/gallery/') ? url : `/api/gallery/${Number(item.id)}/thumbnail`;
}

// ---- the API key ----

/** Runs action(key), asking for the key first if this tab has none, and again after a 401. Null when cancelled. */
async function withKey(action) {
  let message = null;
  for (;;) {
    let key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) {
      key = await askKey(message);
      if (key == null) return null;
      sessionStorage.setItem(KEY_STORAGE, key);
    }
    try {
      return await action(key);
    } catch (error) {
      if (!(error instanceof Problem) || error.status !== 401) throw error;   // 403: writes are off; another key won't help
      sessionStorage.removeItem(KEY_STORAGE);
      message = error.detail;
    }
  }
}

function askKey(message) {
  const dialog = $('key-dialog');
  const input = $('key-input');
  const error = $('key-error');
  input.value = '';
  error.textContent = message || '';
  error.hidden = !message;
  dialog.showModal();
  input.focus();
  return new Promise((resolve) => {
    const finish = (value) => {
      $('key-form').removeEventListener('submit', onSubmit);
      $('key-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(value);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (key) return finish(key);
      error.textContent = 'Enter the key, or cancel.';
      error.hidden = false;
      input.focus();
    };
    const onCancel = (e) => { e.preventDefault(); finish(null); };
    $('key-form').addEventListener('submit', onSubmit);
    $('key-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);   // Escape
  });
}

function confirmDelete(text) {
  const dialog = $('confirm-dialog');
  $('confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

// ---- adding to and browsing the gallery ----

async function addToGallery(event) {
  event.preventDefault();
  if (!state.file) return;
  const button = $('add-button');
  busy(button, true);
  hideAlert('upload');
  try {
    const label = $('add-label').value.trim();
    const note = $('add-note').value.trim();
    const answer = await withKey((key) => call('/api/gallery', { method: 'POST', body: imageForm(state.file, { label, note }), key }));
    if (answer == null) return;   // cancelled at the key prompt
    const item = answer.items[0];
    $('add-note').value = '';
    toast(`Added “${item.label || `#${item.id}`}” to the gallery`);
    state.similarTo = null;
    await Promise.all([loadGallery('last'), search()]);
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    showAlert('upload', error.status === 403 ? error.title : `Not added: ${uploadTitle(error, state.file.name).replace(/^./, (c) => c.toLowerCase())}`,
      uploadDetail(error));
  } finally {
    busy(button, false);
  }
}

async function deleteItem(item, button) {
  const name = item.label ? `“${item.label}” (#${item.id})` : `#${item.id}`;
  if (!(await confirmDelete(`Image ${name} and its features leave the gallery for good.`))) return;
  busy(button, true);
  hideAlert('gallery');
  try {
    if ((await withKey((key) => call(`/api/gallery/${item.id}`, { method: 'DELETE', key }).then(() => true))) == null) return;
    toast(`Deleted ${name}`);
    if (state.similarTo === item.id) state.similarTo = null;
    await Promise.all([loadGallery(), refreshHits()]);
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    showAlert('gallery', `Could not delete ${name}: ${error.title}`, uploadDetail(error));
  } finally {
    if (button.isConnected) busy(button, false);
  }
}

/** Loads a page of the gallery (oldest first); 'last' is the page with the newest images. */
async function loadGallery(offset = state.galleryOffset) {
  try {
    let page = await call(`/api/gallery?offset=${offset === 'last' ? 0 : offset}&limit=${PAGE_SIZE}`);
    const last = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
    if ((offset === 'last' || page.offset > last) && page.offset !== last)
      page = await call(`/api/gallery?offset=${last}&limit=${PAGE_SIZE}`);
    state.galleryOffset = page.offset;
    hideAlert('gallery');
    renderGallery(page);
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    showAlert('gallery', `The gallery did not load: ${error.title}`, error.detail);
  }
}

function renderGallery(page) {
  const { total, offset, items } = page;
  $('gallery-count').textContent = total === 0 ? 'No images yet.' : `${total.toLocaleString()} image${total === 1 ? '' : 's'}, oldest first. Search compares new images with these.`;
  $('pager').hidden = total <= PAGE_SIZE;
  $('page-info').textContent = total === 0 ? '' : `${offset + 1}–${offset + items.length} of ${total}`;
  $('page-prev').disabled = offset === 0;
  $('page-next').disabled = offset + items.length >= total;
  if (items.length === 0) {
    $('tiles').replaceChildren(h('li', { class: 'empty', text: 'The gallery is empty. Classify an image, then use “Add to gallery” to keep it here.' }));
    return;
  }
  $('tiles').replaceChildren(...items.map((item) => {
    const name = item.label || `Image #${item.id}`;
    const remove = h('button', { type: 'button', class: 'btn btn-ghost btn-small btn-delete', 'aria-label': `Delete ${name}`, title: 'Delete' }, icon('trash'));
    remove.addEventListener('click', () => deleteItem(item, remove));
    const added = new Date(item.createdUtc);
    return h('li', { class: 'tile', 'data-id': item.id },
      h('img', { src: thumbnail(item), alt: name, width: 96, height: 96, loading: 'lazy' }),
      h('div', { class: 'tile-text', title: [item.note, `Added ${added.toLocaleString()}`].filter(Boolean).join('\n') },
        h('span', { class: 'tile-label', text: name }),
        h('span', { class: 'tile-meta', text: `#${item.id} · ${item.width} × ${item.height} px` }),
        item.note ? h('span', { class: 'tile-meta', text: item.note }) : null),
      h('div', { class: 'tile-actions' },
        h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-label': `Images similar to ${name}`, onclick: () => similar(item) },
          icon('similar'), 'Similar'),
        remove));
  }));
}

// ---- the model card ----

const METRIC_WORDS = { val: 'validation', test: 'test', train: 'training', top1: 'top-1', top5: 'top-5', acc: 'accuracy' };

function metricName(key) {
  const words = key.split(/[_\s]+/).map((w) => METRIC_WORDS[w.toLowerCase()] ?? w);
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function metricValue(key, value) {
  if (typeof value !== 'number') return String(value);
  return /err|acc|top|@/i.test(key) && value >= 0 && value <= 1 ? `${(value * 100).toFixed(2)}%` : number(value);
}

async function loadModel() {
  let model;
  try {
    model = await call('/api/model');
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    $('model-lede').textContent = `${error.title}. ${error.detail}`;
    return;
  }
  const p = model.provenance && typeof model.provenance === 'object' ? model.provenance : {};
  $('brand-model').textContent = model.file;
  // What this model knows, in its own words (its provenance's or profile's domain): beside the upload box.
  $('model-domain').textContent = model.domain ? `What this model knows: ${model.domain}` : '';
  $('model-domain').hidden = !model.domain;
  $('model-lede').textContent = `${model.file}: what the loaded model file says about itself.`;

  const rows = [];
  const row = (name, value, cls) => { if (value != null && value !== '') rows.push(h('dt', { text: name }), h('dd', { class: cls }, value)); };
  const pr = model.profile;   // a third-party ONNX file served through its declared preprocessing
  state.galleryOff = model.featureDim > 0 ? null
    : `${model.file} gives no feature vectors (a third-party classifier whose profile names no feature output), so there ` +
      'is nothing to compare with: the gallery is off while it serves. Classification works.';
  $('add-block').hidden = state.galleryOff !== null;
  row('Preset', model.preset || (pr ? 'third-party ONNX file, served through its profile' : 'not recorded'));
  row('Data set', p.dataset);
  for (const [key, value] of Object.entries(p.metrics ?? {})) row(metricName(key), metricValue(key, value), 'metric');
  row('Epochs', p.epochs ? String(p.epochs) : null);
  row('Input', `${model.inputSize} × ${model.inputSize} crop of ${model.resizeSize} × ${model.resizeSize}` +
    (pr?.resize === 'squash' ? ' (the whole image squashed)' : ''));
  if (pr) {
    row('Preprocessing', `${pr.channelOrder.toUpperCase()}, pixels scaled to 0–${pr.pixelRange}, minus [${pr.mean.join(', ')}], ` +
      `over [${pr.std.join(', ')}]; input '${pr.input}'`);
    row('Scores', `'${pr.scores}', ${pr.scoresAre === 'logits' ? 'logits (softmax applied by the service)' : 'probabilities'}`);
  }
  row('Classes', String(model.classes));
  row('Features', model.featureDim > 0
    ? `${model.featureDim.toLocaleString()}-d ${pr ? `output '${pr.features}'` : 'FC7'}`
    : 'none: this model has no feature output, so the gallery is off');
  row('Precision', precisionText(model), 'precision');
  row('Initialisation', p.init);
  if (p.createdUtc) {
    const made = new Date(p.createdUtc);
    row('Exported', Number.isNaN(made.getTime()) ? p.createdUtc : made.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }));
  }
  row('Command', p.command ? h('code', { text: p.command }) : null);
  row('Note', p.note);
  for (const [key, value] of Object.entries(p)) {
    if (!['dataset', 'metrics', 'epochs', 'init', 'createdUtc', 'command', 'note'].includes(key) && ['string', 'number'].includes(typeof value))
      row(metricName(key), String(value));
  }
  row('Runs on', model.provider);
  row('Fingerprint', h('code', { text: `${model.fingerprint.slice(0, 19)}…`, title: model.fingerprint }));
  $('facts').replaceChildren(...rows);

  $('labels').replaceChildren(...model.labels.map((c) =>
    h('li', { title: c.wnid || null }, h('span', { text: String(c.index) }), c.label)));

  // Drawn by the service from the model's own first-layer weights; a 404 (no Conv first) leaves the figure hidden.
  const img = $('kernels-img');
  img.addEventListener('load', () => { $('kernels').hidden = false; }, { once: true });
  img.src = '/api/model/conv1.png';
}

async function loadStatus() {
  const el = $('status');
  try {
    const response = await fetch('/health/ready', { cache: 'no-store', headers: { Accept: 'application/json' } });
    const body = await response.json().catch(() => null);
    if (response.ok) {
      el.dataset.state = 'ready';
      $('status-text').textContent = `Ready · ${body?.provider ?? ''}`.replace(/ · $/, '');
      el.title = `${body?.model ?? 'model'} on ${body?.provider ?? '?'}; ${body?.galleryImages ?? 0} gallery images`;
    } else {
      el.dataset.state = 'down';
      $('status-text').textContent = 'Not ready';
      el.title = body?.detail ?? `HTTP ${response.status}`;
    }
  } catch {
    el.dataset.state = 'down';
    $('status-text').textContent = 'Offline';
    el.title = 'The service does not answer.';
  }
}

// ---- wiring ----

function wire() {
  const input = $('file-input');
  const choose = () => input.click();
  $('choose').addEventListener('click', choose);
  $('choose-again').addEventListener('click', choose);
  $('try-sample').addEventListener('click', trySample);
  $('try-another-sample').addEventListener('click', trySample);
  input.addEventListener('change', () => { pick(input.files); input.value = ''; });

  // Drop anywhere on the page; the drop zone lights up while a file is dragged over the window.
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  window.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth++; document.body.classList.add('dragging'); } });
  window.addEventListener('dragleave', (e) => { if (hasFiles(e) && --depth <= 0) { depth = 0; document.body.classList.remove('dragging'); } });
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } });
  window.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    document.body.classList.remove('dragging');
    pick(e.dataTransfer.files);
  });
  document.addEventListener('paste', (e) => {
    const files = e.clipboardData?.files;
    if (files?.length) { e.preventDefault(); pick(files); }
  });

  $('ten-crop').addEventListener('change', () => { if (state.file && state.top) classify(); });
  $('ood-show').addEventListener('click', () => {
    $('scores').hidden = false;
    $('ood-show').hidden = true;
    $('top-title').textContent = `Guesses (top ${state.top?.length ?? ''})`;
  });
  $('add-label').addEventListener('input', () => { state.labelEdited = true; });
  $('add-form').addEventListener('submit', addToGallery);
  $('page-prev').addEventListener('click', () => loadGallery(Math.max(0, state.galleryOffset - PAGE_SIZE)));
  $('page-next').addEventListener('click', () => loadGallery(state.galleryOffset + PAGE_SIZE));
  $('neighbours-title').tabIndex = -1;
}

wire();
hitsEmpty('Nothing to compare yet.');
await Promise.all([loadStatus(), loadModel(), loadGallery(), loadSamples()]);
setInterval(() => { if (document.visibilityState === 'visible') loadStatus(); }, 30_000);
document.documentElement.dataset.ready = 'true';   // for tests and scripts: the first loads are done
