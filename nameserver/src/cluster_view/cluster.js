"use strict";
// Everything shown comes from /cluster/state and is put into the page with textContent,
// setAttribute or createElementNS: node data never becomes markup.
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const ROLE_ORDER = ["writer", "persistence", "forwarder", "input"];
const VIEW_WIDTH = 1000;
const MARGIN = 50;
const ROW_HEIGHT = 120;
const TOP = 60;

let lastFetchedAt = null;
let currentLeader = null;

function byId(id) { return document.getElementById(id); }

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes || {})) {
    element.setAttribute(key, String(value));
  }
  return element;
}

function htmlElement(name, text, className) {
  const element = document.createElement(name);
  if (text !== undefined) element.textContent = String(text);
  if (className) element.className = className;
  return element;
}

function ids(value) { return Array.isArray(value) ? value.filter(Number.isSafeInteger) : []; }
function roles(node) { return Array.isArray(node.roles) ? node.roles.filter((r) => typeof r === "string") : []; }
function number(value) { return Number.isSafeInteger(value) ? String(value) : "—"; }
function listText(values) { return values.length ? values.join(", ") : "—"; }
function clock(ms) { return Number.isFinite(ms) ? new Date(ms).toLocaleTimeString() : "never"; }
function inTree(node) { return Number.isSafeInteger(node.depth) && node.depth >= 0; }

function primaryRole(node) {
  if (!node.alive) return "dead";
  const held = roles(node);
  return ROLE_ORDER.find((role) => held.includes(role)) || "none";
}

function describe(node) {
  const lines = [`node ${node.id}: ${node.alive ? (node.ready ? "alive, ready" : "alive, not ready") : "dead"}`];
  if (node.alive) {
    lines.push(`roles: ${listText(roles(node))}`);
    lines.push(`parent: ${number(node.parent)}, children: ${listText(ids(node.children))}`);
    lines.push(`leader: ${number(node.leader)}, term ${number(node.term)}, data epoch ${number(node.data_epoch)}`);
    if (typeof node.accepting_writes === "boolean") {
      lines.push(node.accepting_writes ? "accepting writes" : "not accepting writes");
    }
    if (typeof node.copy === "string") lines.push(`copy: ${node.copy}`);
    if (typeof node.http === "string") lines.push(node.http);
  }
  lines.push(`neighbours: ${listText(ids(node.neighbors))}`);
  const repaired = ids(node.repaired);
  if (repaired.length) lines.push(`repaired links: ${listText(repaired)}`);
  if (typeof node.problem === "string") lines.push(node.problem);
  return lines.join("\n");
}

// Row = depth in the tree (root on top); nodes outside every tree on one more row below.
function layout(nodes) {
  const tree = nodes.filter(inTree);
  const outside = nodes.filter((node) => !inTree(node));
  const deepest = tree.reduce((max, node) => Math.max(max, node.depth), -1);
  const column = (node) => (Number.isFinite(node.column) && node.column >= 0 ? node.column : 0);
  const slots = tree.reduce((max, node) => Math.max(max, Math.floor(column(node)) + 1), 1);
  const usable = VIEW_WIDTH - 2 * MARGIN;
  const outsideRow = deepest + 1;
  const rows = outside.length ? outsideRow + 1 : Math.max(outsideRow, 1);
  const places = new Map();
  for (const node of tree) {
    places.set(node.id, { x: MARGIN + ((column(node) + 0.5) * usable) / slots, y: TOP + node.depth * ROW_HEIGHT });
  }
  outside.forEach((node, index) => {
    places.set(node.id, { x: MARGIN + ((index + 0.5) * usable) / outside.length, y: TOP + outsideRow * ROW_HEIGHT });
  });
  const widest = Math.max(slots, outside.length, 1);
  const radius = Math.max(7, Math.min(24, usable / widest / 2.8));
  const height = TOP + (rows - 1) * ROW_HEIGHT + radius + 48;
  return { places, radius, height, outsideRow: outside.length ? outsideRow : null, hasTree: tree.length > 0 };
}

