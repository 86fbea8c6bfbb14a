// The stats panel of a group's page. When the panel is opened it asks the group's statistics
// (GET /api/groups/{id}/stats, computed across the cluster's copies) and draws two bar charts in
// inline SVG: messages per day, and the most used words. Without this script the panel holds a
// link to the same numbers as JSON. Everything from the server is inserted as text, never as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const panel = document.getElementById("group-stats");
  if (!panel) return;
  const status = panel.querySelector(".stats-status");
  const charts = panel.querySelector(".stats-charts");
  let loading = false;

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A horizontal bar chart: one row per [label, value], bars scaled to the largest value.
  function barChart(title, rows, unit) {
    const figure = document.createElement("figure");
    figure.className = "stats-chart";
    const caption = document.createElement("figcaption");
    caption.textContent = title;
    figure.appendChild(caption);
    const rowHeight = 20;
    const labelWidth = 96;
    const valueWidth = 48;
    const width = 320;
    const barSpace = width - labelWidth - valueWidth;
    const height = Math.max(rows.length, 1) * rowHeight;
    const max = Math.max(1, ...rows.map((row) => row[1]));
    const chart = svg("svg", {
      viewBox: "0 0 " + width + " " + height,
      width: "100%",
      role: "img",
      "aria-label": title + ": " + rows.map((row) => row[0] + " " + row[1] + " " + unit).join(", "),
    });
    rows.forEach(([label, value], index) => {
      const y = index * rowHeight;
      const row = svg("g", { class: "stats-row" });
      row.appendChild(svg("title", {}, label + ": " + value + " " + unit));
      row.appendChild(svg("text", { x: labelWidth - 6, y: y + 14, class: "stats-label", "text-anchor": "end" }, label));
      const length = Math.max(2, Math.round((value / max) * barSpace));
      row.appendChild(svg("rect", { x: labelWidth, y: y + 3, width: length, height: rowHeight - 6, rx: 2, class: "stats-bar" }));
      row.appendChild(svg("text", { x: labelWidth + length + 4, y: y + 14, class: "stats-value" }, String(value)));
      chart.appendChild(row);
    });
    figure.appendChild(chart);
    return figure;
  }

  function messagesPerDay(stats) {
    const days = new Map();
    for (const entry of stats.per_member_per_day) days.set(entry.day, (days.get(entry.day) || 0) + entry.messages);
    return [...days.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  function show(stats) {
    charts.replaceChildren();
    const nodes = stats.computed_by.map((share) => "node " + share.node).join(", ");
    status.textContent = stats.messages + " messages since " + stats.since.slice(0, 10) + (nodes ? " · computed by " + nodes : "");
    if (stats.messages === 0) return;
    charts.appendChild(barChart("Messages per day", messagesPerDay(stats), "messages"));
    charts.appendChild(barChart("Most used words", stats.top_words.map((w) => [w.word, w.count]), "times"));
  }

  async function load() {
    if (loading) return;
    loading = true;
    status.textContent = "Counting…";
    try {
      const response = await fetch(panel.dataset.stats, { headers: { accept: "application/json" }, credentials: "same-origin" });
      const body = await response.json().catch(() => ({}));
      if (response.ok) show(body);
      else status.textContent = body.error || "The statistics are not available right now.";
    } catch (error) {
      status.textContent = "The statistics are not available right now.";
    } finally {
      loading = false;
    }
  }

  // Counted again each time the panel opens: new messages arrive while the page is open. The
  // members panel drops down in the same place, so one closes when the other opens.
  const members = document.getElementById("group-info");
  panel.addEventListener("toggle", () => {
    if (!panel.open) return;
    if (members) members.open = false;
    load();
  });
  if (members) {
    members.addEventListener("toggle", () => {
      if (members.open) panel.open = false;
    });
  }
  if (panel.open) load();
})();
