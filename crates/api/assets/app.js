// The tidemark console: vanilla JavaScript against /api/v1, no build step.
//
// Everything the server sends is put into the page with textContent or attributes, never
// as HTML. The page's Content-Security-Policy forbids inline scripts and styles, so all
// behaviour is wired here and all looks come from classes in app.css.

'use strict';

// ------------------------------------------------------------------------------ constants

const API = '/api/v1';
const TOKEN_KEY = 'tidemark.token';
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
/** How long a finished (not failed) job stays on its connection's card. */
const RECENT_JOB_MS = 60_000;
const SUGGEST_DELAY_MS = 150;
const PAGE_SIZE = 50;
const JOB_POLL_MS = 1000;

const STATE_TEXT = {
  synced: 'synced',
  insert: 'insert',
  update: 'update',
  image_delete: 'image delete',
  unbound: 'not listed',
};
const STATE_TITLE = {
  synced: 'In step: nothing queued',
  insert: 'Pending insert: will be created on the platform',
  update: 'Pending update: queued changes to send',
  image_delete: 'Pending delete: an image will be removed',
  unbound: 'Not on this connection',
};

const PRODUCT_FIELDS = ['sku', 'title', 'description', 'brand', 'vendor', 'category', 'tags',
  'barcode', 'weight', 'status', 'attributes', 'images', 'variants', 'price',
  'compare_at_price', 'stock'];
const ORDER_FIELDS = ['order_status', 'payment_status', 'shipments', 'order_note'];
const POLICIES = [
  ['both', 'Both ways'],
  ['absorb_only', 'Absorb only'],
  ['send_only', 'Send only'],
  ['readonly', 'Read-only'],
];
const ORDER_STATUSES = ['pending', 'processing', 'on_hold', 'completed', 'cancelled', 'refunded', 'failed'];
const PAYMENT_STATUSES = ['pending', 'paid', 'partially_paid', 'refunded', 'partially_refunded', 'voided'];
const SETTING_FLAGS = ['absorb_new_products', 'absorb_new_orders', 'clone_new_products',
  'clone_new_orders', 'master', 'auto_send'];

const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// ---------------------------------------------------------------------------------- state

const app = {
  token: null,
  /** id → ConnectionView, kept current from events. */
  connections: new Map(),
  /** Connection ids in the server's order. */
  order: [],
  /** id → JobView of the jobs shown on the cards. */
  jobs: new Map(),
  /** Job id → when the console first saw it finished. */
  finishedAt: new Map(),
  /** id → the card's elements. */
  cards: new Map(),
  /** The event stream's AbortController. */
  events: null,
  refreshTimer: 0,
  view: 'connections',
};

const browse = {
  mode: 'products',
  lists: {
    products: { chips: [], items: [], next: null },
    orders: { chips: [], items: [], next: null },
  },
  /** Aborts the listing request in flight when a newer one starts. */
  listAbort: null,
  suggestAbort: null,
  suggestTimer: 0,
  suggestions: [],
  active: -1,
};

/** The connection the settings dialog edits, as it was when opened. */
let settingsOf = null;
/** The stats dialog's connection, and a generation that stops stale polls. */
const stats = { id: null, generation: 0 };

// ------------------------------------------------------------------------------ utilities

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/**
 * Creates an element. `attrs`: `class`, `text`, `dataset`, `on<event>` handlers, and plain
 * attributes (true gives an empty attribute; false, null and undefined are skipped).
 * Children are nodes or strings (added as text).
 */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Sets text only when it changed, so live updates do not churn the DOM or screen readers. */
function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

function formatTime(ms) {
  return ms === null || ms === undefined ? 'never' : TIME_FORMAT.format(new Date(ms));
}

/** A <time> element for an epoch-milliseconds value ("never" when null). */
function timeNode(ms, className) {
  const node = el('time', { class: className });
  fillTime(node, ms);
  return node;
}

function fillTime(node, ms) {
  setText(node, formatTime(ms));
  if (ms === null || ms === undefined) node.removeAttribute('datetime');
  else node.setAttribute('datetime', new Date(ms).toISOString());
}

function formatDuration(totalSecs) {
  const secs = Math.max(0, Math.ceil(Number(totalSecs) || 0));
  const hours = Math.floor(secs / 3600);
  const minutes = Math.floor((secs % 3600) / 60);
  const seconds = secs % 60;
  const parts = [];
  if (hours) parts.push(`${hours} h`);
  if (minutes) parts.push(`${minutes} min`);
  if (seconds || !parts.length) parts.push(`${seconds} s`);
  return parts.join(' ');
}

function humanize(key) {
  return String(key).replace(/_/g, ' ');
}

/** JSON values as readable text: strings as they are, the rest as JSON. */
function valueText(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function stateClass(state) {
  return `state-${STATE_TEXT[state] ? state : 'unbound'}`;
}

/** A small coloured tag for a record state, with its name as text (colour is not the only cue). */
function stateTag(state, extraTitle) {
  const title = extraTitle ? `${STATE_TITLE[state] || state}. ${extraTitle}` : (STATE_TITLE[state] || state);
  return el('span', { class: `state-tag ${stateClass(state)}`, title, text: STATE_TEXT[state] || state });
}

/** The visible text of an HTML description, without rendering it (DOMParser runs no scripts). */
function htmlText(html) {
  if (!html) return '';
  const body = new DOMParser().parseFromString(html, 'text/html').body;
  for (const hidden of body.querySelectorAll('script, style, template')) hidden.remove();
  return body.textContent.trim();
}

function truncate(text, length = 140) {
  const value = String(text ?? '');
  return value.length > length ? `${value.slice(0, length - 1)}…` : value;
}

function connectionName(id) {
  return app.connections.get(id)?.name ?? `connection ${id}`;
}

// -------------------------------------------------------------------------- toast region

function toast(message, kind = 'info') {
  const item = el('div', { class: `toast toast-${kind}` },
    el('span', { text: message }),
    el('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', text: '×', onclick: () => item.remove() }));
  $('#toast').append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 10_000 : 5_000);
}

// ----------------------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `The server answered ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.code = error.code ?? '';
    this.details = error.details ?? null;
  }
}

/** One API call. Throws ApiError (status 0 when the server is unreachable). */
async function api(path, { method = 'GET', body, token = app.token, signal } = {}) {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(API + path, {
      method, headers, signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, { error: { message: 'The server could not be reached.' } });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    // A token that stops working mid-session (revoked, expired) ends the session.
    if (response.status === 401 && app.token && token === app.token) endSession(error.message);
    throw error;
  }
  return data;
}

/** Runs `work`, showing any failure as a toast; 401s already ended the session. */
async function attempt(work) {
  try {
    return await work();
  } catch (error) {
    if (error.name !== 'AbortError' && error.status !== 401) toast(error.message, 'error');
    return undefined;
  }
}

/** Disables a button while `work` runs. */
async function withBusy(button, work) {
  button.dataset.busy = 'true';
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    delete button.dataset.busy;
    button.removeAttribute('aria-busy');
    button.disabled = false;
  }
}

// --------------------------------------------------------------------------------- login

async function onLoginSubmit(event) {
  event.preventDefault();
  const input = $('#login-token');
  const token = input.value.trim();
  if (!token) {
    showLoginError('Enter an API token.');
    input.focus();
    return;
  }
  await withBusy($('#login-submit'), () => verifyToken(token));
}

