// The live stock board: a sku's positions per location and availability per channel, kept
// current from the service's event stream. Plain ES module, no build step.
import { setupNearby } from "./nearby.js";
import { openEventStream } from "./sse.js";

const API = new URL("../v1/", document.baseURI); // relative: works behind a path prefix
const MAX_EVENTS = 25;
const MAX_POINTS = 60;
const KEY_ITEM = "omnistock.board.key";
const RECENT_ITEM = "omnistock.board.recent";

const $ = (selector) => document.querySelector(selector);
const enc = encodeURIComponent;

const board = {
  sku: "",
  stream: null,
  locations: new Map(), // id -> location
  channels: new Map(), // id -> channel
  positions: new Map(), // location -> position
  availability: new Map(), // channel -> {available, status}
  events: [],
  points: [],
  changed: new Set(),
  kit: false, // the sku is a kit: its figures come from its components
  reload: 0, // timer of a kit's pending re-read
};

function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

async function get(path) {
  const headers = { Accept: "application/json" };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const response = await fetch(new URL(path, API), { headers, cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.code ? `${body.code}: ${body.detail}` : `HTTP ${response.status}`);
  }
  return body;
}

async function load(sku) {
  const [locations, channels, stock, kits] = await Promise.all([
    get("locations"),
    get("channels"),
    get(`stock/${enc(sku)}`),
    get("kits"),
  ]);
  board.locations = new Map(locations.locations.map((l) => [l.id, l]));
  board.channels = new Map(channels.channels.map((c) => [c.id, c]));
  board.kit = kits.kits.some((k) => k.sku === sku);
  if (board.kit) {
    // A kit has no positions: whole kits per location (min over its components), no counters.
    const units = await get(`availability/${enc(sku)}`);
    board.positions = new Map(units.locations.map((l) => [l.location, { location: l.location, available: l.available }]));
  } else {
    board.positions = new Map(stock.positions.map((p) => [p.location, p]));
  }
  const per = await Promise.all(
    channels.channels.map((c) => get(`availability/${enc(sku)}?channel=${enc(c.id)}`)),
  );
  board.availability = new Map(per.map((a) => [a.channel, { available: a.available, status: a.status }]));
  // Stock on its way (future supply): as of the load; position events do not carry it.
  board.incoming = new Map(per.map((a) => [a.channel, { incoming: a.incoming || 0, next: a.next_available_at }]));
  board.points = [total()];
  nearby.refresh();
}

function total() {
  let sum = 0;
  for (const p of board.positions.values()) sum += p.available;
  return sum;
}

function apply(event) {
  if (event.type === "reset") {
    // The stream could not resume without a gap: read everything again.
    load(board.sku).then(render, showError);
    return;
  }
  const e = event.data;
  if (board.kit && e.position) {
    // A component changed: the kit's figures are re-read (one read per burst of events).
    clearTimeout(board.reload);
    board.reload = setTimeout(() => load(board.sku).then(render, showError), 200);
    board.events.unshift({ ...e, delta: 0 });
    board.events.length = Math.min(board.events.length, MAX_EVENTS);
    return;
  }
  if (e.sku !== board.sku || !e.position) return;
  const before = board.positions.get(e.location);
  board.positions.set(e.location, { location: e.location, ...e.position });
  for (const change of e.availability || []) board.availability.set(change.channel, change.after);
  board.events.unshift({ ...e, delta: e.position.available - (before ? before.available : 0) });
  board.events.length = Math.min(board.events.length, MAX_EVENTS);
  board.points.push(total());
  if (board.points.length > MAX_POINTS) board.points.shift();
  board.changed.add(e.location);
  for (const change of e.availability || []) board.changed.add(`channel:${change.channel}`);
  render();
}

