// Simulacra's web view: one page over the JSON API of simulacra/web/server.py.
// The slider picks a step; the world, the agents table, the selected agent, the feed and the charts show it.
// A run folder is untrusted input: every value from it goes into the page as text (textContent, attributes set
// one by one), never parsed as HTML; lookups by a name from the run use Maps or own properties only.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const W = 1000, H = 640;
const shown = (places) => (places > 12 ? 3 : places > 8 ? 5 : 8);  // names drawn per place; the table lists all
const TALKS = 12;  // talks named under the map
const COLORS = { tree: "#66bb6a", stone: "#9e9e9e", coal_ore: "#424242", iron_ore: "#bcaaa4", diamond_ore: "#4dd0e1",
  lava: "#ff5722", crafting_table: "#8d6e63", furnace: "#5d4037" };
const state = { meta: null, step: 0, selected: null, playing: null, frame: null, busy: false, again: false };

const own = (object, key) => (object && Object.hasOwn(object, key) ? object[key] : undefined);
const most = (values) => values.reduce((a, b) => Math.max(a, b), -Infinity);
const least = (values) => values.reduce((a, b) => Math.min(a, b), Infinity);

async function api(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function el(name, attrs, parent, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// An HTML element with attributes and children (strings become text nodes, never markup).
function h(name, attrs, ...children) {
  const node = document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

// Replaces a node's children, one append each (a spread of 100,000 rows would overflow the call stack).
function fill(node, children) {
  const fragment = document.createDocumentFragment();
  for (const child of children) fragment.appendChild(child);
  node.replaceChildren(fragment);
}

// What the run was made with (its manifest.json), as text.
function provenanceLine(p) {
  if (!p || typeof p !== "object") return "no manifest";
  if (p.damaged) return "manifest damaged (python run.py verify says why)";
  const short = (v) => (typeof v === "string" ? v.slice(0, 12) : "?");
  return `Simulacra ${p.simulacra_version ?? "?"} (${short(p.git_commit)}), ${p.model_id ?? "?"}` +
    (p.model_sha256 ? ` sha256 ${short(p.model_sha256)}` : "");
}

async function init() {
  const meta = await api("/api/run");
  state.meta = meta;
  document.title = `Simulacra: ${meta.scenario || meta.run_name}`;
  $("title").textContent = `${meta.scenario || "run"} (${meta.world || "?"} world, seed ${meta.seed ?? "?"})`;
  $("provenance").textContent = provenanceLine(meta.provenance);
  fillFilters(meta);
  updateMeta(meta);
  const step = meta.steps;
  $("slider").value = step;
  await show(step);
  setInterval(poll, 1000);
}

function fillFilters(meta) {
  const agents = $("f-agent"), kinds = $("f-kind");
  agents.length = 1; kinds.length = 1;
  for (const name of meta.agents) agents.add(new Option(name, name));
  for (const kind of meta.kinds) kinds.add(new Option(kind, kind));
  $("agent-count").textContent = `(${meta.agents.length.toLocaleString()})`;
}

function updateMeta(meta) {
  $("slider").max = meta.steps;
  $("total").textContent = meta.total_steps ?? "?";
  $("status").textContent = meta.live ? `live: ${meta.status}` : meta.status;
  $("status").className = meta.status === "running" ? "running" : "";
}

async function poll() {
  const meta = state.meta;
  if (!meta || (meta.status !== "running" && !meta.live)) return;
  const fresh = await api("/api/run");
  const atEnd = Number($("slider").value) >= meta.steps;
  if (fresh.kinds.length !== meta.kinds.length || fresh.agents.length !== meta.agents.length) fillFilters(fresh);
  state.meta = fresh;
  updateMeta(fresh);
  if (fresh.steps !== meta.steps && $("follow").checked && atEnd) {
    $("slider").value = fresh.steps;
    await show(fresh.steps);
  }
}

async function show(step) {
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  try {
    state.step = step;
    const all = $("f-all").checked;
    const query = new URLSearchParams({ first: all ? 0 : step, last: step });
    if ($("f-agent").value) query.set("agent", $("f-agent").value);
    if ($("f-kind").value) query.set("kind", $("f-kind").value);
    const [frame, feed, metrics] = await Promise.all([api(`/api/frame?step=${step}`),
      api(`/api/events?${query}`), api(`/api/metrics?upto=${step}`)]);
    state.frame = frame;
    $("step").textContent = step;
    $("clock").textContent = frame.sim_time || "";
    drawWorld(frame);
    drawTable(frame);
    drawFeed(feed.events);
    drawCharts(metrics);
    if (state.selected) await showAgent(state.selected);
    if (!state.again) document.body.dataset.step = step;  // the step drawn, once no newer one is waiting
    document.body.dataset.ready = "1";
  } finally {
    state.busy = false;
  }
  if (state.again) { state.again = false; await show(Number($("slider").value)); }
}

// -- the world --------------------------------------------------------------------------------------------
function drawWorld(frame) {
  const svg = $("world");
  svg.replaceChildren();
  $("legend").replaceChildren();
  if (frame.kind === "town") drawTown(svg, frame);
  else if (frame.kind === "crafting") drawCrafting(svg, frame);
  else if (frame.kind === "society") drawSociety(svg, frame);
  else el("text", { x: 20, y: 40 }, svg, "This world has no drawing; the table lists its agents.");
}

function drawTown(svg, frame) {
  const layout = state.meta.layout, spot = new Map(), SHOWN = shown(state.meta.places.length);
  const height = 24 + 17 * (SHOWN + 1);
  for (const [name, [x, y]] of Object.entries(layout)) spot.set(name, [10 + x * (W - 170), 10 + y * (H - height - 20)]);
  for (const place of state.meta.places) {
    for (const link of place.links) {
      if (spot.has(link) && spot.has(place.name) && place.name < link) {
        const [a, b] = [spot.get(place.name), spot.get(link)];
        el("line", { class: "link", x1: a[0] + 75, y1: a[1] + 10, x2: b[0] + 75, y2: b[1] + 10 }, svg);
      }
    }
  }
  const here = new Map();
  for (const [agent, place] of Object.entries(frame.where)) here.set(place, [...(here.get(place) || []), agent]);
  const drawn = new Map();
  for (const place of state.meta.places) {
    const [x, y] = spot.get(place.name) || [20, 20];
    const people = (here.get(place.name) || []).sort();
    const rows = Math.min(people.length, SHOWN) + (people.length > SHOWN ? 1 : 0);
    const g = el("g", { class: "place", "data-place": place.name }, svg);
    el("rect", { x, y, width: 150, height: 24 + 17 * rows, rx: 6, fill: "#e3f2fd", stroke: "#90a4ae" }, g);
    el("text", { x: x + 6, y: y + 16, "font-weight": "bold" }, g, `${place.name} (${people.length})`);
    people.slice(0, SHOWN).forEach((agent, i) => {
      const a = el("g", { class: `agent${agent === state.selected ? " selected" : ""}`, "data-agent": agent,
        "data-place": place.name }, svg);
      el("circle", { cx: x + 12, cy: y + 32 + 17 * i, r: 5 }, a);
      el("text", { x: x + 22, y: y + 36 + 17 * i }, a, agent);
      a.addEventListener("click", () => select(agent));
      drawn.set(agent, [x + 12, y + 32 + 17 * i]);
    });
    if (people.length > SHOWN) {
      el("text", { class: "more", x: x + 8, y: y + 36 + 17 * SHOWN }, g, `and ${people.length - SHOWN} others`);
    }
  }
  for (const [from, to] of frame.talks) {
    const [a, b] = [drawn.get(from), drawn.get(to)];
    if (a && b) el("line", { class: "talk", x1: a[0], y1: a[1], x2: b[0], y2: b[1] }, svg);
  }
  const talks = frame.talks.slice(0, TALKS).map(([a, b]) => `${a} → ${b}`).join(", ");
  const more = frame.talks.length > TALKS ? ` and ${frame.talks.length - TALKS} more` : "";
  $("legend").append(h("span", {}, talks ? `talking (${frame.talks.length}): ${talks}${more}`
    : "no one talked this step"));
}

function drawCrafting(svg, frame) {
  const size = frame.size || 1, cell = Math.min(W, H) / size;
  for (const [kind, x, y, count] of frame.blocks) {
    const r = el("rect", { class: "block", x: x * cell, y: y * cell, width: cell, height: cell,
      fill: own(COLORS, kind) || "#b0bec5", "data-kind": kind }, svg);
    el("title", {}, r, `${kind} (${count} left) at ${x}, ${y}`);
  }
  el("rect", { x: 0, y: 0, width: size * cell, height: size * cell, fill: "none", stroke: "#90a4ae" }, svg);
  for (const [name, p] of Object.entries(frame.players)) {
    const a = el("g", { class: `agent${name === state.selected ? " selected" : ""}`, "data-agent": name,
      "data-x": p.x, "data-y": p.y }, svg);
    el("circle", { cx: (p.x + 0.5) * cell, cy: (p.y + 0.5) * cell, r: cell * 0.45 }, a);
    el("text", { x: (p.x + 1) * cell + 2, y: (p.y + 0.5) * cell + 4 }, a, name);
    a.addEventListener("click", () => select(name));
  }
  for (const [kind, colour] of Object.entries(COLORS)) {
    const swatch = h("i");
    swatch.style.background = colour;  // a style property, not a style attribute: the CSP allows no inline style
    $("legend").append(h("span", {}, swatch, kind));
  }
  $("legend").append(h("span", {}, `acted this step: ${frame.acted.join(", ") || "nobody"}`));
}

function drawSociety(svg, frame) {
  const cells = Object.values(frame.cells);
  const side = cells.length ? most(cells.map(([x, y]) => Math.max(x, y))) + 1 : 1, cell = Math.min(W, H) / side;
  const scale = frame.scale || 7, centre = new Map();
  for (const [name, [x, y]] of Object.entries(frame.cells)) {
    const rating = own(frame.ratings, name) || {};
    const value = rating.revised ?? rating.draft;
    const shade = value == null ? "#eceff1" : `hsl(${(120 * (value - 1)) / Math.max(scale - 1, 1)}, 60%, 75%)`;
    const a = el("g", { class: `agent${name === state.selected ? " selected" : ""}`, "data-agent": name,
      "data-x": x, "data-y": y }, svg);
    el("rect", { class: "cell", x: x * cell, y: y * cell, width: cell, height: cell, fill: shade }, a);
    el("text", { x: x * cell + 8, y: y * cell + 20, "font-weight": "bold" }, a, name);
    el("text", { x: x * cell + 8, y: y * cell + 38 }, a,
      value == null ? "not yet rated" : `rated ${rating.draft ?? "–"} → ${rating.revised ?? "–"} of ${scale}`);
    a.addEventListener("click", () => select(name));
    centre.set(name, [(x + 0.5) * cell, (y + 0.5) * cell]);
  }
  for (const [rater, answerer] of frame.rated) {
    const [a, b] = [centre.get(rater), centre.get(answerer)];
    if (a && b) el("line", { class: "talk", x1: a[0], y1: a[1], x2: b[0], y2: b[1], "stroke-opacity": 0.4 }, svg);
  }
  $("legend").append(h("span", {},
    `colour: the latest answer's rating (red 1 … green ${scale}); lines: who rated whom this step`));
}

// -- the agents table and one agent ----------------------------------------------------------------------
function whereOf(frame, name) {
  if (frame.kind === "town") return own(frame.where, name) ?? "";
  if (frame.kind === "crafting") {
    const p = own(frame.players, name);
    return p ? `${p.x}, ${p.y}${p.health == null ? "" : `; health ${p.health}`}` : "";
  }
  if (frame.kind === "society") {
    const r = own(frame.ratings, name);
    return `${own(frame.cells, name) ?? ""}${r ? `; rated ${r.draft ?? "–"} → ${r.revised ?? "–"}` : ""}`;
  }
  return "";
}

function drawTable(frame) {
  const find = $("agent-search").value.toLowerCase();
  const rows = state.meta.agents.filter((n) => !find || n.toLowerCase().includes(find)).map((name) =>
    h("tr", { "data-agent": name, ...(name === state.selected ? { class: "selected" } : {}) },
      h("td", {}, name), h("td", { class: "where" }, whereOf(frame, name))));
  fill($("agents").tBodies[0], rows);
}

async function select(name) {
  state.selected = name;
  drawWorld(state.frame);
  drawTable(state.frame);
  try {
    await showAgent(name);
  } catch (err) {
    $("agent").hidden = false;
    $("agent-name").textContent = `${name}: ${err}`;
  }
}

const list = (id, items) => fill($(id), items.length ? items : [h("li", {}, h("i", {}, "none"))]);
const stepNote = (step) => h("small", {}, `(step ${step})`);

async function showAgent(name) {
  const a = await api(`/api/agent?name=${encodeURIComponent(name)}&step=${state.step}`);
  $("agent").hidden = false;
  $("agent-name").textContent = `${a.name} at step ${a.step}`;
  $("agent-persona").textContent = a.persona || "";
  $("agent-goal").textContent = a.goal ? `Goal: ${a.goal}${a.home ? `; lives at the ${a.home}` : ""}` : "";
  list("agent-now", a.now.map((e) => h("li", {}, e.text, " ", stepNote(e.step))));
  list("agent-plan", a.plan.map((p) => h("li", {}, h("b", {}, p.level), ": ", (p.items || []).map((i) =>
    typeof i === "string" ? i : JSON.stringify(i)).join("; "))));
  list("agent-tasks", a.tasks.map((e) => h("li", {}, e.text, " ", stepNote(e.step))));
  $("memory-source").textContent = a.memory_source === "store" ? "(its memory stream in Chroma)" :
    a.memory_error ? `(its own events: ${a.memory_error})` : "(its own events: this run kept no memory store)";
  list("memories", a.memories.map((m) => h("li", { class: "memory", "data-id": m.id ?? "" },
    h("span", { class: "kind" }, m.kind), m.text,
    ...(m.importance != null ? [" ", h("small", {}, `importance ${m.importance}`)] : []))));
  document.body.dataset.agent = `${a.name}@${a.step}`;
}

// -- the feed and the charts -----------------------------------------------------------------------------
function drawFeed(events) {
  fill($("feed"), events.length ? events.map((e) => h("li", { "data-kind": e.kind, "data-agent": e.agent ?? "" },
    h("span", { class: "kind" }, `${e.step} ${e.kind}`), e.text)) : [h("li", {}, h("i", {}, "no events"))]);
}

function drawCharts(metrics) {
  const box = $("charts"), total = Math.max(state.meta.total_steps || state.meta.steps || 1, 1);
  box.replaceChildren();
  for (const [key, points] of Object.entries(metrics)) {
    const svg = el("svg", { class: "chart", width: 230, height: 110, "data-metric": key }, box);
    const values = points.map((p) => p[1]), top = Math.max(most(values), 0), bottom = Math.min(least(values), 0);
    const span = top - bottom || 1;
    const xy = points.map(([s, v]) => `${10 + (s / total) * 210},${95 - ((v - bottom) / span) * 70}`);
    el("text", { x: 6, y: 13 }, svg, key);
    el("text", { x: 6, y: 106, fill: "#78909c" }, svg,
      points.length ? `step ${points.at(-1)[0]}: ${points.at(-1)[1]}  (max ${top})` : "no value yet");
    el("polyline", { points: xy.join(" ") }, svg);
  }
}

// -- controls ----------------------------------------------------------------------------------------------
$("slider").addEventListener("input", () => show(Number($("slider").value)));
for (const id of ["f-agent", "f-kind", "f-all"]) $(id).addEventListener("change", () => show(state.step));
$("agent-search").addEventListener("input", () => state.frame && drawTable(state.frame));
$("agents").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-agent]");
  if (row) select(row.dataset.agent);
});
$("play").addEventListener("click", () => {
  if (state.playing) { clearInterval(state.playing); state.playing = null; $("play").textContent = "▶"; return; }
  $("play").textContent = "⏸";
  if (Number($("slider").value) >= state.meta.steps) $("slider").value = 0;
  state.playing = setInterval(() => {
    const next = Number($("slider").value) + 1;
    if (next > state.meta.steps) {
      if (state.meta.status !== "running") { $("play").click(); }
      return;
    }
    $("slider").value = next;
    show(next);
  }, 800);
});

init().catch((err) => { document.body.dataset.error = String(err); $("title").textContent = `error: ${err}`; });