/** Checks a token with GET /account and starts the session when it is good. */
async function verifyToken(token) {
  showLoginError('');
  try {
    const account = await api('/account', { token });
    startSession(token, account);
  } catch (error) {
    if (error.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
    showLoginError(error.message);
  }
}

function showLoginError(message) {
  setText($('#login-error'), message);
}

function showLogin() {
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-token').focus();
}

function startSession(token, account) {
  app.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('#login-token').value = '';
  showLoginError('');
  setText($('#account-name'), account.name);
  $('#login').hidden = true;
  $('#app').hidden = false;
  showView('connections');
  attempt(loadConnections);
  startEvents();
}

function logout() {
  endSession('');
}

/** Forgets the token and every piece of account data, and shows the login screen. */
function endSession(message) {
  if (!app.token) return;
  app.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  app.events?.abort();
  app.events = null;
  clearTimeout(app.refreshTimer);
  stats.generation += 1;
  for (const dialog of $$('dialog[open]')) dialog.close();
  closeIssuesPopover(false);
  app.connections.clear();
  app.jobs.clear();
  app.finishedAt.clear();
  app.cards.clear();
  app.order = [];
  $('#connections').replaceChildren();
  for (const list of Object.values(browse.lists)) Object.assign(list, { chips: [], items: [], next: null });
  $('#set-input').value = '';
  closeSuggestions();
  setText($('#account-name'), '');
  setText($('#issues-count'), '0');
  showLogin();
  showLoginError(message);
}

// ---------------------------------------------------------------------------- navigation

function showView(view) {
  app.view = view;
  for (const button of $$('.nav-link')) {
    if (button.dataset.view === view) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  $('#view-connections').hidden = view !== 'connections';
  $('#view-browse').hidden = view === 'connections';
  if (view !== 'connections') openBrowser(view);
}

// --------------------------------------------------------------------------- connections

async function loadConnections() {
  applyConnectionList(await api('/connections'));
}

/** Refreshes the connection list soon, once for a burst of reasons. */
function scheduleRefresh() {
  clearTimeout(app.refreshTimer);
  app.refreshTimer = setTimeout(() => attempt(loadConnections), 250);
}

function applyConnectionList(list) {
  const ids = new Set(list.map((c) => c.id));
  for (const [id, card] of app.cards) {
    if (!ids.has(id)) {
      card.root.remove();
      app.cards.delete(id);
      app.connections.delete(id);
    }
  }
  app.order = list.map((c) => c.id);
  for (const view of list) applyConnectionView(view);
  placeCards();
  $('#connections-empty').hidden = list.length > 0;
}

/** Takes a fresh ConnectionView (list, pause, resume, patch, reset answers). */
function applyConnectionView(view) {
  app.connections.set(view.id, view);
  if (!app.order.includes(view.id)) app.order.push(view.id);
  for (const job of view.jobs) app.jobs.set(job.id, job);
  settleVanishedJobs(view);
  renderConnection(view.id);
  updateIssueCount();
}

/** Jobs the console thinks active that the server no longer lists finished unseen: ask for them. */
function settleVanishedJobs(view) {
  const listed = new Set(view.jobs.map((j) => j.id));
  for (const job of app.jobs.values()) {
    if (job.connection === view.id && !FINISHED.has(job.state) && !listed.has(job.id)) {
      attempt(async () => applyJob(await api(`/jobs/${job.id}`)));
    }
  }
}

/** Keeps the cards in the server's order, moving only those out of place (moving drops focus). */
function placeCards() {
  const grid = $('#connections');
  app.order.forEach((id, index) => {
    const card = app.cards.get(id);
    if (card && grid.children[index] !== card.root) grid.insertBefore(card.root, grid.children[index] ?? null);
  });
}

function activeJobs(connectionId) {
  return [...app.jobs.values()]
    .filter((j) => j.connection === connectionId && !FINISHED.has(j.state))
    .sort((a, b) => a.id - b.id);
}

/** The state the server would give: paused, running, queued or idle. */
function connectionState(view) {
  if (view.paused) return 'paused';
  const active = activeJobs(view.id);
  if (active.some((j) => j.state === 'running')) return 'running';
  return active.length ? 'queued' : 'idle';
}

function buildCard(view) {
  const titleId = `conn-title-${view.id}`;
  const refs = {};
  const button = (name, label, onclick) => {
    refs[name] = el('button', { class: `btn btn-${name}`, type: 'button', onclick }, label);
    return refs[name];
  };
  refs.title = el('h2', { id: titleId, class: 'card-title' });
  refs.platform = el('span', { class: 'platform' });
  refs.state = el('span', { class: 'state' });
  refs.lastFetch = el('time', { class: 'last-fetch' });
  refs.lastSend = el('time', { class: 'last-send' });
  refs.issues = el('span', { class: 'open-issues' });
  refs.badge = el('span', { class: 'badge' });
  refs.jobs = el('ul', { class: 'jobs', 'aria-label': 'Jobs' });
  refs.controls = el('div', { class: 'controls', role: 'group' },
    button('fetch', 'Fetch updates', () => queueJob(view.id, 'fetch', { scope: 'incremental' }, refs.fetch)),
    button('send', ['Send updates ', refs.badge], () => queueJob(view.id, 'send', {}, refs.send)),
    button('sync', 'Sync', () => queueJob(view.id, 'sync', {}, refs.sync)),
    button('play-pause', 'Pause', () => togglePause(view.id, refs['play-pause'])),
    button('settings', 'Settings', () => openSettings(view.id, refs.settings)),
    button('stats', 'Stats', () => openStats(view.id, refs.stats)));
  refs.root = el('article', { class: 'connection card', 'aria-labelledby': titleId, dataset: { connectionId: view.id } },
    el('header', { class: 'card-head' }, refs.title, refs.platform, refs.state),
    el('dl', { class: 'facts' },
      el('div', {}, el('dt', { text: 'Last fetch' }), el('dd', {}, refs.lastFetch)),
      el('div', {}, el('dt', { text: 'Last send' }), el('dd', {}, refs.lastSend)),
      el('div', {}, el('dt', { text: 'Open issues' }), el('dd', {}, refs.issues))),
    refs.controls,
    refs.jobs);
  return refs;
}

/** Brings a connection's card in line with what the console knows of it. */
function renderConnection(id) {
  const view = app.connections.get(id);
  if (!view) return;
  let card = app.cards.get(id);
  if (!card) {
    card = buildCard(view);
    app.cards.set(id, card);
    $('#connections').append(card.root);
  }
  const state = connectionState(view);
  view.state = state;
  card.root.dataset.name = view.name;
  setText(card.title, view.name);
  setText(card.platform, view.platform);
  setText(card.state, state);
  card.state.className = `state conn-${state}`;
  card.controls.setAttribute('aria-label', `Actions for ${view.name}`);
  fillTime(card.lastFetch, view.last_fetch_at);
  fillTime(card.lastSend, view.last_send_at);
  setText(card.issues, view.open_issues);
  card.issues.classList.toggle('has-issues', view.open_issues > 0);

  const queued = view.queued_changes ?? { inserts: 0, updates: 0, image_deletes: 0, total: 0 };
  setText(card.badge, queued.total);
  card.badge.classList.toggle('badge-zero', queued.total === 0);
  card.send.disabled = queued.total === 0 || card.send.dataset.busy === 'true';
  card.send.title = `${queued.inserts} inserts, ${queued.updates} updates, ${queued.image_deletes} image deletes queued`;

  const play = card['play-pause'];
  play.dataset.paused = String(view.paused);
  setText(play, view.paused ? 'Play' : 'Pause');
  renderJobs(id, card);
}

/** The jobs on a card: active ones, finished ones for a minute, failed ones until dismissed. */
function visibleJobs(connectionId) {
  const now = Date.now();
  return [...app.jobs.values()]
    .filter((j) => j.connection === connectionId)
    .filter((j) => !FINISHED.has(j.state) || j.state === 'failed'
      || now - (app.finishedAt.get(j.id) ?? now) < RECENT_JOB_MS)
    .sort((a, b) => a.id - b.id);
}

function renderJobs(connectionId, card) {
  const jobs = visibleJobs(connectionId);
  const keep = new Set(jobs.map((j) => String(j.id)));
  for (const item of $$('.job', card.jobs)) if (!keep.has(item.dataset.jobId)) item.remove();
  for (const job of jobs) {
    let item = $(`.job[data-job-id="${job.id}"]`, card.jobs);
    if (!item) {
      item = buildJobItem(job);
      card.jobs.append(item);
    }
    updateJobItem(item, job);
  }
}

function buildJobItem(job) {
  return el('li', { class: 'job', dataset: { jobId: job.id } },
    el('div', { class: 'job-line' },
      el('span', { class: 'job-kind' }),
      el('span', { class: 'job-state' }),
      el('span', { class: 'job-numbers' })),
    el('progress', { 'aria-label': `Job ${job.id} progress` }),
    el('p', { class: 'job-error', hidden: true }),
    el('button', { class: 'btn btn-small job-dismiss', type: 'button', hidden: true, text: 'Dismiss', onclick: () => dismissJob(job.id) }));
}

function progressOf(job) {
  const progress = job.progress ?? {};
  const scanned = Number(progress.scanned) || 0;
  const sent = Number(progress.sent) || 0;
  const total = typeof progress.total === 'number' ? progress.total : null;
  return { scanned, sent, total, done: job.kind === 'send' ? sent : scanned };
}

function updateJobItem(item, job) {
  const { scanned, sent, total, done } = progressOf(job);
  item.dataset.kind = job.kind;
  item.dataset.state = job.state;
  item.className = `job job-${job.state}`;
  setText($('.job-kind', item), humanize(job.kind));
  setText($('.job-state', item), job.state);
  const numbers = [`scanned ${scanned}`, `sent ${sent}`];
  if (total !== null) numbers.push(`of ${total}`);
  setText($('.job-numbers', item), numbers.join(' · '));

  const bar = $('progress', item);
  if (job.state === 'succeeded') {
    // A finished run is complete whatever its counts said on the way.
    bar.max = total || 1;
    bar.value = bar.max;
  } else if (total) {
    bar.max = total;
    bar.value = Math.min(done, total);
  } else if (FINISHED.has(job.state)) {
    bar.max = 1;
    bar.value = 0;
  } else {
    bar.removeAttribute('value'); // indeterminate until the platform says how many
  }
  bar.setAttribute('aria-valuetext', `${job.kind} ${job.state}, ${numbers.join(', ')}`);

  const error = $('.job-error', item);
  error.hidden = !job.error;
  setText(error, job.error ? `Error: ${job.error}` : '');
  $('.job-dismiss', item).hidden = job.state !== 'failed';
}

function dismissJob(id) {
  const job = app.jobs.get(id);
  app.jobs.delete(id);
  app.finishedAt.delete(id);
  if (job) renderConnection(job.connection);
}

/** Takes a JobView (from an event, a 202 or a poll). */
function applyJob(job) {
  const before = app.jobs.get(job.id);
  app.jobs.set(job.id, job);
  if (FINISHED.has(job.state) && !app.finishedAt.has(job.id)) {
    app.finishedAt.set(job.id, Date.now());
    setTimeout(() => forgetJob(job.id), RECENT_JOB_MS + 100);
    // Finishing changes last fetch/send, queued changes and issues: read them again.
    if (!before || !FINISHED.has(before.state)) scheduleRefresh();
  }
  renderConnection(job.connection);
}

/** Drops a finished job from its card after its minute (failed ones wait for Dismiss). */
function forgetJob(id) {
  const job = app.jobs.get(id);
  if (!job || job.state === 'failed') return;
  app.jobs.delete(id);
  app.finishedAt.delete(id);
  renderConnection(job.connection);
}

async function queueJob(connectionId, kind, body, button) {
  await withBusy(button, () => attempt(async () => {
    const accepted = await api(`/connections/${connectionId}/${kind}`, { method: 'POST', body });
    applyJob(accepted.job);
    const name = connectionName(connectionId);
    toast(accepted.created
      ? `${humanize(kind)} queued for ${name} (job ${accepted.job.id}).`
      : `A ${humanize(kind)} of ${name} is already waiting (job ${accepted.job.id}).`);
  }));
  renderConnection(connectionId); // restores the send button's disabled state
}

async function togglePause(connectionId, button) {
  const view = app.connections.get(connectionId);
  if (!view) return;
  const action = view.paused ? 'resume' : 'pause';
  await withBusy(button, () => attempt(async () => {
    applyConnectionView(await api(`/connections/${connectionId}/${action}`, { method: 'POST' }));
    toast(`${view.name} ${action === 'pause' ? 'paused' : 'resumed'}.`);
  }));
  renderConnection(connectionId);
}

// -------------------------------------------------------------------------- live events

function startEvents() {
  app.events?.abort();
  app.events = new AbortController();
  streamEvents(app.events.signal);
}

function setLive(live) {
  const status = $('#live-status');
  setText(status, live ? 'live' : 'reconnecting…');
  status.classList.toggle('is-live', live);
}

/**
 * Reads GET /events with fetch (EventSource cannot send the Authorization header) and
 * reconnects with a growing delay when the stream ends or fails.
 */
async function streamEvents(signal) {
  let delay = 1000;
  let connectedBefore = false;
  while (!signal.aborted) {
    try {
      const response = await fetch(`${API}/events`, {
        headers: { Authorization: `Bearer ${app.token}`, Accept: 'text/event-stream' },
        cache: 'no-store',
        signal,
      });
      if (response.status === 401) {
        endSession('Your token is no longer valid; sign in again.');
        return;
      }
      if (!response.ok || !response.body) throw new Error(`events answered ${response.status}`);
      setLive(true);
      // Whatever happened while the stream was down is read from the list again.
      if (connectedBefore) scheduleRefresh();
      connectedBefore = true;
      delay = 1000;
      await readFrames(response.body, onServerEvent);
    } catch {
      // Reconnect below; an abort ends the loop.
    }
    if (signal.aborted) return;
    setLive(false);
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 30_000);
  }
}

/** Parses server-sent-event frames: `event:` and `data:` lines, a blank line ends a frame. */
async function readFrames(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let name = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line === '') {
        if (data.length) onEvent(name || 'message', data.join('\n'));
        name = '';
        data = [];
      } else if (!line.startsWith(':')) { // a ':' line is a keep-alive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'event') name = text;
        else if (field === 'data') data.push(text);
      }
    }
  }
}