function cell(row, text, className = "") {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function flash(row, key) {
  if (board.changed.has(key)) {
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }
}

function renderLocations() {
  const body = $("#locations tbody");
  body.replaceChildren();
  const ids = new Set([...board.locations.keys(), ...board.positions.keys()]);
  const order = [...ids].sort((a, b) => {
    const pa = board.locations.get(a)?.priority ?? 1e9;
    const pb = board.locations.get(b)?.priority ?? 1e9;
    return pa - pb || a.localeCompare(b);
  });
  for (const id of order) {
    const p = board.positions.get(id);
    const location = board.locations.get(id);
    const row = body.insertRow();
    row.dataset.location = id;
    if (!p) row.className = "absent";
    cell(row, location?.name ? `${location.name} (${id})` : id);
    cell(row, location?.type ?? "");
    for (const name of ["on_hand", "held", "committed", "safety_stock"]) {
      const value = p && p[name] !== undefined ? String(p[name]) : "–";
      cell(row, value, `num ${name}${p && p[name] < 0 ? " neg" : ""}`);
    }
    cell(row, p ? String(p.available) : "0", "num available");
    flash(row, id);
  }
}

// A channel's rules (docs/architecture.md "Channel rules"), so a figure below the locations'
// sum explains itself.
function ruleNote(channel) {
  const notes = [];
  const buffer = channel && channel.buffer;
  if (buffer) notes.push("keeps " + ("percent" in buffer ? buffer.percent + " %" : buffer.units) + " back");
  if (channel && (channel.exclude_skus || []).includes(board.sku)) notes.push("sku excluded");
  return notes.length ? " (" + notes.join(", ") + ")" : "";
}

function renderChannels() {
  const body = $("#channels tbody");
  body.replaceChildren();
  for (const id of [...board.channels.keys()].sort()) {
    const a = board.availability.get(id) || { available: 0, status: "out_of_stock" };
    const row = body.insertRow();
    row.dataset.channel = id;
    cell(row, id + ruleNote(board.channels.get(id)), "channel");
    cell(row, String(a.available), "num available");
    const badge = document.createElement("span");
    badge.className = `badge ${a.status}`;
    badge.textContent = a.status.replace(/_/g, " ");
    row.insertCell().append(badge);
    const inc = (board.incoming && board.incoming.get(id)) || { incoming: 0, next: null };
    cell(row, String(inc.incoming), "num incoming");
    cell(row, inc.next ? inc.next.slice(0, 10) : "", "next");
    flash(row, `channel:${id}`);
  }
  if (board.channels.size === 0) {
    // Availability is per channel: without one there is nothing to show here (nor in a widget).
    const row = body.insertRow();
    row.id = "no-channels";
    const note = row.insertCell();
    note.colSpan = 5;
    note.textContent =
      "No channels yet: create one with PUT /v1/channels/{id}, e.g. " +
      '{"locations": ["store-12"]} (see the README, "Try it").';
  }
}

function renderEvents() {
  const body = $("#events tbody");
  body.replaceChildren();
  for (const e of board.events) {
    const row = body.insertRow();
    cell(row, new Date(e.at).toLocaleTimeString());
    cell(row, e.type);
    cell(row, e.location);
    const sign = e.delta > 0 ? `+${e.delta}` : String(e.delta);
    cell(row, `${e.position.available} (${sign})`, `num ${e.delta < 0 ? "neg" : e.delta > 0 ? "pos" : ""}`);
    cell(row, e.cause?.hold || e.cause?.source_event || e.cause?.type || "");
  }
}

function renderSparkline() {
  const svg = $("#spark");
  const values = board.points.length > 1 ? board.points : [board.points[0] ?? 0, board.points[0] ?? 0];
  const min = Math.min(...values);
  const span = Math.max(1, Math.max(...values) - min);
  const step = 300 / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(56 - ((v - min) / span) * 52).toFixed(1)}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  svg.replaceChildren(line);
}

function render() {
  $("#board").hidden = false;
  $("#message").hidden = true;
  $("#sku-title").textContent = board.sku;
  $("#total").textContent = String(total());
  renderChannels();
  renderLocations();
  renderEvents();
  renderSparkline();
  board.changed.clear();
}

function setState(state, error) {
  const pill = $("#state");
  pill.className = `state ${state}`;
  pill.textContent = state;
  pill.title = error ? String(error.message || error) : "";
}

function showError(error) {
  const message = $("#message");
  message.textContent = String(error.message || error);
  message.hidden = false;
  setState("error", error);
}

function remember(sku) {
  const recent = sku ? [sku] : [];
  recent.push(...JSON.parse(localStorage.getItem(RECENT_ITEM) || "[]"));
  const unique = [...new Set(recent)].slice(0, 10);
  localStorage.setItem(RECENT_ITEM, JSON.stringify(unique));
  $("#recent-skus").replaceChildren(
    ...unique.map((s) => Object.assign(document.createElement("option"), { value: s })),
  );
}

async function watch(sku) {
  if (board.stream) board.stream.close();
  Object.assign(board, { sku, events: [], points: [], changed: new Set() });
  history.replaceState(null, "", `?sku=${enc(sku)}`);
  remember(sku);
  setState("connecting");
  // Subscribe first and read the snapshot once the stream is open, so no change made in
  // between is missed; events arriving before the snapshot is in are applied after it.
  const early = [];
  let loaded = false;
  let opened;
  const open = new Promise((resolve) => (opened = resolve));
  board.stream = openEventStream(new URL(`events?sku=${enc(sku)}`, API), {
    apiKey: apiKey(),
    onEvent: (event) => (loaded ? apply(event) : early.push(event)),
    onState: (state, error) => {
      setState(state, error);
      opened();
    },
  });
  await Promise.race([open, new Promise((resolve) => setTimeout(resolve, 3000))]);
  try {
    await load(sku);
  } catch (error) {
    showError(error);
    return;
  }
  loaded = true;
  render();
  early.forEach(apply);
}

const nearby = setupNearby({
  api: API, apiKey, sku: () => board.sku, locations: () => board.locations,
});

$("#pick").addEventListener("submit", (event) => {
  event.preventDefault();
  watch($("#sku").value.trim());
});
$("#api-key").value = apiKey();
$("#api-key").addEventListener("change", () => {
  sessionStorage.setItem(KEY_ITEM, $("#api-key").value.trim());
  if (board.sku) watch(board.sku);
});
remember("");
const initial = new URLSearchParams(location.search).get("sku");
if (initial) {
  $("#sku").value = initial;
  watch(initial);
}