// Straight between rows; bent upwards within a row so the line does not run through its neighbours.
function edgePath(a, b) {
  if (Math.abs(a.y - b.y) < 1) {
    const lift = 24 + Math.abs(b.x - a.x) * 0.15;
    return `M ${a.x} ${a.y} Q ${(a.x + b.x) / 2} ${a.y - lift} ${b.x} ${b.y}`;
  }
  return `M ${a.x} ${a.y} L ${b.x} ${b.y}`;
}

function drawGraph(nodes) {
  const graph = byId("graph");
  const { places, radius, height, outsideRow, hasTree } = layout(nodes);
  graph.setAttribute("viewBox", `0 0 ${VIEW_WIDTH} ${Math.ceil(height)}`);
  const known = new Map(nodes.map((node) => [node.id, node]));
  const neighbourLayer = svgElement("g");
  const treeLayer = svgElement("g");
  const nodeLayer = svgElement("g");

  if (nodes.length === 0) {
    const empty = svgElement("text", { x: VIEW_WIDTH / 2, y: 100, "text-anchor": "middle", class: "empty" });
    empty.textContent = "No node has registered with the bootstrap yet.";
    graph.replaceChildren(empty);
    return;
  }

  if (outsideRow !== null) {
    const y = TOP + outsideRow * ROW_HEIGHT;
    if (hasTree) {
      neighbourLayer.append(svgElement("line", { class: "separator", x1: 0, x2: VIEW_WIDTH, y1: y - ROW_HEIGHT / 2, y2: y - ROW_HEIGHT / 2 }));
    }
    const label = svgElement("text", { class: "row-label", x: 8, y: y - ROW_HEIGHT / 2 + 18 });
    label.textContent = "not in the tree";
    neighbourLayer.append(label);
  }

  const edgeKey = (a, b) => `${Math.min(a, b)}-${Math.max(a, b)}`;
  // A link is repaired when either end lists the other as repaired (added after failures).
  const repaired = new Set();
  for (const node of nodes) {
    for (const other of ids(node.repaired)) repaired.add(edgeKey(node.id, other));
  }
  const drawn = new Set();
  for (const node of nodes) {
    for (const other of ids(node.neighbors)) {
      const key = edgeKey(node.id, other);
      if (other === node.id || !known.has(other) || drawn.has(key)) continue;
      drawn.add(key);
      const up = node.alive && known.get(other).alive;
      let className = up ? "neighbour" : "neighbour down";
      if (repaired.has(key)) className += " repaired";
      neighbourLayer.append(svgElement("path", {
        class: className,
        d: edgePath(places.get(node.id), places.get(other)),
      }));
    }
  }

  for (const node of nodes) {
    if (!node.alive) continue;
    for (const childId of ids(node.children)) {
      const child = known.get(childId);
      if (!child || !child.alive || childId === node.id) continue;
      // Dashed while the child does not (yet) name this parent, e.g. in the middle of a heal.
      const confirmed = child.parent === node.id;
      treeLayer.append(svgElement("path", {
        class: confirmed ? "tree-edge" : "tree-edge unconfirmed",
        d: edgePath(places.get(node.id), places.get(childId)),
      }));
    }
  }

  for (const node of nodes) {
    const place = places.get(node.id);
    const role = primaryRole(node);
    let className = `node role-${role}`;
    if (node.alive && node.id === currentLeader) className += " leader";
    const group = svgElement("g", { class: className, transform: `translate(${place.x} ${place.y})` });
    const title = svgElement("title");
    title.textContent = describe(node);
    group.append(title);
    if (node.alive && role !== "input" && roles(node).includes("input")) {
      group.append(svgElement("circle", { class: "input-ring", r: radius + 4 }));
    }
    if (node.alive && node.copy === "voter") {
      // Voters (the writer too, when it is one) wear a dashed ring: their copies count.
      group.append(svgElement("circle", { class: "voter-ring", r: radius + 9 }));
    }
    group.append(svgElement("circle", { class: "disc", r: radius }));
    const label = svgElement("text", { class: "id", "text-anchor": "middle", "dominant-baseline": "central",
      "font-size": Math.max(9, Math.round(radius * 0.75)) });
    label.textContent = String(node.id);
    group.append(label);
    const epoch = svgElement("text", { "text-anchor": "middle", y: radius + 18 });
    epoch.textContent = node.alive ? `epoch ${number(node.data_epoch)}` : "dead";
    group.append(epoch);
    if (node.alive && role === "writer" && typeof node.accepting_writes === "boolean") {
      const writes = svgElement("text", { class: "badge", "text-anchor": "middle", y: radius + 33 });
      writes.textContent = node.accepting_writes ? "accepting writes" : "not accepting writes";
      group.append(writes);
    }
    if (node.alive && node.id === currentLeader) {
      const crown = svgElement("text", { class: "badge", "text-anchor": "middle", y: -radius - 10 });
      crown.textContent = "leader";
      group.append(crown);
    }
    nodeLayer.append(group);
  }
  graph.replaceChildren(neighbourLayer, treeLayer, nodeLayer);
}