function onServerEvent(name, text) {
  let data;
  try { data = JSON.parse(text); } catch { return; }
  if (name === 'job') applyJob(data);
  else if (name === 'connections') applyConnectionSummaries(data);
  else if (name === 'issue') applyNewIssue(data);
}

function applyConnectionSummaries(list) {
  let unknown = list.length !== app.connections.size;
  for (const summary of list) {
    const view = app.connections.get(summary.id);
    if (!view) {
      unknown = true;
      continue;
    }
    Object.assign(view, {
      paused: summary.paused,
      queued_changes: summary.queued_changes,
      open_issues: summary.open_issues,
      last_fetch_at: summary.last_fetch_at,
      last_send_at: summary.last_send_at,
    });
    renderConnection(summary.id);
  }
  if (unknown) scheduleRefresh(); // a connection was added or removed elsewhere
  updateIssueCount();
}

function applyNewIssue(issue) {
  const view = app.connections.get(issue.connection);
  if (view) {
    view.open_issues += 1;
    renderConnection(view.id);
  }
  updateIssueCount();
  const list = $('#issues-list');
  if (!$('#issues-popover').hidden) {
    list.prepend(issueItem(issue));
    $('#issues-empty').hidden = true;
  }
}

// -------------------------------------------------------------------------------- issues

function updateIssueCount() {
  let total = 0;
  for (const view of app.connections.values()) total += view.open_issues || 0;
  const count = $('#issues-count');
  setText(count, total);
  count.classList.toggle('count-zero', total === 0);
}

/** One issue as a list item; a record's issue opens the record. */
function issueItem(issue, { resolvable = false } = {}) {
  const item = el('li', { class: `issue sev-${issue.severity}`, dataset: { issueId: issue.id } },
    el('div', { class: 'issue-head' },
      el('span', { class: `severity sev-${issue.severity}`, text: issue.severity }),
      el('code', { class: 'issue-code', text: issue.code }),
      el('span', { class: 'issue-conn', text: connectionName(issue.connection) })),
    el('p', { class: 'issue-message', text: issue.message }),
    el('p', { class: 'issue-meta muted' },
      issue.field ? `field ${issue.field} · ` : '',
      issue.count > 1 ? `seen ${issue.count} times · last ` : 'seen ',
      timeNode(issue.last_seen)));
  const actions = el('div', { class: 'issue-actions' });
  if (issue.record_kind && issue.record_id !== null && issue.record_id !== undefined) {
    const kind = issue.record_kind === 'order' ? 'orders' : 'products';
    actions.append(el('button', {
      class: 'btn btn-small', type: 'button', text: `Open ${issue.record_kind}`,
      onclick: (event) => openRecord(kind, issue.record_id, event.currentTarget),
    }));
  }
  if (resolvable) {
    actions.append(el('button', {
      class: 'btn btn-small', type: 'button', text: 'Mark resolved',
      onclick: (event) => resolveIssue(issue, item, event.currentTarget),
    }));
  }
  if (actions.childElementCount) item.append(actions);
  return item;
}

async function resolveIssue(issue, item, button) {
  await withBusy(button, () => attempt(async () => {
    await api(`/issues/${issue.id}/resolve`, { method: 'POST' });
    item.remove();
    toast(`Issue ${issue.code} marked resolved.`);
    scheduleRefresh();
  }));
}

async function toggleIssuesPopover() {
  if (!$('#issues-popover').hidden) {
    closeIssuesPopover(true);
    return;
  }
  const popover = $('#issues-popover');
  popover.hidden = false;
  $('#issues-button').setAttribute('aria-expanded', 'true');
  $('#troubleshoot-button').focus();
  await attempt(async () => {
    const page = await api('/issues?open=true&limit=20');
    $('#issues-list').replaceChildren(...page.items.map((issue) => issueItem(issue)));
    $('#issues-empty').hidden = page.items.length > 0;
  });
}

function closeIssuesPopover(restoreFocus) {
  const popover = $('#issues-popover');
  if (popover.hidden) return;
  popover.hidden = true;
  $('#issues-button').setAttribute('aria-expanded', 'false');
  if (restoreFocus) $('#issues-button').focus();
}

async function openTroubleshoot() {
  const opener = $('#issues-button');
  closeIssuesPopover(false);
  const container = $('#troubleshoot');
  container.replaceChildren(el('p', { class: 'muted', text: 'Grouping open issues…' }));
  openModal($('#troubleshoot-modal'), opener);
  await attempt(async () => {
    const groups = await api('/issues/troubleshoot');
    container.replaceChildren(...(groups.length
      ? groups.map(groupCard)
      : [el('p', { class: 'muted', text: 'No open issues to group.' })]));
  });
}

function groupCard(group) {
  const onOrders = group.records.length > 0 && group.records.every((r) => r.kind === 'order');
  const target = onOrders ? 'orders' : 'products';
  return el('article', { class: `issue-group sev-${group.severity}` },
    el('header', { class: 'group-head' },
      el('h3', {}, el('code', { class: 'group-code', text: group.code })),
      el('span', { class: 'platform', text: group.platform }),
      el('span', { class: `severity sev-${group.severity}`, text: group.severity })),
    el('p', { class: 'group-pattern' }, el('span', { class: 'muted', text: 'Pattern: ' }), group.pattern),
    el('p', { class: 'group-numbers' },
      el('span', { class: 'group-count', text: group.issues }), group.issues === 1 ? ' issue, ' : ' issues, ',
      el('span', { class: 'group-occurrences', text: group.occurrences }), group.occurrences === 1 ? ' occurrence' : ' occurrences',
      ' · first ', timeNode(group.first_seen), ' · last ', timeNode(group.last_seen)),
    el('p', { class: 'group-example' }, el('span', { class: 'muted', text: 'Example: ' }), group.example),
    el('ul', { class: 'group-connections', 'aria-label': 'Connections affected' },
      group.connections.map((c) => el('li', {},
        el('span', { text: c.name }), ' — ',
        el('button', {
          class: 'link-button', type: 'button', dataset: { connectionId: c.id },
          text: `show affected ${target}`,
          onclick: () => showAffected(target, c.sets),
        })))),
    el('p', { class: 'group-advice' }, el('strong', { text: 'Advice: ' }), group.advice));
}

/** Opens the browser with a troubleshoot group's sets as the chips. */
function showAffected(target, sets) {
  $('#troubleshoot-modal').close();
  browse.lists[target].chips = [...sets];
  showView(target);
}

// ------------------------------------------------------------------------------ dialogs

/** Who opened each dialog, to give focus back when it closes. */
const openers = new WeakMap();

function openModal(dialog, opener) {
  if (opener) openers.set(dialog, opener);
  if (!dialog.open) dialog.showModal();
}

function setupDialogs() {
  for (const dialog of $$('dialog')) {
    dialog.addEventListener('close', () => {
      const opener = openers.get(dialog);
      openers.delete(dialog);
      if (opener?.isConnected) opener.focus();
    });
    // A click on the backdrop (the dialog box itself, outside its body) closes it.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    for (const button of $$('.modal-close, .modal-close-secondary', dialog)) {
      button.addEventListener('click', () => dialog.close());
    }
  }
  $('#stats-modal').addEventListener('close', () => { stats.generation += 1; });
  $('#settings-modal').addEventListener('close', () => {
    $('#s-credentials').value = ''; // never keep secrets around
    settingsOf = null;
  });
}

/** Tabs with arrow-key movement, as the ARIA tabs pattern has them. */
function setupTabs(container) {
  const tabs = $$('[role="tab"]', container);
  tabs.forEach((tab, index) => {
    const panel = $(`[role="tabpanel"][data-panel="${tab.dataset.tab}"]`, container);
    tab.id = `${container.id}-tab-${tab.dataset.tab}`;
    panel.id = `${container.id}-panel-${tab.dataset.tab}`;
    tab.setAttribute('aria-controls', panel.id);
    panel.setAttribute('aria-labelledby', tab.id);
    tab.addEventListener('click', () => selectTab(container, tab.dataset.tab));
    tab.addEventListener('keydown', (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
      selectTab(container, next.dataset.tab);
      next.focus();
    });
  });
  selectTab(container, tabs[0].dataset.tab);
}

function selectTab(container, name) {
  for (const tab of $$('[role="tab"]', container)) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  for (const panel of $$('[role="tabpanel"]', container)) panel.hidden = panel.dataset.panel !== name;
}

// ------------------------------------------------------------------------ settings dialog

function buildSettingsForm() {
  const policyRow = (field) => el('tr', {},
    el('th', { scope: 'row' }, el('label', { for: `s-policy-${field}`, text: humanize(field) })),
    el('td', {}, el('select', { id: `s-policy-${field}`, class: 'policy-select', dataset: { field } },
      POLICIES.map(([value, label]) => el('option', { value, text: label })))));
  $('#s-product-policies').replaceChildren(...PRODUCT_FIELDS.map(policyRow));
  $('#s-order-policies').replaceChildren(...ORDER_FIELDS.map(policyRow));
  const options = (values) => [el('option', { value: '', text: '— platform default —' }),
    ...values.map((v) => el('option', { value: v, text: humanize(v) }))];
  $('#s-od-status').replaceChildren(...options(ORDER_STATUSES));
  $('#s-od-payment_status').replaceChildren(...options(PAYMENT_STATUSES));
  $('#s-rounding-rule').addEventListener('change', showRoundingInputs);
  $('#s-category-add').addEventListener('click', () => {
    const row = categoryRow('', '');
    $('#s-category-map').append(row);
    $('input', row).focus();
  });
  for (const radio of $$('input[name="s-scan-mode"]')) radio.addEventListener('change', showScanInputs);
  $('#s-scan-time').addEventListener('input', showLocalScanTime);
  $('#settings-form').addEventListener('submit', saveSettings);
  $('#reset-clocks-button').addEventListener('click', resetClocks);
  $('#resync-button').addEventListener('click', resync);
}

function categoryRow(canonical, platform) {
  const row = el('tr', { class: 'category-row' });
  const from = el('input', { type: 'text', class: 'map-from', value: canonical, 'aria-label': 'Canonical category' });
  const to = el('input', { type: 'text', class: 'map-to', value: platform, 'aria-label': 'Platform category' });
  const remove = el('button', {
    class: 'btn btn-small', type: 'button', text: 'Remove',
    'aria-label': canonical ? `Remove mapping of ${canonical}` : 'Remove mapping',
    onclick: () => { row.remove(); $('#s-category-add').focus(); },
  });
  row.append(el('td', {}, from), el('td', {}, to), el('td', {}, remove));
  return row;
}

function showRoundingInputs() {
  const rule = $('#s-rounding-rule').value;
  $('#s-rounding-step-row').hidden = !['nearest', 'up', 'down'].includes(rule);
  $('#s-rounding-ending-row').hidden = rule !== 'charm';
}

function scanMode() {
  return $('input[name="s-scan-mode"]:checked')?.value ?? 'none';
}

function showScanInputs() {
  const mode = scanMode();
  $('#s-scan-time').disabled = mode !== 'daily';
  $('#s-scan-cron').disabled = mode !== 'cron';
  showLocalScanTime();
}

/** The UTC time of the daily scan in the merchant's own time, as a hint. */
function showLocalScanTime() {
  const [hours, minutes] = $('#s-scan-time').value.split(':').map(Number);
  const hint = $('#s-scan-local');
  if (scanMode() !== 'daily' || Number.isNaN(hours) || Number.isNaN(minutes)) {
    setText(hint, '');
    return;
  }
  const at = new Date();
  at.setUTCHours(hours, minutes, 0, 0);
  setText(hint, `(${at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })} your time)`);
}

/**
 * A daily cron expression's time, or null. The scheduler (jobs/src/schedule.rs) reads five
 * fields (minute hour day month weekday, UTC) or six with seconds first.
 */
function parseDailyCron(text) {
  const parts = String(text ?? '').trim().split(/\s+/);
  if (parts.length === 6) {
    if (parts[0] !== '0') return null;
    parts.shift();
  }
  if (parts.length !== 5 || parts.slice(2).join(' ') !== '* * *') return null;
  if (!/^\d{1,2}$/.test(parts[0]) || !/^\d{1,2}$/.test(parts[1])) return null;
  const minute = Number(parts[0]);
  const hour = Number(parts[1]);
  return minute < 60 && hour < 24 ? { hour, minute } : null;
}

const pad2 = (n) => String(n).padStart(2, '0');

async function openSettings(id, opener) {
  await attempt(async () => {
    const view = await api(`/connections/${id}`);
    applyConnectionView(view);
    fillSettings(view);
    settingsOf = view;
    const dialog = $('#settings-modal');
    selectTab(dialog, 'general');
    openModal(dialog, opener);
    $('#s-name').focus();
  });
}