function drawSummary(state, nodes) {
  const alive = nodes.filter((node) => node.alive);
  const writers = alive.filter((node) => roles(node).includes("writer"));
  const trees = nodes.filter((node) => node.depth === 0).length;
  const items = [
    ["leader", Number.isSafeInteger(state.leader) ? `node ${state.leader}` : "none"],
    ["term", number(state.term)],
    ["nodes", `${alive.length} alive of ${nodes.length} registered`],
    ["ready", String(alive.filter((node) => node.ready === true).length)],
    ["trees", trees > 1 ? `${trees} (the cluster is split)` : String(trees)],
    ["writer", writers.length ? writers.map((node) => {
      const accepting = typeof node.accepting_writes === "boolean"
        ? (node.accepting_writes ? " (accepting writes)" : " (not accepting writes)") : "";
      return `node ${node.id}${accepting}`;
    }).join(", ") : "none"],
    ["updated", clock(state.fetched_at)],
  ];
  byId("summary").replaceChildren(...items.map(([term, value]) => {
    const item = htmlElement("div");
    item.append(htmlElement("dt", term), htmlElement("dd", value));
    return item;
  }));
}

function drawTable(nodes) {
  byId("nodes").replaceChildren(...nodes.map((node) => {
    const row = htmlElement("tr", undefined, node.alive ? "" : "dead");
    const state = node.alive ? (node.ready ? "alive, ready" : "alive, not ready") : "dead";
    const cells = node.alive
      ? [node.id, state, listText(roles(node)), number(node.parent), listText(ids(node.children)),
        number(node.leader), number(node.term), number(node.data_epoch)]
      : [node.id, state, "—", "—", "—", "—", "—", "—"];
    for (const cell of cells) row.append(htmlElement("td", cell));
    const http = htmlElement("td");
    if (node.alive && typeof node.http === "string") {
      // Only real web addresses become links; anything else (javascript:, data:) stays text.
      if (/^https?:\/\//i.test(node.http)) {
        const link = htmlElement("a", node.http);
        link.href = node.http;
        link.rel = "noopener noreferrer";
        http.append(link);
      } else {
        http.textContent = node.http;
      }
    }
    row.append(http);
    const notes = [];
    if (typeof node.problem === "string") notes.push(node.problem);
    if (node.alive && typeof node.accepting_writes === "boolean" && roles(node).includes("writer")) {
      notes.push(node.accepting_writes ? "accepting writes" : "not accepting writes");
    }
    if (node.alive && node.copy === "voter") notes.push("voter");
    if (node.alive && node.copy === "learner") notes.push("learner");
    row.append(htmlElement("td", notes.join("; ")));
    return row;
  }));
}

function showError(message) {
  const banner = byId("error");
  banner.textContent = message;
  banner.hidden = !message;
}

function render(state) {
  const nodes = Array.isArray(state.nodes)
    ? state.nodes.filter((node) => node && Number.isSafeInteger(node.id))
    : [];
  currentLeader = Number.isSafeInteger(state.leader) ? state.leader : null;
  drawSummary(state, nodes);
  drawGraph(nodes);
  drawTable(nodes);
  lastFetchedAt = state.fetched_at;
  showError(typeof state.error === "string" ? state.error : "");
}

async function poll() {
  try {
    const response = await fetch("/cluster/state", { cache: "no-store", headers: { accept: "application/json" } });
    const state = await response.json();
    if (state === null || typeof state !== "object") throw new Error(`unexpected answer (${response.status})`);
    render(state);
  } catch (error) {
    showError(`The nameserver does not answer (${error && error.message ? error.message : error}); ` +
      `the picture is from ${clock(lastFetchedAt)}.`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