function fillSettings(view) {
  const s = view.settings ?? {};
  setText($('#settings-title'), `Settings — ${view.name}`);
  setText($('#settings-error'), '');
  setText($('#resync-message'), '');
  setText($('#reset-clocks-message'), '');
  $('#s-name').value = view.name;
  for (const flag of SETTING_FLAGS) $(`#s-${flag}`).checked = Boolean(s[flag]);
  $('#s-low_stock_threshold').value = s.low_stock_threshold ?? '';
  $('#s-mass_delete_share').value = s.mass_delete_share ?? '';

  const policies = s.field_policies ?? {};
  for (const select of $$('.policy-select')) select.value = policies[select.dataset.field] ?? 'both';

  const price = s.price ?? {};
  const rounding = price.rounding ?? { rule: 'minor_unit' };
  $('#s-margin_percent').value = price.margin_percent ?? '';
  $('#s-margin_fixed').value = price.margin_fixed ?? '';
  $('#s-rounding-rule').value = rounding.rule;
  $('#s-rounding-step').value = rounding.step ?? '';
  $('#s-rounding-ending').value = rounding.ending ?? '';
  showRoundingInputs();
  $('#s-currency').value = s.currency ?? '';
  $('#s-conversion_rate').value = s.conversion_rate ?? '';

  $('#s-default_category').value = s.default_category ?? '';
  $('#s-category-map').replaceChildren(
    ...Object.entries(s.category_map ?? {}).map(([from, to]) => categoryRow(from, to)));
  $('#s-color_attribute').value = s.color_attribute ?? '';
  $('#s-size_attribute').value = s.size_attribute ?? '';

  const defaults = s.order_defaults ?? {};
  $('#s-od-status').value = defaults.status ?? '';
  $('#s-od-payment_status').value = defaults.payment_status ?? '';
  $('#s-od-number_prefix').value = defaults.number_prefix ?? '';
  $('#s-od-customer_email').value = defaults.customer_email ?? '';
  $('#s-od-note').value = defaults.note ?? '';

  $('#s-credentials').value = '';
  setText($('#s-has-credentials'), view.has_credentials
    ? 'This connection has stored credentials.'
    : 'This connection has no credentials stored.');
  $('#s-platform_settings').value = JSON.stringify(view.platform_settings ?? {}, null, 2);

  $('#s-fetch-minutes').value = s.fetch_interval_secs ? String(s.fetch_interval_secs / 60) : '';
  const daily = s.daily_full_scan ? parseDailyCron(s.daily_full_scan) : null;
  const mode = !s.daily_full_scan ? 'none' : daily ? 'daily' : 'cron';
  $(`input[name="s-scan-mode"][value="${mode}"]`).checked = true;
  $('#s-scan-time').value = daily ? `${pad2(daily.hour)}:${pad2(daily.minute)}` : '03:00';
  $('#s-scan-cron').value = daily ? '' : (s.daily_full_scan ?? '');
  showScanInputs();
  const schedule = view.schedule;
  setText($('#s-schedule-next'), schedule
    ? `Next scheduled fetch: ${formatTime(schedule.next_fetch_at)}. Next full scan: ${formatTime(schedule.next_full_scan_at)}.`
    : 'No schedule yet.');
}

// Reading the form back. Each reader keeps the stored value when the form shows the same
// thing, so Save sends only what the user changed.

/** Sets `object[key]`, or removes it for an empty value (the setting's default applies). */
function setOptional(object, key, value) {
  if (value === '' || value === null || value === undefined) delete object[key];
  else object[key] = value;
}

function textValue(id) {
  return $(id).value.trim();
}

/** A decimal as the API writes them (text); the stored text when numerically equal. */
function decimalValue(id, label, stored) {
  const input = $(id);
  if (input.validity.badInput) throw new Error(`${label} must be a number.`);
  const text = input.value.trim();
  if (text === '') return '';
  if (stored !== undefined && stored !== null && Number(text) === Number(stored)) return stored;
  return text;
}

function desiredSettings(stored) {
  const s = structuredClone(stored);
  for (const flag of SETTING_FLAGS) s[flag] = $(`#s-${flag}`).checked;
  const threshold = textValue('#s-low_stock_threshold');
  if ($('#s-low_stock_threshold').validity.badInput) throw new Error('The low-stock threshold must be a number.');
  setOptional(s, 'low_stock_threshold', threshold === '' ? '' : Number(threshold));
  setOptional(s, 'mass_delete_share', decimalValue('#s-mass_delete_share', 'The mass-delete share', stored.mass_delete_share));
  s.field_policies = desiredPolicies(stored.field_policies ?? {});
  s.price = desiredPrice(stored.price ?? {});
  setOptional(s, 'currency', textValue('#s-currency').toUpperCase());
  setOptional(s, 'conversion_rate', decimalValue('#s-conversion_rate', 'The conversion rate', stored.conversion_rate));
  setOptional(s, 'default_category', textValue('#s-default_category'));
  s.category_map = categoryMap();
  setOptional(s, 'color_attribute', textValue('#s-color_attribute'));
  setOptional(s, 'size_attribute', textValue('#s-size_attribute'));
  s.order_defaults = desiredOrderDefaults(stored.order_defaults ?? {});
  setOptional(s, 'fetch_interval_secs', fetchIntervalSecs(stored.fetch_interval_secs));
  setOptional(s, 'daily_full_scan', dailyFullScan(stored.daily_full_scan));
  return s;
}

function desiredPolicies(stored) {
  const policies = { ...stored };
  for (const select of $$('.policy-select')) {
    const field = select.dataset.field;
    if (select.value !== (stored[field] ?? 'both')) policies[field] = select.value;
  }
  return policies;
}

function desiredPrice(stored) {
  const price = { ...stored };
  setOptional(price, 'margin_percent', decimalValue('#s-margin_percent', 'The margin', stored.margin_percent));
  setOptional(price, 'margin_fixed', decimalValue('#s-margin_fixed', 'The fixed margin', stored.margin_fixed));
  price.rounding = desiredRounding(stored.rounding ?? { rule: 'minor_unit' });
  return price;
}

/** The rounding rule as the model tags it: {rule, step} or {rule: "charm", ending}. */
function desiredRounding(stored) {
  const rule = $('#s-rounding-rule').value;
  const same = rule === stored.rule;
  if (rule === 'minor_unit') return { rule };
  if (rule === 'charm') {
    const ending = decimalValue('#s-rounding-ending', 'The charm ending', same ? stored.ending : undefined);
    if (ending === '') throw new Error('Charm rounding needs an ending (e.g. 0.01).');
    return { rule, ending };
  }
  const step = decimalValue('#s-rounding-step', 'The rounding step', same ? stored.step : undefined);
  if (step === '') throw new Error('This rounding needs a step (e.g. 0.05 or 1).');
  return { rule, step };
}

function categoryMap() {
  const map = {};
  for (const row of $$('#s-category-map .category-row')) {
    const from = $('.map-from', row).value.trim();
    const to = $('.map-to', row).value.trim();
    if (from) map[from] = to;
  }
  return map;
}

function desiredOrderDefaults(stored) {
  const defaults = { ...stored };
  for (const key of ['status', 'payment_status', 'number_prefix', 'customer_email', 'note']) {
    setOptional(defaults, key, textValue(`#s-od-${key}`));
  }
  return defaults;
}

function fetchIntervalSecs(stored) {
  const input = $('#s-fetch-minutes');
  if (input.validity.badInput) throw new Error('The fetch interval must be a number of minutes.');
  const text = input.value.trim();
  if (text === '') return '';
  const secs = Math.round(Number(text) * 60);
  return secs === stored ? stored : secs;
}

function dailyFullScan(stored) {
  const mode = scanMode();
  if (mode === 'none') return '';
  if (mode === 'cron') return textValue('#s-scan-cron');
  const [hour, minute] = $('#s-scan-time').value.split(':').map(Number);
  if (Number.isNaN(hour) || Number.isNaN(minute)) throw new Error('Choose a time of day for the daily full scan.');
  const current = parseDailyCron(stored);
  if (current && current.hour === hour && current.minute === minute) return stored;
  return `${minute} ${hour} * * *`; // five fields, as crontab: minute hour day month weekday (UTC)
}

function parseJsonObject(text, label) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${label} is not valid JSON: ${error.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${label} must be a JSON object.`);
  }
  return value;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The RFC 7396 merge patch that turns `before` into `after`, or undefined when they are
 * equal: removed keys become null, nested objects are patched key by key.
 */
function mergeDiff(before, after) {
  if (isObject(before) && isObject(after)) {
    const patch = {};
    for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
    for (const [key, value] of Object.entries(after)) {
      const change = key in before ? mergeDiff(before[key], value) : value;
      if (change !== undefined) patch[key] = change;
    }
    return Object.keys(patch).length ? patch : undefined;
  }
  return JSON.stringify(before) === JSON.stringify(after) ? undefined : after;
}

/** The PATCH body for what changed in the form, or null when nothing did. */
function settingsPatch(view) {
  const patch = {};
  const name = textValue('#s-name');
  if (name !== view.name) patch.name = name;
  const settings = mergeDiff(view.settings ?? {}, desiredSettings(view.settings ?? {}));
  if (settings) patch.settings = settings;
  const platform = mergeDiff(view.platform_settings ?? {},
    parseJsonObject($('#s-platform_settings').value, 'The platform settings'));
  if (platform) patch.platform_settings = platform;
  const credentials = $('#s-credentials').value.trim();
  if (credentials) patch.credentials = parseJsonObject(credentials, 'The credentials');
  return Object.keys(patch).length ? patch : null;
}

async function saveSettings(event) {
  event.preventDefault();
  const view = settingsOf;
  if (!view) return;
  const errorBox = $('#settings-error');
  setText(errorBox, '');
  let patch;
  try {
    patch = settingsPatch(view);
  } catch (error) {
    setText(errorBox, error.message);
    return;
  }
  if (!patch) {
    toast('Nothing changed.');
    return;
  }
  await withBusy($('#settings-save'), async () => {
    try {
      applyConnectionView(await api(`/connections/${view.id}`, { method: 'PATCH', body: patch }));
      toast(patch.credentials ? `${view.name} saved and re-authenticated.` : `Settings of ${view.name} saved.`);
      $('#settings-modal').close();
    } catch (error) {
      if (error.status !== 401) setText(errorBox, error.message); // e.g. the 422 naming the setting
    }
  });
}

async function resetClocks() {
  const view = settingsOf;
  if (!view) return;
  const message = $('#reset-clocks-message');
  const kinds = [];
  if ($('#s-reset-products').checked) kinds.push('products');
  if ($('#s-reset-orders').checked) kinds.push('orders');
  if (!kinds.length) {
    setText(message, 'Choose products, orders or both.');
    return;
  }
  await withBusy($('#reset-clocks-button'), async () => {
    try {
      applyConnectionView(await api(`/connections/${view.id}/reset-clocks`, { method: 'POST', body: { kinds } }));
      setText(message, `Clocks reset: the next fetch of ${kinds.join(' and ')} is a full scan.`);
    } catch (error) {
      if (error.status !== 401) setText(message, error.message);
    }
  });
}

async function resync() {
  const view = settingsOf;
  if (!view) return;
  const message = $('#resync-message');
  const windowName = $('#resync-window').value;
  setText(message, '');
  await withBusy($('#resync-button'), async () => {
    try {
      const accepted = await api(`/connections/${view.id}/resync`, { method: 'POST', body: { window: windowName } });
      applyJob(accepted.job);
      setText(message, `Resync queued (job ${accepted.job.id}).`);
    } catch (error) {
      if (error.status === 429) {
        const secs = error.details?.retry_after_secs;
        setText(message, secs !== undefined
          ? `Resync refused: try again in ${formatDuration(secs)}. (${error.message})`
          : `Resync refused: ${error.message}`);
      } else if (error.status !== 401) {
        setText(message, error.message);
      }
    }
  });
}

// --------------------------------------------------------------------------- stats dialog

async function openStats(id, opener) {
  stats.id = id;
  stats.generation += 1;
  const dialog = $('#stats-modal');
  setText($('#stats-title'), `Stats — ${connectionName(id)}`);
  setText($('#integrity-status'), '');
  $('#integrity-report').replaceChildren();
  $('#integrity-fix-button').disabled = false;
  selectTab(dialog, 'counts');
  await attempt(async () => {
    renderStats(await api(`/connections/${id}/stats`));
    openModal(dialog, opener);
  });
}

/** A titled list of counts, with zeros for the names the API leaves out. */
function countList(title, counts, names = []) {
  const keys = [...new Set([...names, ...Object.keys(counts ?? {})])];
  return el('section', { class: 'stat-block' },
    el('h3', { text: title }),
    el('dl', { class: 'counts' }, keys.map((key) => el('div', {},
      el('dt', { text: humanize(key) }),
      el('dd', { text: counts?.[key] ?? 0 })))));
}

function renderStats(view) {
  const queued = view.queued_changes ?? {};
  $('#stats-counts').replaceChildren(
    countList('Bound records', view.bound, ['products', 'orders']),
    countList('Queued changes', {
      inserts: queued.inserts, updates: queued.updates, image_deletes: queued.image_deletes, total: queued.total,
    }),
    countList('Open issues by severity', view.open_issues, ['alert', 'warning', 'notice']),
    countList('Jobs by state', view.jobs_by_state, ['queued', 'running', 'succeeded', 'failed', 'cancelled']));

  const rows = view.history.map((job) => {
    const { scanned, sent } = progressOf(job);
    return el('tr', { class: `job-row job-${job.state}`, dataset: { jobId: job.id } },
      el('td', { text: job.id }),
      el('td', { text: humanize(job.kind) }),
      el('td', { text: job.trigger }),
      el('td', {}, el('span', { class: `job-state-tag job-${job.state}`, text: job.state })),
      el('td', {}, timeNode(job.started_at)),
      el('td', {}, timeNode(job.finished_at)),
      el('td', { text: `${scanned} / ${sent}` }),
      el('td', { class: 'error-cell', text: job.error ?? '' }));
  });
  $('#stats-history tbody').replaceChildren(...(rows.length ? rows
    : [el('tr', {}, el('td', { colspan: 8, class: 'muted', text: 'No jobs yet.' }))]));

  $('#stats-issues').replaceChildren(...view.issues.map((issue) => issueItem(issue, { resolvable: true })));
  $('#stats-issues-empty').hidden = view.issues.length > 0;
}

async function runIntegrityFix() {
  const id = stats.id;
  const generation = stats.generation;
  const button = $('#integrity-fix-button');
  const status = $('#integrity-status');
  const report = $('#integrity-report');
  report.replaceChildren();
  button.disabled = true;
  try {
    const accepted = await api(`/connections/${id}/maintenance/integrity-fix`, { method: 'POST' });
    applyJob(accepted.job);
    setText(status, `Integrity fix (job ${accepted.job.id}): ${accepted.job.state}…`);
    const job = await waitForJob(accepted.job.id, generation, (j) => setText(status, `Integrity fix (job ${j.id}): ${j.state}…`));
    if (!job) return; // the dialog closed or moved on
    setText(status, '');
    report.replaceChildren(...integrityReport(job));
  } catch (error) {
    if (error.status !== 401 && generation === stats.generation) setText(status, error.message);
  } finally {
    if (generation === stats.generation) button.disabled = false;
  }
}

/** Polls a job until it finishes; null when the stats dialog's generation changed meanwhile. */
async function waitForJob(id, generation, onUpdate) {
  for (;;) {
    const job = await api(`/jobs/${id}`);
    if (generation !== stats.generation) return null;
    applyJob(job);
    if (FINISHED.has(job.state)) return job;
    onUpdate(job);
    await sleep(JOB_POLL_MS);
  }
}

function integrityReport(job) {
  const counts = Object.entries(job.counts ?? {});
  return [
    el('p', { class: `report-state job-${job.state}` },
      el('strong', { text: `Integrity fix ${job.state}` }), ` (job ${job.id}, finished `, timeNode(job.finished_at), ')'),
    job.error ? el('p', { class: 'form-error', text: job.error }) : null,
    counts.length
      ? el('dl', { class: 'counts' }, counts.map(([key, value]) => el('div', {},
        el('dt', { text: humanize(key) }), el('dd', { text: valueText(value) }))))
      : el('p', { class: 'muted', text: 'Nothing to report.' }),
  ];
}

// ------------------------------------------------------------------- products and orders

function openBrowser(mode) {
  browse.mode = mode;
  const noun = mode === 'orders' ? 'orders' : 'products';
  setText($('#browse-title'), mode === 'orders' ? 'Orders' : 'Products');
  setText($('#results-caption'), mode === 'orders' ? 'Orders' : 'Products');
  setText($('#result-noun'), noun);
  $('#set-input').value = '';
  closeSuggestions();
  showSetError(null);
  renderChips();
  renderResults();
  attempt(() => loadRecords(browse.lists[mode].chips, false));
}

/** Loads a page for `chips` (a 4xx for a bad set is thrown to the caller). */
async function loadRecords(chips, append) {
  const mode = browse.mode;
  const list = browse.lists[mode];
  const params = new URLSearchParams();
  for (const chip of chips) params.append('set', chip);
  if (append && list.next) params.set('cursor', list.next);
  params.set('limit', String(PAGE_SIZE));
  params.set('utc_offset_minutes', String(-new Date().getTimezoneOffset()));
  browse.listAbort?.abort();
  const controller = new AbortController();
  browse.listAbort = controller;
  $('#results').setAttribute('aria-busy', 'true');
  try {
    const page = await api(`/${mode}?${params}`, { signal: controller.signal });
    if (browse.mode !== mode) return;
    list.chips = chips;
    list.items = append ? list.items.concat(page.items) : page.items;
    list.next = page.next ?? null;
    renderChips();
    renderResults();
  } finally {
    if (browse.listAbort === controller) {
      browse.listAbort = null;
      $('#results').removeAttribute('aria-busy');
    }
  }
}

/** Adds a chip only when the server accepts its phrase (the listing is the check). */
async function addChip(phrase) {
  const list = browse.lists[browse.mode];
  const text = phrase.trim();
  if (!text) return;
  const input = $('#set-input');
  closeSuggestions();
  if (list.chips.includes(text)) {
    input.value = '';
    return;
  }
  try {
    await loadRecords([...list.chips, text], false);
    input.value = '';
    showSetError(null);
  } catch (error) {
    if (error.name === 'AbortError' || error.status === 401) return;
    showSetError(error);
  }
}

function removeChip(phrase) {
  const list = browse.lists[browse.mode];
  const chips = list.chips.filter((c) => c !== phrase);
  list.chips = chips;
  renderChips();
  $('#set-input').focus();
  attempt(() => loadRecords(chips, false));
}

function renderChips() {
  const chips = browse.lists[browse.mode].chips;
  $('#set-chips').replaceChildren(...chips.map((phrase) => el('li', { class: 'chip', dataset: { phrase } },
    el('span', { class: 'chip-text', text: phrase }),
    el('button', {
      class: 'chip-remove', type: 'button', 'aria-label': `Remove set ${phrase}`, text: '×',
      onclick: () => removeChip(phrase),
    }))));
}

/** Shows why a set was refused, with the server's correction to take when it has one. */
function showSetError(error) {
  const box = $('#set-error');
  if (!error) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.replaceChildren(el('span', { text: error.message }));
  const suggestion = error.details?.did_you_mean;
  if (suggestion) {
    box.append(' Did you mean ', el('button', {
      class: 'link-button did-you-mean', type: 'button', text: suggestion,
      onclick: () => {
        const input = $('#set-input');
        input.value = suggestion;
        input.focus();
      },
    }), '?');
  }
  box.hidden = false;
}

function columns(mode) {
  return mode === 'orders'
    ? [['Number', (r) => r.number], ['Placed at', (r) => timeNode(r.placed_at)], ['Status', (r) => humanize(r.status)],
      ['Payment', (r) => humanize(r.payment_status)], ['Total', (r) => `${r.total} ${r.currency}`]]
    : [['SKU', (r) => r.sku ?? '—'], ['Title', (r) => r.title], ['Brand', (r) => r.brand ?? '—'],
      ['Category', (r) => r.category ?? '—'], ['Status', (r) => r.status]];
}

/** The connection columns: the account's connections, plus any a row names that the list lacks. */
function connectionColumns(items) {
  const ids = [...app.order];
  for (const item of items) for (const s of item.connections) if (!ids.includes(s.connection)) ids.push(s.connection);
  return ids;
}

function renderResults() {
  const mode = browse.mode;
  const list = browse.lists[mode];
  const cols = columns(mode);
  const connIds = connectionColumns(list.items);
  $('#results thead').replaceChildren(el('tr', {},
    cols.map(([title]) => el('th', { scope: 'col', text: title })),
    connIds.map((id) => el('th', { scope: 'col', class: 'conn-col', dataset: { connectionId: id }, text: connectionName(id) }))));
  const rows = list.items.map((record) => recordRow(mode, record, cols, connIds));
  $('#results tbody').replaceChildren(...(rows.length ? rows : [el('tr', { class: 'empty-row' },
    el('td', { colspan: cols.length + connIds.length, class: 'muted', text: `No ${mode} in these sets.` }))]));
  setText($('#result-count'), list.items.length);
  $('#load-more').hidden = !list.next;
}

function recordRow(mode, record, cols, connIds) {
  const byConnection = new Map(record.connections.map((s) => [s.connection, s]));
  return el('tr', {
    class: 'record-row', tabindex: 0, dataset: { recordId: record.id }, title: 'Open the record',
    onclick: (event) => openRecord(mode, record.id, event.currentTarget),
    onkeydown: (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        openRecord(mode, record.id, event.currentTarget);
      }
    },
  },
  cols.map(([, value]) => el('td', {}, value(record))),
  connIds.map((id) => stateCell(id, byConnection.get(id))));
}

function stateCell(connectionId, state) {
  const name = state?.state ?? 'unbound';
  const details = [connectionName(connectionId)];
  if (state?.external_id) details.push(`id ${state.external_id}`);
  if (state?.fields?.length) details.push(`fields: ${state.fields.join(', ')}`);
  return el('td', {
    class: `state-cell ${stateClass(name)}`,
    dataset: { connectionId, state: name },
    title: `${STATE_TITLE[name] ?? name} — ${details.join('; ')}`,
  }, el('span', { class: 'state-text', text: STATE_TEXT[name] ?? name }),
  state?.fields?.length ? el('span', { class: 'state-fields', text: state.fields.join(', ') }) : null);
}

// ----------------------------------------------------------------------- set autocomplete

function onSetInput() {
  clearTimeout(browse.suggestTimer);
  const query = $('#set-input').value;
  if (!query.trim()) {
    closeSuggestions();
    return;
  }
  browse.suggestTimer = setTimeout(() => fetchSuggestions(query), SUGGEST_DELAY_MS);
}

async function fetchSuggestions(query) {
  browse.suggestAbort?.abort();
  const controller = new AbortController();
  browse.suggestAbort = controller;
  const params = new URLSearchParams({ q: query, target: browse.mode, limit: '10' });
  try {
    const suggestions = await api(`/sets/suggest?${params}`, { signal: controller.signal });
    // An answer for text the user has since changed (or turned into a chip) is stale.
    if ($('#set-input').value !== query || document.activeElement !== $('#set-input')) return;
    showSuggestions(suggestions);
  } catch (error) {
    if (error.name !== 'AbortError' && error.status !== 401) closeSuggestions();
  }
}

function showSuggestions(suggestions) {
  browse.suggestions = suggestions;
  browse.active = -1;
  const list = $('#set-suggestions');
  list.replaceChildren(...suggestions.map((s, index) => el('li', {
    id: `set-suggestion-${index}`, role: 'option', 'aria-selected': 'false', dataset: { phrase: s.phrase },
    // mousedown would blur the input (and close the list) before the click lands.
    onmousedown: (event) => event.preventDefault(),
    onclick: () => pickSuggestion(index),
  }, el('span', { class: 'suggestion-label', text: s.label }),
  el('span', { class: 'suggestion-phrase', text: s.phrase }))));
  const open = suggestions.length > 0;
  list.hidden = !open;
  const input = $('#set-input');
  input.setAttribute('aria-expanded', String(open));
  input.removeAttribute('aria-activedescendant');
}

function closeSuggestions() {
  clearTimeout(browse.suggestTimer);
  browse.suggestAbort?.abort();
  browse.suggestions = [];
  browse.active = -1;
  const list = $('#set-suggestions');
  list.hidden = true;
  list.replaceChildren();
  const input = $('#set-input');
  input.setAttribute('aria-expanded', 'false');
  input.removeAttribute('aria-activedescendant');
}

function highlightSuggestion(index) {
  const items = $$('#set-suggestions li');
  if (!items.length) return;
  browse.active = (index + items.length) % items.length;
  items.forEach((item, i) => item.setAttribute('aria-selected', String(i === browse.active)));
  const current = items[browse.active];
  current.scrollIntoView({ block: 'nearest' });
  $('#set-input').setAttribute('aria-activedescendant', current.id);
}

/** Puts a suggestion's phrase in the bar; a phrase ending in a space waits for its value. */
function pickSuggestion(index) {
  const suggestion = browse.suggestions[index];
  if (!suggestion) return;
  const input = $('#set-input');
  input.value = suggestion.phrase;
  closeSuggestions();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  if (suggestion.phrase.endsWith(' ')) fetchSuggestions(suggestion.phrase);
}

function onSetKeydown(event) {
  const open = !$('#set-suggestions').hidden;
  switch (event.key) {
    case 'ArrowDown':
      if (open) {
        event.preventDefault();
        highlightSuggestion(browse.active + 1);
      } else if (event.target.value.trim()) {
        event.preventDefault();
        fetchSuggestions(event.target.value);
      }
      break;
    case 'ArrowUp':
      if (open) {
        event.preventDefault();
        highlightSuggestion(browse.active - 1);
      }
      break;
    case 'Enter':
      event.preventDefault();
      if (open && browse.active >= 0) pickSuggestion(browse.active);
      else addChip(event.target.value);
      break;
    case 'Escape':
      if (open) {
        event.preventDefault();
        event.stopPropagation();
        closeSuggestions();
      }
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------- record view

async function openRecord(kind, id, opener) {
  await attempt(async () => {
    const detail = await api(`/${kind}/${id}`);
    renderRecord(kind, detail);
    openModal($('#record-view'), opener);
    $('#record-close').focus();
  });
}

/** A definition list of label → value pairs, skipping empty values. */
function facts(pairs) {
  return el('dl', { class: 'facts record-facts' }, pairs
    .filter(([, value]) => value !== null && value !== undefined && value !== '')
    .map(([label, value]) => el('div', { class: 'rec-field' }, el('dt', { text: label }), el('dd', {}, value))));
}

function table(caption, headers, rows) {
  if (!rows.length) return null;
  return el('div', { class: 'table-wrap' }, el('table', { class: 'results compact' },
    el('caption', { text: caption }),
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c) => el('td', {}, c ?? '—')))))));
}

const optionsText = (options) => Object.entries(options ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');

function renderRecord(kind, detail) {
  // The record is the canonical record: its content sits under `content`.
  const content = detail.record?.content ?? detail.record ?? {};
  const title = kind === 'orders' ? `Order ${content.number ?? detail.id}` : (content.title || `Product ${detail.id}`);
  setText($('#record-title'), title);
  const main = kind === 'orders' ? orderMain(detail, content) : productMain(content);
  $('#record-content').replaceChildren(
    el('section', { class: 'record-main', 'aria-label': 'Record' }, main),
    el('section', { class: 'record-connections', 'aria-label': 'On each connection' },
      el('h3', { text: 'On each connection' }),
      detail.connections.map((state) => connectionSection(state, content))),
    el('section', { class: 'record-issues', 'aria-label': 'Open issues' },
      el('h3', { text: 'Open issues' }),
      detail.issues.length
        ? el('ul', { class: 'issue-list' }, detail.issues.map((issue) => issueItem(issue)))
        : el('p', { class: 'muted', text: 'No open issues.' })));
}

function productMain(c) {
  const description = htmlText(c.description);
  const images = c.images ?? [];
  return [
    facts([
      ['SKU', c.sku], ['Title', c.title], ['Brand', c.brand], ['Vendor', c.vendor],
      ['Category', c.category], ['Status', c.status], ['Tags', (c.tags ?? []).join(', ')],
      ['Barcode', c.barcode], ['Weight', c.weight_grams ? `${c.weight_grams} g` : ''],
      ['Currency', c.currency], ['Attributes', optionsText(c.attributes)],
    ]),
    description ? el('div', { class: 'description' }, el('h3', { text: 'Description' }), el('p', { text: description })) : null,
    table('Variants', ['SKU', 'Options', 'Price', 'Compare at', 'Stock', 'Barcode'],
      (c.variants ?? []).map((v) => [v.sku, optionsText(v.options), v.price, v.compare_at_price,
        v.stock === undefined || v.stock === null ? 'not tracked' : String(v.stock), v.barcode])),
    images.length ? el('div', {}, el('h3', { text: 'Images' }), el('ul', { class: 'gallery' }, images.map((image) => el('li', { class: 'rec-image' },
      el('img', { src: image.src, alt: image.alt ?? '', loading: 'lazy', referrerpolicy: 'no-referrer' }),
      el('span', { class: 'image-caption muted', text: `#${image.position} · ${String(image.content_hash ?? '').slice(0, 8)}` }))))) : null,
  ];
}

function orderMain(detail, c) {
  const buyer = c.buyer ?? {};
  return [
    facts([
      ['Number', c.number], ['Placed at', timeNode(c.placed_at)], ['Origin', detail.record?.origin !== undefined ? connectionName(detail.record.origin) : ''],
      ['Status', humanize(c.status ?? '')], ['Payment', humanize(c.payment_status ?? '')],
      ['Buyer', [buyer.name, buyer.email, buyer.phone].filter(Boolean).join(' · ')],
      ['Address', (buyer.address ?? []).join(', ')],
      ['Subtotal', c.subtotal], ['Shipping', c.shipping_total], ['Tax', c.tax_total],
      ['Total', c.total !== undefined ? `${c.total} ${c.currency}` : ''], ['Note', c.note],
    ]),
    table('Lines', ['SKU', 'Title', 'Quantity', 'Unit price'],
      (c.lines ?? []).map((l) => [l.sku, l.title, String(l.quantity), l.unit_price])),
    table('Shipments', ['Carrier', 'Tracking number', 'Status'],
      (c.shipments ?? []).map((s) => [s.carrier, s.tracking_number, humanize(s.status ?? '')])),
  ];
}

/** What a field holds in the canonical record, for the per-connection lists. */
function fieldValue(content, field) {
  const variants = content.variants ?? [];
  const perVariant = (key) => variants.map((v) => v[key]).filter((x) => x !== undefined && x !== null).join(', ');
  switch (field) {
    case 'description': return htmlText(content.description);
    case 'tags': return (content.tags ?? []).join(', ');
    case 'weight': return content.weight_grams ? `${content.weight_grams} g` : '';
    case 'attributes': return optionsText(content.attributes);
    case 'images': return `${(content.images ?? []).length} images`;
    case 'variants': return `${variants.length} variants`;
    case 'price': case 'compare_at_price': case 'stock': return perVariant(field);
    case 'order_status': return humanize(content.status ?? '');
    case 'payment_status': return humanize(content.payment_status ?? '');
    case 'shipments': return `${(content.shipments ?? []).length} shipments`;
    case 'order_note': return content.note ?? '';
    default: return valueText(content[field] ?? '');
  }
}

/** The canonical variant a state key names (`sku:<key>` or `options:name=value,…`), if any. */
function variantFor(content, key) {
  const variants = content.variants ?? [];
  if (key.startsWith('sku:')) {
    const wanted = key.slice(4).replace(/\s+/g, '').toLowerCase();
    return variants.find((v) => (v.sku ?? '').replace(/\s+/g, '').toLowerCase() === wanted);
  }
  if (key.startsWith('options:')) {
    const wanted = key.slice(8);
    return variants.find((v) => !v.sku && Object.entries(v.options ?? {}).map(([n, x]) => `${n}=${x}`).join(',') === wanted);
  }
  return undefined;
}

function stateList(className, title, entries, item) {
  if (!entries.length) return null;
  return el('div', { class: 'state-group' }, el('h5', { text: title }),
    el('ul', { class: `state-list ${className}-list` }, entries.map(item)));
}

function connectionSection(state, content) {
  const fields = Object.entries(state.fields ?? {});
  const variants = Object.entries(state.variants ?? {});
  const images = Object.entries(state.images ?? {});
  const imageByHash = new Map((content.images ?? []).map((image) => [image.content_hash, image]));
  const changes = fields.length + variants.length + images.length;
  return el('section', {
    class: `conn-state ${stateClass(state.state)}`,
    dataset: { connectionId: state.connection, state: state.state },
    'aria-label': `${state.connection_name}: ${STATE_TEXT[state.state] ?? state.state}`,
  },
  el('header', { class: 'conn-state-head' },
    el('h4', { text: state.connection_name }),
    el('span', { class: 'platform', text: state.platform }),
    stateTag(state.state)),
  facts([
    ['External id', state.external_id ? el('code', { text: state.external_id }) : 'not bound'],
    ['Platform last changed', state.platform_updated_at ? timeNode(state.platform_updated_at) : ''],
  ]),
  stateList('field', 'Fields', fields, ([field, s]) => el('li', {
    class: `field ${stateClass(s)}`, dataset: { field, state: s }, title: `${field}: ${STATE_TITLE[s] ?? s}`,
  }, el('span', { class: 'item-name', text: humanize(field) }), el('span', { class: 'item-state', text: STATE_TEXT[s] ?? s }),
  el('span', { class: 'item-value', text: truncate(fieldValue(content, field), 100) }))),
  stateList('variant', 'Variants', variants, ([key, s]) => {
    const variant = variantFor(content, key);
    const summary = variant ? [optionsText(variant.options), variant.price ? `price ${variant.price}` : '',
      variant.stock !== undefined && variant.stock !== null ? `stock ${variant.stock}` : ''].filter(Boolean).join(' · ') : '';
    return el('li', { class: `variant ${stateClass(s)}`, dataset: { key, state: s }, title: `${key}: ${STATE_TITLE[s] ?? s}` },
      el('code', { class: 'item-name', text: key }), el('span', { class: 'item-state', text: STATE_TEXT[s] ?? s }),
      summary ? el('span', { class: 'item-value', text: summary }) : null);
  }),
  stateList('image', 'Images', images, ([hash, s]) => {
    const image = imageByHash.get(hash);
    return el('li', { class: `image ${stateClass(s)}`, dataset: { hash, state: s }, title: `${hash}: ${STATE_TITLE[s] ?? s}` },
      image ? el('img', { src: image.src, alt: image.alt ?? '', loading: 'lazy', referrerpolicy: 'no-referrer' }) : null,
      el('code', { class: 'item-name', text: hash.slice(0, 12) }), el('span', { class: 'item-state', text: STATE_TEXT[s] ?? s }));
  }),
  changes ? null : el('p', { class: 'muted', text: state.state === 'unbound' ? 'Not on this connection.' : 'Nothing queued.' }));
}

// ---------------------------------------------------------------------------------- setup

function buildLegends() {
  for (const holder of $$('[data-legend]')) {
    holder.setAttribute('role', 'group');
    holder.setAttribute('aria-label', 'Colour legend');
    holder.replaceChildren(el('span', { class: 'legend-title', text: 'Legend:' }),
      ...Object.keys(STATE_TEXT).map((state) => stateTag(state)));
  }
}

function onDocumentKeydown(event) {
  // A dialog above the popover takes Escape itself.
  if (event.key === 'Escape' && !$('#issues-popover').hidden && !$('dialog[open]')) {
    event.preventDefault();
    closeIssuesPopover(true);
  }
}

/** A click outside the issues popover closes it. */
function onDocumentClick(event) {
  if ($('#issues-popover').hidden) return;
  if (!event.target.closest('.issues-anchor')) closeIssuesPopover(false);
}

function setup() {
  buildLegends();
  buildSettingsForm();
  setupDialogs();
  setupTabs($('#settings-modal'));
  setupTabs($('#stats-modal'));
  $('#login-form').addEventListener('submit', onLoginSubmit);
  $('#logout-button').addEventListener('click', logout);
  for (const button of $$('.nav-link')) button.addEventListener('click', () => showView(button.dataset.view));
  $('#issues-button').addEventListener('click', toggleIssuesPopover);
  $('#troubleshoot-button').addEventListener('click', openTroubleshoot);
  $('#integrity-fix-button').addEventListener('click', runIntegrityFix);
  $('#load-more').addEventListener('click', (event) => withBusy(event.currentTarget,
    () => attempt(() => loadRecords(browse.lists[browse.mode].chips, true))));
  const input = $('#set-input');
  input.addEventListener('input', onSetInput);
  input.addEventListener('keydown', onSetKeydown);
  input.addEventListener('blur', closeSuggestions);
  document.addEventListener('keydown', onDocumentKeydown);
  document.addEventListener('click', onDocumentClick);

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    $('#login').hidden = true;
    verifyToken(saved);
  } else {
    showLogin();
  }
}

setup();
